"""A few BigNAS steps under Lightning's DDP (one CPU process, gloo), counting DDP's all-reduce calls.

Prints JSON: the number of all-reduce calls, the steps, the children per step and a digest of the trained
weights. ``--sync-every-child`` makes every child's backward all-reduce (what a plain ``manual_backward`` does)
for comparison. Run in a subprocess: it initialises a process group."""

import argparse
import contextlib
import json
import os
import socket

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import OmegaConf

from lsnas.methods.bignas import BigNAS
from lsnas.training.trainer import tensor_digest
from tests.helpers.config import compose_config


class CountAllReduces(L.Callback):
    def __init__(self):
        self.calls = 0

    def on_train_start(self, trainer, module):
        def hook(state, bucket):
            self.calls += 1
            work = torch.distributed.all_reduce(bucket.buffer().div_(trainer.world_size), async_op=True)
            return work.get_future().then(lambda fut: fut.value()[0])

        trainer.strategy.model.register_comm_hook(None, hook)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sync-every-child", action="store_true")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(s.getsockname()[1]))
    if args.sync_every_child:
        DDPStrategy.block_backward_sync = lambda self: contextlib.nullcontext()
    space = OmegaConf.to_container(compose_config("search", "method=bignas").space, resolve=True)
    torch.manual_seed(0)
    module = BigNAS(10, (3, 32, 32), space, optimizer=lambda p: torch.optim.SGD(p, lr=0.1), num_random=2,
                    dropout=0.0, weight_decay=0.0, channels_last=False)
    data = torch.utils.data.TensorDataset(torch.randn(12, 3, 32, 32), torch.randint(0, 10, (12,)))
    counter = CountAllReduces()
    trainer = L.Trainer(accelerator="cpu", devices=1, strategy=DDPStrategy(find_unused_parameters=True), max_steps=3,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[counter])
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))
    print(json.dumps({"calls": counter.calls, "steps": trainer.global_step, "children": len(module.sandwich(0)),
                      "digest": tensor_digest(module.supernet.parameters())}))


if __name__ == "__main__":
    main()
