"""Checkpoints under faults: atomic writes (a writer dying or a full disk mid-write), unusable checkpoints refused
with the file named, the data order and augmentations of a resumed epoch, and preemption's signal handling."""

import errno
import os
import pickle
import signal

import lightning as L
import pytest
import torch
from torch import nn

from lsnas.data.sampling import EpochRandomSampler, SeededIndex, resume_mid_epoch, seeded_rngs
from lsnas.errors import ConfigError, DiskFullError
from lsnas.training.checkpointing import AtomicCheckpointIO, check_checkpoint
from lsnas.training.trainer import resolve_checkpoint
from lsnas.utils import preemption
from lsnas.utils.io import atomic_write_json


class Tiny(L.LightningModule):
    def __init__(self, width: int = 3):
        super().__init__()
        self.layer = nn.Linear(width, 2)


def lightning_checkpoint(module: nn.Module) -> dict:
    return {"state_dict": module.state_dict(), "loops": {}, "epoch": 0}


def test_a_writer_dying_mid_write_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(lightning_checkpoint(Tiny()), path)
    before = path.read_bytes()

    def dies_half_way(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # what a signal does to the writer

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint(lightning_checkpoint(Tiny()), path)
    assert path.read_bytes() == before and os.listdir(path.parent) == ["last.ckpt"]
    check_checkpoint(path, Tiny())


def test_a_full_disk_is_an_error_naming_the_checkpoint_and_keeps_the_previous(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(lightning_checkpoint(Tiny()), path)
    before = path.read_bytes()

    def no_space(obj, f):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(DiskFullError, match=r"(?s)last\.ckpt.*previous checkpoint there is intact.*ckpt_path=last"):
        AtomicCheckpointIO().save_checkpoint(lightning_checkpoint(Tiny()), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.ckpt"]


def test_a_full_disk_while_writing_an_artifact_names_it(tmp_path, monkeypatch):
    atomic_write_json(tmp_path / "summary.json", {"a": 1})

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFullError, match="summary.json"):
        atomic_write_json(tmp_path / "summary.json", {"a": 2})
    assert (tmp_path / "summary.json").read_text().strip().endswith("}") and len(os.listdir(tmp_path)) == 1


def test_unusable_checkpoints_are_refused_naming_the_file_and_the_fix(tmp_path):
    whole = tmp_path / "whole.ckpt"
    torch.save(lightning_checkpoint(Tiny()), whole)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    with pytest.raises(ConfigError, match=r"truncated\.ckpt is not a whole checkpoint .*Delete it"):
        check_checkpoint(truncated)
    bare = tmp_path / "bare.ckpt"
    torch.save(Tiny().state_dict(), bare)
    with pytest.raises(ConfigError, match=r"bare\.ckpt is not a checkpoint of an lsnas run .*init_weights"):
        check_checkpoint(bare)
    with pytest.raises(ConfigError, match=r"whole\.ckpt holds another network .*other shape: layer.weight"):
        check_checkpoint(whole, Tiny(width=5))
    check_checkpoint(whole, Tiny())
    # ckpt_path=... goes through the same check
    with pytest.raises(ConfigError, match="truncated.ckpt"):
        resolve_checkpoint(str(truncated), tmp_path)


def test_ckpt_path_last_removes_an_unfinished_write_and_resumes_from_the_whole_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save(lightning_checkpoint(Tiny()), folder / "last.ckpt")
    (folder / ".last.ckpt.abc123.tmp").write_bytes(b"PK half")
    assert resolve_checkpoint("last", tmp_path, Tiny()) == str(folder / "last.ckpt")
    assert os.listdir(folder) == ["last.ckpt"]


def test_a_resumed_epoch_has_the_same_order_and_augmentation_seeds_as_the_whole_one():
    whole = EpochRandomSampler(50, seed=7, batch_size=4)
    whole.set_epoch(3)
    full = [(int(i), i.seed) for i in whole]
    resumed = EpochRandomSampler(50, seed=7, batch_size=4)
    resumed.set_epoch(3)
    resume_mid_epoch(5)
    try:
        rest = [(int(i), i.seed) for i in resumed]
        resumed.set_epoch(3)
        again = [(int(i), i.seed) for i in resumed]  # only the first epoch after the restore is cut
    finally:
        resume_mid_epoch(0)
    assert rest == full[20:] and again == full
    assert len({seed for _, seed in full}) == 50


def test_a_seeded_index_travels_to_workers_and_its_augmentation_leaves_the_process_streams_alone():
    index = pickle.loads(pickle.dumps(SeededIndex(12, 99)))
    assert (int(index), index.seed) == (12, 99)
    torch.manual_seed(0)
    expected_next = torch.rand(3)
    torch.manual_seed(0)
    with seeded_rngs(index.seed):
        first = torch.rand(2)
    with seeded_rngs(index.seed):
        assert torch.equal(torch.rand(2), first)
    assert torch.equal(torch.rand(3), expected_next)


def test_a_stop_signal_is_recorded_then_raised_at_the_safe_point_and_a_second_is_only_logged(caplog):
    preemption.install(["SIGUSR1"])
    try:
        preemption.check()  # nothing yet
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert preemption.requested() == "SIGUSR1"
        with pytest.raises(preemption.Interrupted) as stopped:
            preemption.check("the journal")
        assert (stopped.value.signal_name, stopped.value.saved) == ("SIGUSR1", "the journal")
        assert "still saving, not cut short" in caplog.text
    finally:
        preemption.uninstall()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_the_handler_found_before_lsnas_is_called_once_the_run_has_saved():
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))  # e.g. submitit's requeue
    try:
        preemption.install(["SIGUSR2"])
        os.kill(os.getpid(), signal.SIGUSR2)
        assert seen == []  # not yet: the run saves first
        preemption.forward()
        assert seen == [signal.SIGUSR2]
    finally:
        preemption.uninstall()
        signal.signal(signal.SIGUSR2, previous)


def test_a_handler_set_after_lsnas_is_replaced_by_reclaim_and_the_original_comes_back_after():
    """Lightning's fit sets its own SIGTERM handler over lsnas's; ``reclaim`` (at the training's start) puts lsnas's
    back, so the run stops where lsnas saves, and ``uninstall`` restores what was there before lsnas."""
    original = signal.getsignal(signal.SIGUSR1)
    try:
        preemption.install(["SIGUSR1"])
        signal.signal(signal.SIGUSR1, lambda signum, frame: None)  # what a library would do
        preemption.reclaim()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert preemption.requested() == "SIGUSR1"
    finally:
        preemption.uninstall()
    assert signal.getsignal(signal.SIGUSR1) == original
    preemption.reclaim()  # nothing installed: nothing taken
    assert signal.getsignal(signal.SIGUSR1) == original
