"""Run an entry point (``python stop_at.py train.py <overrides>``) that sends itself a real SIGTERM (so both lsnas's
handler and Lightning's see it) at the moment ``STOP_AT`` names: ``last_batch:<epoch>`` (during that epoch's last
training batch), ``validation:<epoch>`` (when that epoch's validation starts), ``sanity:0`` (when the sanity check's
validation starts) or ``test:0`` (when the test after the training starts)."""

import os
import runpy
import signal
import sys

from lsnas.training import checkpointing

moment, epoch = os.environ["STOP_AT"].split(":")
epoch = int(epoch)
_on_batch_end = checkpointing.MidEpochCheckpoint.on_train_batch_end


def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
    if moment == "last_batch" and trainer.current_epoch == epoch and batch_idx == trainer.num_training_batches - 1:
        os.kill(os.getpid(), signal.SIGTERM)
    return _on_batch_end(self, trainer, pl_module, outputs, batch, batch_idx)


def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
    if moment == "validation" and trainer.current_epoch == epoch and batch_idx == 0 and not trainer.sanity_checking:
        os.kill(os.getpid(), signal.SIGTERM)
    if moment == "sanity" and batch_idx == 0 and trainer.sanity_checking:
        os.kill(os.getpid(), signal.SIGTERM)


def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
    if moment == "test" and batch_idx == 0:
        os.kill(os.getpid(), signal.SIGTERM)


checkpointing.MidEpochCheckpoint.on_train_batch_end = on_train_batch_end
checkpointing.MidEpochCheckpoint.on_validation_batch_start = on_validation_batch_start
checkpointing.MidEpochCheckpoint.on_test_batch_start = on_test_batch_start
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
