"""What ``train.py`` does: build the architecture's network for a dataset and train it under a protocol.

Kept out of the Hydra main so tests and notebooks can call it with a composed config.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from omegaconf import DictConfig, OmegaConf

from lsnas.arch import resolve_arch
from lsnas.spaces import get_space
from lsnas.training.callbacks import CorruptImageReport, WallClock
from lsnas.training.complexity import complexity
from lsnas.training.module import ClassificationModule
from lsnas.utils.io import atomic_write_json

log = logging.getLogger(__name__)
CHECKPOINT_DIR = "checkpoints"


def resolve_precision(precision) -> str:
    """``auto``: bf16-mixed on GPUs that support it, 16-mixed on older GPUs, 32-true on CPU."""
    if str(precision) != "auto":
        return str(precision)
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """``last``: this run dir's last.ckpt if there is one (so a requeued job resumes, a new one starts);
    a run dir: its last.ckpt; otherwise a checkpoint file."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        last = run_dir / CHECKPOINT_DIR / "last.ckpt"
        if last.is_file():
            return str(last)
        log.info("ckpt_path=last: no %s yet, starting from scratch", last)
        return None
    path = Path(ckpt_path)
    if path.is_dir():
        path = path / CHECKPOINT_DIR / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path!r}: no checkpoint at {path}. Give a .ckpt file, a run dir "
                                "holding checkpoints/last.ckpt, or 'last' together with hydra.run.dir=<run dir>")
    return str(path)


def write_per_class(path: Path, result: dict, classes=None) -> None:
    """Test top-1 of every class with its support, worst first (the long tail at a glance)."""
    correct, support = result["correct"].tolist(), result["support"].tolist()
    names = list(classes) if classes is not None else [str(i) for i in range(len(correct))]
    rows = [{"class": names[i], "label": i, "support": support[i], "top1": correct[i] / support[i]}
            for i in range(len(correct)) if support[i]]
    atomic_write_json(path, sorted(rows, key=lambda r: (r["top1"], -r["support"])))


def build(cfg: DictConfig):
    """(architecture, datamodule, network) from the config, without loading any data."""
    arch = resolve_arch(cfg.arch)
    datamodule = instantiate(cfg.dataset, batch_size=cfg.protocol.batch_size)
    if datamodule.num_classes is None:
        if cfg.dry_run:
            raise ValueError("dry_run needs the class count without reading data: set dataset.num_classes")
        datamodule.resolve_num_classes()
    net = get_space(arch.space).build(arch, datamodule.num_classes, datamodule.input_shape,
                                      **OmegaConf.to_container(cfg.protocol.model))
    return arch, datamodule, net


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    L.seed_everything(cfg.seed, workers=True)
    arch, datamodule, net = build(cfg)
    summary = {"arch": arch.to_dict(), "arch_digest": arch.digest, "input_shape": list(datamodule.input_shape),
               "num_classes": datamodule.num_classes, **complexity(net, datamodule.input_shape)}
    print(f"params={summary['params']} macs={summary['macs']}")
    if cfg.dry_run:
        atomic_write_json(run_dir / "summary.json", summary)
        return summary

    p = cfg.protocol
    module = ClassificationModule(net, datamodule.num_classes, optimizer=instantiate(p.optimizer),
                                  scheduler=instantiate(p.scheduler) if p.get("scheduler") else None,
                                  label_smoothing=p.label_smoothing, aux_weight=p.aux_weight, cutout=p.cutout,
                                  drop_path_prob=p.drop_path_prob, arch=arch.to_dict())
    clock = WallClock()
    callbacks = [ModelCheckpoint(dirpath=run_dir / CHECKPOINT_DIR, save_last=True, save_top_k=0),
                 clock, RichProgressBar(leave=True), CorruptImageReport(datamodule.corrupt)]
    loggers = [instantiate(c) for c in cfg.logger.values()] if cfg.get("logger") else []
    if loggers:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    recipe = OmegaConf.to_container(p.get("trainer") or {})  # e.g. limit_train_batches for demos
    trainer: L.Trainer = instantiate(cfg.trainer, precision=resolve_precision(cfg.trainer.precision),
                                     max_epochs=p.epochs, gradient_clip_val=p.grad_clip or None,
                                     default_root_dir=str(run_dir), logger=loggers or False, callbacks=callbacks,
                                     **recipe)
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resolve_checkpoint(cfg.get("ckpt_path"), run_dir))
    fit_s = time.perf_counter() - started
    (results,) = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {**summary, "dataset": cfg.dataset.name, "protocol": p.name, "seed": cfg.seed,
               "top1": results["test/top1"], "top5": results["test/top5"], "test_loss": results["test/loss"],
               "top1_class_mean": results["test/top1_class_mean"], "data": datamodule.describe(),
               "epochs": trainer.current_epoch, "wall_time_s": round(clock.elapsed_s, 2),
               "wall_time_this_run_s": round(fit_s, 2), "precision": str(trainer.precision)}
    if trainer.is_global_zero:
        write_per_class(run_dir / "per_class_accuracy.json", module.per_class_result,
                        getattr(datamodule, "classes", None))
        atomic_write_json(run_dir / "metrics.json", metrics)
        print(f"test top1={metrics['top1']:.4f} top5={metrics['top5']:.4f} params={metrics['params']} "
              f"macs={metrics['macs']} epochs={metrics['epochs']} wall={metrics['wall_time_s']}s -> {run_dir}")
    return metrics
