"""What ``train.py`` does: build the architecture's network for a dataset and train it under a protocol.

Kept out of the Hydra main so tests and notebooks can call it with a composed config.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from lsnas.arch import resolve_arch
from lsnas.errors import ConfigError
from lsnas.spaces import get_space, network_kwargs
from lsnas.training.callbacks import CorruptImageReport
from lsnas.training.complexity import complexity
from lsnas.training.module import ClassificationModule
from lsnas.training.trainer import last_validation, make_trainer, rank_digests, resolve_checkpoint
from lsnas.utils.io import atomic_write_json

log = logging.getLogger(__name__)


def write_per_class(path: Path, result: dict, classes=None) -> None:
    """Test top-1 of every class with its support, worst first (the long tail at a glance)."""
    correct, support = result["correct"].tolist(), result["support"].tolist()
    names = list(classes) if classes is not None else [str(i) for i in range(len(correct))]
    rows = [{"class": names[i], "label": i, "support": support[i], "top1": correct[i] / support[i]}
            for i in range(len(correct)) if support[i]]
    atomic_write_json(path, sorted(rows, key=lambda r: (r["top1"], -r["support"])))


def _as_config(protocol) -> DictConfig:
    # a node of the run config keeps its interpolations (${regime.name}); a plain dict is wrapped
    return protocol if isinstance(protocol, DictConfig) else OmegaConf.create(protocol)


def build_network(arch, datamodule, protocol) -> nn.Module:
    """``arch``'s network for the datamodule's classes and input shape, as ``protocol.model`` describes it."""
    model = OmegaConf.to_container(_as_config(protocol).model, resolve=True)
    space = get_space(arch.space)
    return space.build(arch, datamodule.num_classes, datamodule.input_shape, **network_kwargs(space, model))


def compile_options(compile_cfg) -> dict | None:
    """``torch.compile``'s keyword arguments from the ``compile`` setting; None when it is off (or absent)."""
    if not compile_cfg or not compile_cfg.get("enabled"):
        return None
    options = _as_config(compile_cfg)
    return {k: v for k, v in OmegaConf.to_container(options, resolve=True).items() if k != "enabled"}


def make_module(net: nn.Module, num_classes: int, protocol, arch, compile: dict | None = None) -> ClassificationModule:
    """The LightningModule that trains ``net`` under ``protocol`` (optimiser, schedule and regularisers);
    ``compile``: torch.compile's options (``compile_options``), None for eager."""
    p = _as_config(protocol)
    return ClassificationModule(net, num_classes, optimizer=instantiate(p.optimizer),
                                scheduler=instantiate(p.scheduler) if p.get("scheduler") else None,
                                label_smoothing=p.label_smoothing, aux_weight=p.aux_weight, cutout=p.cutout,
                                drop_path_prob=p.drop_path_prob, arch=arch.to_dict(), batch_size=p.get("batch_size"),
                                lr_reference_batch=p.get("lr_reference_batch"), compile=compile)


def build(cfg: DictConfig):
    """(architecture, datamodule, network) from the config, without loading any data."""
    arch = resolve_arch(cfg.arch)
    datamodule = instantiate(cfg.dataset, batch_size=cfg.protocol.batch_size)
    if datamodule.num_classes is None:
        if cfg.dry_run:
            raise ConfigError("dry_run needs the class count without reading data: set dataset.num_classes")
        datamodule.resolve_num_classes()
    net = build_network(arch, datamodule, cfg.protocol)
    if cfg.get("init_weights"):
        load_weights(net, cfg.init_weights)
    return arch, datamodule, net


def load_weights(net: nn.Module, path: str | Path) -> None:
    """``init_weights``: the network's starting weights (a state dict saved with torch.save)."""
    if not Path(path).is_file():
        raise ConfigError(f"init_weights={path}: no such file")
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except RuntimeError as e:
        raise ConfigError(f"init_weights={path} does not fit this architecture's network: {e}") from None


