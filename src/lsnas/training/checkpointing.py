"""Checkpoints a long run can count on: written atomically, saved inside an epoch when asked (or when the
scheduler's stop signal arrives), resumed exactly, and refused with a clear error when unusable.

- ``AtomicCheckpointIO``: a checkpoint is written to a temporary file in the same folder, synced and renamed,
  so a kill (or a full disk) during the write leaves the previous ``last.ckpt`` whole.
- ``MidEpochCheckpoint``: saves ``last.ckpt`` after a batch every ``checkpoint.every_n_steps`` steps and/or
  ``checkpoint.every_minutes`` minutes, and at once when a stop signal arrived (then ends the run as
  interrupted). Its state holds the position inside the epoch and the process RNGs, so a resumed run
  continues the epoch from the next batch with the data order, the augmentations (seeded per sample by
  ``EpochSeededSampler``) and the random draws of the uninterrupted run. A stop that arrives at an epoch's
  last batch or during its validation is acted on when that validation ends: Lightning resumes a checkpoint
  saved after the last batch at the next epoch and never runs the skipped validation (a final epoch's
  ``val/top1``, which a multi-trial search scores by, was lost).
- ``check_checkpoint``: a truncated, foreign or mismatched checkpoint is an error that names the file and
  what to do, before Lightning reads it.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import tempfile
import time
import zipfile
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from lsnas.data import sampling
from lsnas.errors import ConfigError, disk_full
from lsnas.utils import preemption

log = logging.getLogger("lsnas")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint format, written to ``.<name>.tmp`` beside the target and renamed over it."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as error:
            Path(tmp).unlink(missing_ok=True)
            if error.errno == errno.ENOSPC:
                raise disk_full(path, "the previous checkpoint there is intact") from error
            raise
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def check_checkpoint(path: str | Path, module: torch.nn.Module | None = None) -> None:
    """Refuse a checkpoint that cannot resume this run: not a whole torch file (a truncated write), not a
    Lightning checkpoint (a bare state dict), or one whose weights do not fit ``module``."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"ckpt_path: {path} is not a whole checkpoint (truncated, or not written by torch.save). "
                          "Delete it to resume from the previous one, or give another file (ckpt_path=...)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        raise ConfigError(f"ckpt_path: {path} cannot be read ({type(error).__name__}: {error}). Delete it or give "
                          "another file (ckpt_path=...)") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "loops" not in checkpoint:
        raise ConfigError(f"ckpt_path: {path} is not a checkpoint of an lsnas run (no training state: a bare state "
                          "dict?). To start a network from weights, use init_weights=<file> with train.py")
    if module is not None:
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        reshaped = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        if missing or unexpected or reshaped:
            parts = [f"{name}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}" for name, keys in
                     (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped)) if keys]
            raise ConfigError(f"ckpt_path: {path} holds another network than this run builds ({'; '.join(parts)}). "
                              "Resume with the settings that wrote it, or start a new run dir")


