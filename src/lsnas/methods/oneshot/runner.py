"""What ``search.py`` does for a one-shot method: train its supernet on a dataset and write the result."""

from __future__ import annotations

import json
import logging
import resource
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from lsnas.arch import ARCH_FILENAME
from lsnas.data.search import SearchDataModule
from lsnas.errors import ConfigError
from lsnas.methods import print_train_command
from lsnas.spaces import known_spaces
from lsnas.training.callbacks import CorruptImageReport
from lsnas.training.trainer import last_validation, make_trainer, rank_digests, resolve_checkpoint
from lsnas.utils.io import atomic_write_json

log = logging.getLogger(__name__)


def check_method_space(method_cls: type, space: str) -> None:
    if space not in method_cls.spaces:
        raise ConfigError(f"method {method_cls.__name__} cannot search the {space!r} space; it supports: "
                         f"{', '.join(method_cls.spaces)} (setting: space=...). Known spaces: "
                         f"{', '.join(known_spaces())}")


def peak_memory_bytes() -> int:
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _strategy(cfg: DictConfig, method_cls: type) -> str | None:
    strategy = cfg.trainer.get("strategy")
    if strategy == "ddp" and method_cls.find_unused_parameters:
        return "ddp_find_unused_parameters_true"  # e.g. GDAS computes one op per edge
    return strategy


def describe_search(cfg: DictConfig) -> str:
    """The settings that differ between a method's CIFAR and ImageNet variants, in one line."""
    space, m = cfg.space, cfg.method.module
    parts = [", ".join(f"{k}={v}" for k, v in space.items() if k not in ("name", "_target_")) + " supernet",
             f"batch {cfg.method.batch_size}", f"{cfg.method.epochs} epochs"]
    parts += [f"{name}lr {m[key].lr}" for key, name in (("w_optimizer", "weight "), ("a_optimizer", "arch "),
                                                          ("optimizer", "")) if m.get(key)]
    if m.get("partial_channels"):
        parts.append(f"K={m.partial_channels}")
    if m.get("warmup_fraction"):
        parts.append(f"arch updates from epoch {round(m.warmup_fraction * cfg.method.epochs)}")
    return "; ".join(parts)


def search(cfg: DictConfig, run_dir: str | Path, announce: bool = True) -> dict:
    """Train the supernet and write its answer. ``announce=False``: no genotype and train command printed (a
    method that goes on, as BigNAS's selection, prints its own next steps)."""
    run_dir = Path(run_dir)
    method_cls = get_class(cfg.method.module._target_)
    check_method_space(method_cls, cfg.space.name)
    if cfg.get("evaluator"):
        raise ConfigError(f"{cfg.method.name} is a one-shot method: its supernet scores the architectures, so it "
                          "takes no evaluator (drop the evaluator=... setting, or choose a multi-trial method: "
                          "method=random|evolution)")
    L.seed_everything(cfg.seed, workers=True)

    base = instantiate(cfg.dataset, batch_size=cfg.method.batch_size)
    base.resolve_num_classes()
    datamodule = base
    if method_cls.needs_arch_split:  # a weights half and an architecture half of the training set
        datamodule = SearchDataModule(base, train_portion=cfg.method.train_portion, seed=cfg.seed)
    # _convert_="all": plain containers in the module's hyperparameters, so checkpoints load with
    # torch.load(weights_only=True) when resuming
    method = instantiate(cfg.method.module, _convert_="all", num_classes=base.num_classes,
                         input_shape=list(base.input_shape), space=OmegaConf.to_container(cfg.space, resolve=True))
    weights = sum(p.numel() for p in method.supernet.parameters())
    log.info("%s on %s (%s-like %dpx inputs, %d classes): %s; %d supernet parameters", cfg.method.name,
             cfg.dataset.name, cfg.regime.name, base.resolution, base.num_classes, describe_search(cfg), weights)
    trainer_kwargs = {"strategy": s} if (s := _strategy(cfg, method_cls)) else {}
    callbacks = [*method.callbacks(run_dir), CorruptImageReport(base.corrupt)]
    trainer, clock = make_trainer(cfg, run_dir, max_epochs=cfg.method.epochs, callbacks=callbacks, **trainer_kwargs)
    started = time.perf_counter()
    checkpoint = resolve_checkpoint(cfg.get("ckpt_path"), run_dir, method)
    trainer.fit(method, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)  # a checkpoint is data
    fit_s = time.perf_counter() - started

    # Every rank must hold the same result (the architecture parameters: one genotype under DDP) and weights.
    arch_digests = rank_digests(trainer, method.consistency_tensors())
    weight_digests = rank_digests(trainer, list(method.supernet.parameters()))
    consistent = len(set(arch_digests)) == 1
    if not consistent:
        raise RuntimeError(f"the search's result differs across ranks ({arch_digests}); refusing to write "
                           "an architecture")
    arch = method.architecture()
    summary = {"method": cfg.method.name, "space": cfg.space.name, "dataset": cfg.dataset.name,
               "seed": cfg.seed, "genotype": arch.genotype, "arch_digest": arch.digest,
               "epochs": trainer.current_epoch, "completed": trainer.current_epoch >= cfg.method.epochs,
               # the supernet's, on the search's held-out half
               "val_top1": last_validation(trainer, method, datamodule, "val/top1"),
               "wall_time_s": round(clock.elapsed_s, 2),
               "wall_time_this_run_s": round(fit_s, 2), "peak_memory_bytes": peak_memory_bytes(),
               "world_size": trainer.world_size, "ranks_consistent": consistent, "arch_digests": arch_digests,
               "weight_digests": weight_digests,
               "precision": str(trainer.precision), "data": base.describe()}
    if trainer.is_global_zero:
        method.write_outputs(run_dir, title=f"{cfg.method.name} on {cfg.dataset.name}")
        arch.save(run_dir / ARCH_FILENAME)
        atomic_write_json(run_dir / "search_summary.json", summary)
        if announce:
            print(f"genotype {json.dumps(arch.genotype, separators=(',', ':'))}")
            print_train_command(cfg, run_dir / ARCH_FILENAME)
    return summary