def source_run(arch_spec) -> dict | None:
    """Where an architecture given as a search's arch.json (or run dir) came from: that search's method,
    dataset, seed, score and cost, so a transfer run can be plotted against its source (W&B config keys
    ``source_run.*``, and ``metrics.json``). None for zoo names and files outside a search run dir."""
    path = Path(str(arch_spec))
    summary_path = (path if path.is_dir() else path.parent) / "search_summary.json"
    if not summary_path.is_file():
        return None
    from lsnas.methods import search_outcome

    summary = json.loads(summary_path.read_text())
    score, cost = search_outcome(summary)
    return {"run_dir": str(summary_path.parent), "method": summary.get("method"), "dataset": summary.get("dataset"),
            "seed": summary.get("seed"), "score": score, "cost_s": cost}


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    L.seed_everything(cfg.seed, workers=True)
    arch, datamodule, net = build(cfg)
    summary = {"arch": arch.to_dict(), "arch_digest": arch.digest, "input_shape": list(datamodule.input_shape),
               "num_classes": datamodule.num_classes, **complexity(net, datamodule.input_shape)}
    # the input the MACs were counted at: a protocol may lower the resolution (protocol=quick: ImageNet at 112 px)
    print(f"params={summary['params']} macs={summary['macs']} input={'x'.join(map(str, datamodule.input_shape))}")
    if cfg.dry_run:
        atomic_write_json(run_dir / "summary.json", summary)
        return summary

    p = cfg.protocol
    origin = source_run(cfg.arch)
    if origin is not None:
        with open_dict(cfg):  # logged with the run config (make_loggers), next to the study's axes
            cfg.source_run = origin
    module = make_module(net, datamodule.num_classes, p, arch, compile=compile_options(cfg.get("compile")))
    # e.g. limit_train_batches for demos (an empty node is falsy: no recipe)
    recipe = OmegaConf.to_container(p.trainer, resolve=True) if p.get("trainer") else {}
    trainer, clock = make_trainer(cfg, run_dir, max_epochs=p.epochs, callbacks=[CorruptImageReport(datamodule.corrupt)],
                                  gradient_clip_val=p.grad_clip or None, **recipe)
    started = time.perf_counter()
    checkpoint = resolve_checkpoint(cfg.get("ckpt_path"), run_dir, module)
    trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)  # a checkpoint is data
    fit_s = time.perf_counter() - started
    # the final weights': what a search may score by
    val_top1 = last_validation(trainer, module, datamodule, "val/top1")
    # Every rank must hold the same weights after training (DDP's invariant; the digests show it).
    weight_digests = rank_digests(trainer, net.parameters())
    (results,) = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {**summary, "dataset": cfg.dataset.name, "protocol": p.name, "seed": cfg.seed,
               "top1": results["test/top1"], "top5": results["test/top5"], "test_loss": results["test/loss"],
               "top1_class_mean": results["test/top1_class_mean"],
               "val_top1": val_top1, "data": datamodule.describe(),
               "epochs": trainer.current_epoch, "wall_time_s": round(clock.elapsed_s, 2),
               "wall_time_this_run_s": round(fit_s, 2), "precision": str(trainer.precision),
               "world_size": trainer.world_size, "weight_digests": weight_digests, "source_run": origin,
               "ranks_consistent": len(set(weight_digests)) == 1}
    if trainer.is_global_zero:
        write_per_class(run_dir / "per_class_accuracy.json", module.per_class_result,
                        getattr(datamodule, "classes", None))
        atomic_write_json(run_dir / "metrics.json", metrics)
        print(f"test top1={metrics['top1']:.4f} top5={metrics['top5']:.4f} params={metrics['params']} "
              f"macs={metrics['macs']} epochs={metrics['epochs']} wall={metrics['wall_time_s']}s -> {run_dir}")
    return metrics
