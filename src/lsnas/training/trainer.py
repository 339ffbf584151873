"""One place that builds the Lightning Trainer, its loggers and its callbacks for every kind of run:
final training (train.py), one-shot search (search.py) and the in-process evaluations of multi-trial
search. A run kind adds its own callbacks (a genotype trace, a corrupt-image report) and Trainer
arguments (gradient clipping, a DDP flavour); everything else is the same for all of them."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from lsnas.errors import ConfigError
from lsnas.training.callbacks import LastValidatedStep, StopAfterEpochs, WallClock
from lsnas.training.checkpointing import AtomicCheckpointIO, MidEpochCheckpoint, check_checkpoint
from lsnas.training.progress import CompactProgressBar

log = logging.getLogger(__name__)
CHECKPOINT_DIR = "checkpoints"


def resolve_precision(precision) -> str:
    """``auto``: bf16-mixed on GPUs that support it, 16-mixed on older GPUs, 32-true on CPU."""
    if str(precision) != "auto":
        return str(precision)
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path, module: torch.nn.Module | None = None) -> str | None:
    """``last``: this run dir's last.ckpt if there is one (so a requeued job resumes, a new one starts);
    a run dir: its last.ckpt; otherwise a checkpoint file. A checkpoint that cannot resume ``module`` (truncated,
    foreign, another network) is refused here, naming the file."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        last = Path(run_dir) / CHECKPOINT_DIR / "last.ckpt"
        for stale in last.parent.glob(".*.ckpt.*.tmp"):  # a writer killed mid-write; the checkpoint it left is whole
            log.info("removing %s, the unfinished write of a stopped run", stale)
            stale.unlink(missing_ok=True)
        if last.is_file():
            check_checkpoint(last, module)
            return str(last)
        log.info("ckpt_path=last: no %s yet, starting from scratch", last)
        return None
    path = Path(ckpt_path)
    if path.is_dir():
        path = path / CHECKPOINT_DIR / "last.ckpt"
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path!r}: no checkpoint at {path}. Give a .ckpt file, a run dir "
                          "holding checkpoints/last.ckpt, or 'last' together with hydra.run.dir=<run dir>")
    check_checkpoint(path, module)
    return str(path)


def flat_config(cfg: DictConfig) -> dict:
    """The resolved run config with dotted keys (``method.module.order``), as W&B compares runs by it."""
    def walk(node, prefix: str):
        if isinstance(node, dict) and node:
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        elif isinstance(node, dict):  # an empty group of settings
            yield prefix[:-1], None
        else:
            yield prefix[:-1], str(node) if isinstance(node, list) else node

    return dict(walk(OmegaConf.to_container(cfg, resolve=True), ""))


_RUN_LOGGERS: dict[tuple, list] = {}  # one set of loggers per run dir: a task that trains or searches several
# times in one process (two_stage, the sparse study, BigNAS's selection) logs to one W&B run, not one per part


def make_loggers(cfg: DictConfig) -> list:
    """The configured experiment loggers (``logger=wandb|csv|none``), each given the flat run config once;
    later calls for the same run dir return the same loggers (``close_loggers`` ends them with the task)."""
    if not cfg.get("logger"):
        return []
    key = tuple(sorted((name, str(OmegaConf.select(cfg.logger, f"{name}.save_dir")))
                       for name in cfg.logger.keys()))
    if key not in _RUN_LOGGERS:
        loggers = [instantiate(c) for c in cfg.logger.values()]
        config = flat_config(cfg)
        for logger in loggers:
            logger.log_hyperparams(config)
        _RUN_LOGGERS[key] = loggers
    return _RUN_LOGGERS[key]


def close_loggers() -> None:
    """Forget the task's loggers (the next task opens its own)."""
    _RUN_LOGGERS.clear()


def make_trainer(cfg: DictConfig, run_dir: str | Path, *, max_epochs: int, callbacks: Sequence[Callback] = (),
                 checkpoints: bool = True, progress: bool = True, **trainer_kwargs) -> tuple[L.Trainer, WallClock]:
    """A Trainer from ``cfg.trainer`` with the run's loggers, a last-epoch checkpoint in the run dir (and
    mid-epoch ones as ``cfg.checkpoint`` asks; all written atomically), the wall clock (returned, so the
    caller can report it), a compact progress bar (unless ``progress`` is false, as for the many short
    trainings of a multi-trial search), a learning-rate monitor when something logs it, and
    ``stop_after_epochs`` when set. A stop signal ends its fit after the current batch (saved first when
    ``checkpoints``), raising ``preemption.Interrupted``."""
    run_dir = Path(run_dir)
    clock = WallClock()
    loggers = make_loggers(cfg)
    all_callbacks: list[Callback] = [clock, LastValidatedStep(), *([CompactProgressBar()] if progress else []),
                                     *callbacks]
    every = cfg.get("checkpoint") or {}
    all_callbacks.append(MidEpochCheckpoint(run_dir / CHECKPOINT_DIR / "last.ckpt" if checkpoints else None,
                                            every.get("every_n_steps"), every.get("every_minutes")))
    if checkpoints:
        all_callbacks.append(ModelCheckpoint(dirpath=run_dir / CHECKPOINT_DIR, save_last=True, save_top_k=0))
    if loggers:
        all_callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    if cfg.get("stop_after_epochs"):
        all_callbacks.append(StopAfterEpochs(cfg.stop_after_epochs))
    trainer = instantiate(cfg.trainer, precision=resolve_precision(cfg.trainer.precision), max_epochs=max_epochs,
                          default_root_dir=str(run_dir), logger=loggers or False, callbacks=all_callbacks,
                          enable_progress_bar=progress, enable_checkpointing=checkpoints,
                          plugins=[AtomicCheckpointIO()], **trainer_kwargs)
    return trainer, clock


def last_validation(trainer: L.Trainer, module: L.LightningModule, datamodule, name: str) -> float | None:
    """``name`` (e.g. ``val/top1``) of the final weights, validated again unless a validation in this process ran
    after the last training step. It did not when the last epochs had none (``check_val_every_n_epoch`` > 1, a
    step-based ``val_check_interval``), or when the run was resumed after its last validation (stopped there, or
    killed after that save: checkpoints keep no metrics). Eval mode gives the numbers the epoch's own validation
    would, so stopped-and-resumed and uninterrupted runs report the same. Without a validation set: None."""
    tracker = next((c for c in trainer.callbacks if isinstance(c, LastValidatedStep)), None)
    value = trainer.callback_metrics.get(name)
    if value is None or tracker is None or tracker.step != trainer.global_step:
        trainer.validate(module, datamodule=datamodule, verbose=False)
        value = trainer.callback_metrics.get(name)
    return None if value is None else float(value)


def tensor_digest(tensors: Iterable[torch.Tensor]) -> str:
    """A 15-hex (60-bit, so it fits an int64 for gathering) digest of the tensors' exact bytes."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:15]


def rank_digests(trainer: L.Trainer, tensors: Iterable[torch.Tensor]) -> list[str]:
    """Every rank's ``tensor_digest`` of its own copy of ``tensors``, in rank order (one entry without DDP)."""
    local = torch.tensor([int(tensor_digest(tensors), 16)], dtype=torch.int64, device=trainer.strategy.root_device)
    return [format(v, "015x") for v in trainer.strategy.all_gather(local).reshape(-1).tolist()]
