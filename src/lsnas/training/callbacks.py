"""Small Lightning callbacks the training runs share."""

from __future__ import annotations

import collections
import json
import logging
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from lsnas.utils.io import atomic_write_text

log = logging.getLogger("lsnas")


class WallClock(L.Callback):
    """Training wall time, accumulated across resumes (its state lives in the checkpoint)."""

    def __init__(self):
        self.previous_s = 0.0
        self._start: float | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    @property
    def elapsed_s(self) -> float:
        return self.previous_s + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def state_dict(self) -> dict:
        return {"elapsed_s": self.elapsed_s}

    def load_state_dict(self, state_dict: dict) -> None:
        self.previous_s = float(state_dict["elapsed_s"])


class EpochCurve(L.Callback):
    """The value of ``metric`` after each training epoch (validation runs before the epoch ends), for
    convergence curves; ``values[i]`` is epoch i's (None if it was not logged that epoch)."""

    def __init__(self, metric: str = "val/top1"):
        self.metric = metric
        self.values: list[float | None] = []
        self._validated = False  # in this epoch: an earlier epoch's value stays in callback_metrics

    def on_validation_end(self, trainer, pl_module) -> None:
        self._validated = self._validated or not trainer.sanity_checking

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.metric)
        fresh = self._validated or not self.metric.startswith("val/")
        self.values.append(None if value is None or not fresh else round(float(value), 6))
        self._validated = False


def short_genotype(genotype: dict, previous: dict | None = None, width: int = 160) -> str:
    """One short line for a log: each cell's operations counted (``normal: sep_conv_3x3 x4, skip_connect x2``)
    and how many edges changed since ``previous``; another genotype's JSON, cut at ``width`` characters."""
    cells = {k: v for k, v in genotype.items()
             if isinstance(v, list) and v and all(isinstance(e, (list, tuple)) and len(e) == 2 for e in v)}
    if not cells:
        text = json.dumps(genotype, separators=(",", ":"))
        return text if len(text) <= width else text[: width - 3] + "..."
    parts = []
    for kind, edges in cells.items():
        counts = collections.Counter(op for op, _ in edges)
        parts.append(f"{kind}: " + ", ".join(f"{op} x{n}" for op, n in counts.most_common()))
    text = " | ".join(parts)
    if previous is not None:
        changed = sum(tuple(a) != tuple(b) for kind in cells for a, b in zip(cells[kind], previous.get(kind, [])))
        text += f" ({changed} edge{'s' if changed != 1 else ''} changed)"
    return text


class GenotypeTrace(L.Callback):
    """After each epoch: log the derived genotype and append it to ``<run dir>/genotypes.jsonl``
    (rank 0). On resume, lines of epochs not yet reached again are dropped first, so the trace
    never holds an epoch twice."""

    def __init__(self, path):
        self.path = Path(path)
        self._last: dict | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero and self.path.exists():
            kept = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["epoch"] < trainer.current_epoch]
            atomic_write_text(self.path, "".join(f"{ln}\n" for ln in kept))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        genotype = pl_module.genotype()
        if not trainer.is_global_zero:
            return
        log.info("epoch %d genotype %s (in full: %s)", trainer.current_epoch, short_genotype(genotype, self._last),
                 self.path.name)
        self._last = genotype
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": trainer.current_epoch, "genotype": genotype}) + "\n")
        for logger in trainer.loggers:  # W&B shows the genotype as text next to the curves
            if isinstance(logger, WandbLogger):
                logger.experiment.log({"genotype": json.dumps(genotype), "epoch": trainer.current_epoch})


class LastValidatedStep(L.Callback):
    """The global step at which this process last validated (the sanity check aside): the final weights were
    validated when it is the run's last step."""

    def __init__(self):
        self.step: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.step = trainer.global_step


class StopAfterEpochs(L.Callback):
    """End this invocation after ``epochs`` epochs in total, keeping the schedule of the full run
    (``stop_after_epochs=``): for time-limited jobs that resume with ``ckpt_path=last``."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class CorruptImageReport(L.Callback):
    """Once per epoch (and after testing): how many unreadable images the loaders skipped, as a
    warning and as the metric ``data/corrupt_skipped``. ``counter`` is the DataModule's shared
    CorruptImageCounter, which loader worker processes add to."""

    def __init__(self, counter):
        self.counter = counter

    def _report(self, trainer, pl_module, stage: str) -> None:
        n = self.counter.take()
        if n:
            log.warning("%s epoch %d: skipped %d unreadable images (rank %d; see the warnings naming them)",
                        stage, trainer.current_epoch, n, trainer.global_rank)
        if trainer.loggers and stage == "train":
            pl_module.log("data/corrupt_skipped", float(n), on_step=False, on_epoch=True, reduce_fx="sum",
                          sync_dist=True)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._report(trainer, pl_module, "train")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._report(trainer, pl_module, "test")