def _rng_state() -> dict:
    """The process RNGs in types ``torch.load(weights_only=True)`` reads back (no NumPy arrays)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class MidEpochCheckpoint(L.Callback):
    """Save ``path`` after a training batch when ``every_n_steps`` batches or ``every_minutes`` minutes have
    passed since the last save, or when a stop signal arrived (then raise ``preemption.Interrupted``)."""

    def __init__(self, path: str | Path | None, every_n_steps: int | None = None, every_minutes: float | None = None):
        if every_n_steps is not None and int(every_n_steps) < 1:
            raise ConfigError(f"checkpoint.every_n_steps must be at least 1 (or null), got {every_n_steps}")
        if every_minutes is not None and float(every_minutes) <= 0:
            raise ConfigError(f"checkpoint.every_minutes must be positive (or null), got {every_minutes}")
        self.path = None if path is None else Path(path)
        self.every_n_steps = None if every_n_steps is None else int(every_n_steps)
        self.every_seconds = None if every_minutes is None else 60.0 * float(every_minutes)
        self.batches_in_epoch = 0
        self._steps_since_save, self._last_save = 0, time.monotonic()
        self._restore_rng: dict | None = None
        self._epoch_done = False  # the epoch's last batch has run: a save now resumes at the next epoch

    # -- where the epoch is ------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        preemption.reclaim()  # Lightning's fit has just set its own SIGTERM handler over lsnas's

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._restore_rng is None:  # not the epoch a mid-epoch checkpoint resumes
            self.batches_in_epoch = 0
        self._epoch_done = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._restore_rng is not None:  # the first batch after a mid-epoch restore: the RNGs as they were
            _set_rng_state(self._restore_rng)
            self._restore_rng = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches_in_epoch += 1
        self._steps_since_save += 1
        self._epoch_done = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        stop = _stop_requested(trainer)
        due = (self.every_n_steps is not None and self._steps_since_save >= self.every_n_steps) or \
              (self.every_seconds is not None and time.monotonic() - self._last_save >= self.every_seconds)
        if trainer.world_size > 1:  # every rank saves (and stops) at the same batch
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
            if self.every_seconds is not None:  # clocks differ between ranks; step counts do not
                due = trainer.strategy.reduce_boolean_decision(due, all=False)
        if (due or stop) and self.path is not None:
            trainer.save_checkpoint(self.path)
            self._steps_since_save, self._last_save = 0, time.monotonic()
        if stop and not self._epoch_done:
            self._stop(f"epoch {trainer.current_epoch}, batch {self.batches_in_epoch}")
        # At the epoch's last batch the stop waits for the validation that runs next (saved already, should a kill
        # come first): Lightning resumes a checkpoint saved here at the next epoch and never runs that validation.

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            _stop_requested(trainer)  # takes Lightning's SIGTERM flag over: it would cut the validation short, unsaved

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._stop_if_asked(trainer, f"epoch {trainer.current_epoch}, after its validation")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.batches_in_epoch = 0  # an end-of-epoch checkpoint resumes at the next epoch's start
        sampling.resume_mid_epoch(0)
        self._stop_if_asked(trainer, f"end of epoch {trainer.current_epoch}")

    def _stop_if_asked(self, trainer, where: str) -> None:
        """At a safe point between batches: if a stop signal arrived (on any rank), save and end the run."""
        stop = _stop_requested(trainer)
        if trainer.world_size > 1:
            # At an epoch's or a validation's end rank 0's progress bar has just computed the logged metrics, which
            # syncs them across ranks: a collective only rank 0 has entered. Reading them here enters it on every
            # rank before ours; otherwise rank 0 waits in the metric sync and the others in this reduce.
            trainer.callback_metrics  # noqa: B018
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            if self.path is not None:
                trainer.save_checkpoint(self.path)
            self._stop(where)

    def _stop(self, where: str) -> None:
        preemption.request(preemption.requested() or "SIGTERM")
        preemption.check(f"{self.path} ({where})" if self.path is not None else f"nothing ({where})")

    def teardown(self, trainer, pl_module, stage: str) -> None:
        sampling.resume_mid_epoch(0)

    # -- what a checkpoint holds -------------------------------------------------------------------
    def state_dict(self) -> dict:
        # a save after the epoch's last batch (at validation's end, at the epoch's) resumes at the next epoch
        done = 0 if self._epoch_done else self.batches_in_epoch
        state = {"batches_in_epoch": done}
        if done:
            state["rng"] = _rng_state()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self.batches_in_epoch = int(state_dict.get("batches_in_epoch", 0))
        if self.batches_in_epoch:
            sampling.resume_mid_epoch(self.batches_in_epoch)
            self._restore_rng = state_dict["rng"]
            log.info("resuming inside an epoch, after its batch %d", self.batches_in_epoch)


def _stop_requested(trainer) -> bool:
    """Whether a stop signal arrived. Lightning's SIGTERM flag (its handler runs beside lsnas's) is taken over as
    lsnas's request and cleared, so one mechanism decides where a run stops and what it saves; Lightning's own
    would end a validation at its next batch without saving."""
    connector = getattr(trainer, "_signal_connector", None)
    if getattr(connector, "received_sigterm", False):
        preemption.request("SIGTERM")
        connector.received_sigterm = False
    return preemption.requested() is not None
