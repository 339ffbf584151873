"""Score a child on a trained supernet's shared weights (BigNAS): no training, only BN recalibration.

``supernet``: a ``method=bignas`` run dir (its ``checkpoints/last.ckpt`` and resolved config) or a checkpoint.
For each candidate the child is activated, its BN statistics are re-estimated on ``calib_batches`` training
batches at the child's resolution (``recalibrate_bn``), and its top-1 on ``eval_batches`` batches of the
held-out validation split is the score. ``max_macs`` makes a larger child invalid before it is scored (the
MACs targets of the coarse-to-fine selection). The supernet and the data are loaded once per process.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.nn import functional as F

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.evaluators.base import EVALUATORS, Evaluator, InvalidArchitecture, Result, TrialContext
from lsnas.evaluators.train import datamodule_for
from lsnas.spaces import space_from_config
from lsnas.spaces.base import SearchSpace
from lsnas.spaces.bignas import recalibrate_bn
from lsnas.training.complexity import complexity

_SUPERNETS: dict[str, tuple] = {}  # per process: checkpoint -> (supernet, its space)


def supernet_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """(checkpoint, run config) of a bignas run dir or checkpoint file."""
    path = Path(path)
    ckpt = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
    run_dir = path if path.is_dir() else path.parent.parent
    config = run_dir / ".hydra" / "config.yaml"
    if not ckpt.is_file() or not config.is_file():
        raise ConfigError(f"evaluator.supernet={path} must be a method=bignas run dir (checkpoints/last.ckpt and "
                          f".hydra/config.yaml) or its checkpoint")
    return ckpt, config


def load_supernet(path: str | Path):
    """(supernet in eval mode, its space, the run's config) of a method=bignas run."""
    ckpt, config_path = supernet_checkpoint(path)
    key = f"{ckpt.resolve()}@{ckpt.stat().st_mtime_ns}"  # a checkpoint rewritten by a resumed training is reloaded
    if key not in _SUPERNETS:
        from hydra.utils import instantiate

        cfg = OmegaConf.load(config_path)
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        space = space_from_config(OmegaConf.to_container(cfg.space, resolve=True))
        dataset = instantiate(cfg.dataset, batch_size=1)
        dataset.resolve_num_classes()
        net = space.supernet(dataset.num_classes, dataset.input_shape)
        net.load_state_dict({k.removeprefix("supernet."): v for k, v in state.items() if k.startswith("supernet.")})
        _SUPERNETS[key] = (net.eval(), space, cfg)
    return _SUPERNETS[key]


def calibrate(net, data, size: int, batches: int) -> int:
    """Re-estimate the active child's BN statistics on the first ``batches`` training batches of ``data``,
    resized to the child's ``size``; the number of batches used."""
    calib = [SupernetEvaluator.resized(x, size) for x, _ in islice(data.train_dataloader(), batches)]
    recalibrate_bn(net, calib)
    return len(calib)


@EVALUATORS.register("supernet")
class SupernetEvaluator(Evaluator):
    spaces = ("bignas_mbconv",)

    def __init__(self, supernet: str, dataset: dict, batch_size: int = 64, calib_batches: int = 64,
                 eval_batches: int | None = None, max_macs: float | None = None):
        if not supernet:
            raise ConfigError("evaluator=supernet needs evaluator.supernet=<a method=bignas run dir>")
        self.supernet, self.dataset = str(supernet), dataset
        self.batch_size, self.calib_batches, self.eval_batches = int(batch_size), int(calib_batches), eval_batches
        self.max_macs = max_macs

    def check(self, space: SearchSpace) -> None:
        super().check(space)
        _, trained, cfg = load_supernet(self.supernet)
        keys = ("resolutions", "widths", "depths", "kernels")
        if any(getattr(space, k) != getattr(trained, k) for k in keys):
            settings = ", ".join(f"space.{k}={OmegaConf.to_container(cfg.space[k])}" for k in keys)
            raise ConfigError(f"the search's space differs from the supernet's ({self.supernet}); set {settings}")

    @staticmethod
    def resized(x: torch.Tensor, size: int) -> torch.Tensor:
        return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)

    @torch.no_grad()
    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        net, space, _ = load_supernet(self.supernet)
        genotype = arch.genotype
        try:
            space.check_within(genotype)
        except ValueError as e:
            raise InvalidArchitecture(str(e)) from e
        size = genotype["resolution"]
        net.set_active_subnet(genotype)
        cost = complexity(net.extract_subnet(), (net.stem.conv.in_channels, size, size))  # the child's own
        if self.max_macs is not None and cost["macs"] > self.max_macs:
            raise InvalidArchitecture(f"{cost['macs']:,} MACs exceed evaluator.max_macs={self.max_macs:,.0f}")
        data = datamodule_for(self.dataset, self.batch_size)
        data.setup("fit")
        used = calibrate(net, data, size, self.calib_batches)
        net.eval()
        correct = total = 0
        for i, (x, y) in enumerate(data.val_dataloader()):
            if self.eval_batches is not None and i >= self.eval_batches:
                break
            correct += int((net(self.resized(x, size)).argmax(-1) == y).sum())
            total += len(y)
        return Result(score=correct / max(total, 1), cost={**cost, "calib_batches": used},
                      metrics={"val_images": total})
