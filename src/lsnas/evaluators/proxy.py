"""Score a candidate by proxies on a few training minibatches (``evaluator=proxy``; settings: ``proxy=``).

A ``ProxyMeasurement`` is one ``conf/proxy/`` config: which proxies (``measure``, with ``weights``; more than
one is a weighted rank combination, ``also`` are recorded beside), on which batches (``batch_size``, ``num_batches``,
``data_seed``: the same batches for every candidate, from the training split, never validation or test),
in which BN mode, and after how much training (``train.epochs`` / ``train.steps``: 0 for training-free;
Mok et al.'s few-step variant is 1 epoch of SGD, lr 0.025, momentum 0.9, weight decay 3e-4).

The network is built as ``protocol.model`` describes it and initialised from the trial's seed. With one
proxy the score is ``sign * value`` (higher is better whatever the proxy: ``ntk_cond``'s sign is -1). With
several, each trial journals every value, and the search ranks candidates by the weighted rank combination
over all complete trials (``relative_objective``); the journaled per-trial score is then the signed value of the
most heavily weighted proxy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import default_collate

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.evaluators.base import EVALUATORS, Evaluator, Result, TrialContext
from lsnas.evaluators.train import build_candidate, check_buildable, quiet_lightning
from lsnas.proxies import get_proxy
from lsnas.proxies.combine import RankCombination, check_weights
from lsnas.proxies.ntk import shared_kernels
from lsnas.spaces.base import SearchSpace
from lsnas.training.runner import make_module
from lsnas.training.trainer import make_trainer

_BATCHES: dict[tuple, list] = {}  # per process: every candidate is measured on the same batches
log = logging.getLogger(__name__)


class ProxyMeasurement:
    """The settings of one ``conf/proxy/`` config, and the measuring they describe."""

    def __init__(self, measure: Sequence[str], weights: Sequence[float] | None = None, also: Sequence[str] = (),
                 batch_size: int = 64,
                 num_batches: int = 1, data_seed: int = 0, bn_mode: str = "train", train: dict | None = None,
                 device: str = "auto", name: str | None = None, data: str = "train", note: str | None = None,
                 ntk_rows_per_pass: int = 1):
        if bn_mode not in ("train", "eval"):
            raise ConfigError(f"proxy.bn_mode must be train or eval, got {bn_mode!r}")
        if data not in ("train", "val"):
            raise ConfigError(f"proxy.data must be train (augmented training images) or val (held-out images, "
                              f"evaluation transforms), got {data!r}")
        self.data, self.note = data, note
        self._said_limit = self._said_note = False  # the departures are logged once per measurement
        self.weights = check_weights(measure, weights)
        for other in also:
            get_proxy(other)
        self.also = [n for n in also if n not in self.weights]
        self.batch_size, self.num_batches, self.data_seed = int(batch_size), int(num_batches), int(data_seed)
        self.bn_mode, self.device, self.name = bn_mode, device, name
        if int(ntk_rows_per_pass) < 1:
            raise ConfigError(f"proxy.ntk_rows_per_pass must be >= 1, got {ntk_rows_per_pass}")
        # Left out of settings() (the fingerprint): it changes how the kernel is computed, not its value.
        self.ntk_rows_per_pass = int(ntk_rows_per_pass)
        self.train = {"epochs": 0, "steps": None, "limit_batches": None, "batch_size": 64, "grad_clip": None,
                      "precision": "32-true", "optimizer": {"lr": 0.025, "momentum": 0.9, "weight_decay": 3e-4},
                      **(train or {})}
        if self.train["epochs"] < 0 or (self.train["steps"] or 0) < 0:
            raise ConfigError("proxy.train.epochs and proxy.train.steps must be >= 0")

    @classmethod
    def from_settings(cls, settings: dict) -> ProxyMeasurement:
        return settings if isinstance(settings, cls) else cls(**settings)

    @property
    def names(self) -> list[str]:
        return [*self.weights, *self.also]

    @property
    def trains(self) -> bool:
        return bool(self.train["epochs"] or self.train["steps"])

    def settings(self) -> dict:
        return {k: v for k, v in vars(self).items()
                if k not in ("device", "name", "ntk_rows_per_pass") and not k.startswith("_")}

    # -- data ---------------------------------------------------------------------------------
    def batches(self, datamodule) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``num_batches`` batches drawn with ``data_seed``, the same for every candidate whatever its
        initialisation consumed of the global RNG: of the training split with its augmentations (``data=train``)
        or of the held-out validation split with evaluation transforms (``data=val``: Mok et al. measure a
        trained network on fixed unaugmented images; they use test images, lsnas never touches the test split)."""
        if self.note and not self._said_note:  # how this measurement departs from its paper, once
            log.info("proxy %s: %s", self.name, self.note)
            self._said_note = True
        key = (id(datamodule), self.data, self.batch_size, self.num_batches, self.data_seed)
        if key not in _BATCHES:
            with torch.random.fork_rng():  # leaves the global RNG (initialisation, shuffling) as it was
                datamodule.setup("fit")
                images = datamodule.train_set if self.data == "train" else datamodule.val_set
                order = np.random.default_rng(self.data_seed).permutation(len(images))
                size = self.batch_size
                if len(order) < size * self.num_batches:  # a small dataset: every image it has, said once
                    size = len(order) // self.num_batches
                    fix = "" if self.data == "train" else " (dataset.val_fraction holds out more)"
                    if size < 2:
                        raise ConfigError(f"proxy.num_batches={self.num_batches} batches need at least 2 of the "
                                          f"{len(order)} {self.data} images each{fix}")
                    log.warning("proxy.batch_size=%d x proxy.num_batches=%d exceeds the %d %s images: measuring on "
                                "batches of %d%s", self.batch_size, self.num_batches, len(order), self.data, size, fix)
                torch.manual_seed(self.data_seed)
                _BATCHES[key] = [default_collate([images[int(i)] for i in order[b * size:(b + 1) * size]])
                                 for b in range(self.num_batches)]
        return _BATCHES[key]

    # -- the few steps ------------------------------------------------------------------------
    def train_briefly(self, net: nn.Module, datamodule, protocol: dict, trainer: dict, arch: Architecture,
                      run_dir: str) -> dict:
        """Train ``net`` in place for ``train.epochs`` (or ``train.steps``) as Mok et al. do: plain SGD at a
        constant rate, no clipping, fp32 (``train.grad_clip``, ``train.precision``), over whole epochs of the
        training split (a run's ``trainer.limit_train_batches``, as budget=small sets, does not cap it; only
        ``train.limit_batches`` does, and says so). Returns its cost."""
        recipe = {**protocol, "scheduler": None, "label_smoothing": 0.0, "aux_weight": 0.0, "cutout": 0,
                  "drop_path_prob": 0.0, "lr_reference_batch": None,
                  "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, **self.train["optimizer"]}}
        module = make_module(net, datamodule.num_classes, recipe, arch)
        limit = self.train["limit_batches"]
        if limit and not self._said_limit:
            log.info("proxy.train.limit_batches=%s: each epoch before measuring is cut to that many batches (Mok et "
                     "al. train whole epochs)", limit)
            self._said_limit = True
        trainer = {**trainer, "precision": self.train["precision"]}
        with quiet_lightning():
            fit, clock = make_trainer(OmegaConf.create({"trainer": trainer, "logger": None}), run_dir,
                                      max_epochs=self.train["epochs"] or -1, max_steps=self.train["steps"] or -1,
                                      checkpoints=False, progress=False, limit_val_batches=0, num_sanity_val_steps=0,
                                      gradient_clip_val=self.train["grad_clip"], limit_train_batches=limit or 1.0)
            fit.fit(module, datamodule=datamodule)
        return {"train_seconds": round(clock.elapsed_s, 3), "train_steps": fit.global_step}

    # -- measuring ----------------------------------------------------------------------------
    def measure(self, net: nn.Module, batches) -> dict[str, float]:
        """Every proxy's value, each the mean over the batches (NaN when a proxy is degenerate)."""
        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        net.to(device).train(self.bn_mode == "train")
        batches = [(x.to(device), y.to(device)) for x, y in batches]
        with shared_kernels(self.ntk_rows_per_pass):  # one NTK per batch for all the NTK proxies
            return {name: float(np.mean([get_proxy(name)(net, x, y) for x, y in batches])) for name in self.names}

    @property
    def lead(self) -> str:
        """The proxy whose value is a trial's own score (the most heavily weighted)."""
        return max(self.weights, key=self.weights.get)

    def score(self, values: dict[str, float]) -> float:
        """A trial's own score: the signed value of the lead proxy."""
        return get_proxy(self.lead).sign * values[self.lead]


def measure_candidate(measurement: ProxyMeasurement, dataset: dict, protocol: dict, trainer: dict,
                      arch: Architecture, ctx: TrialContext) -> tuple[dict[str, float], dict]:
    """(proxy values, cost) of a candidate freshly built from the trial's seed."""
    L.seed_everything(ctx.seed, workers=True, verbose=False)
    datamodule, net, cost = build_candidate(dataset, protocol, arch, measurement.train["batch_size"])
    batches = measurement.batches(datamodule)  # drawn on a forked RNG: training sees the trial's seed alone
    if measurement.trains:
        cost.update(measurement.train_briefly(net, datamodule, protocol, trainer, arch, ctx.trial_dir))
    return measurement.measure(net, batches), cost


@EVALUATORS.register("proxy")
class ProxyEvaluator(Evaluator):
    def __init__(self, dataset: dict, protocol: dict, proxy: dict, trainer: dict | None = None):
        self.dataset, self.protocol, self.trainer = dataset, protocol, trainer or {}
        self.proxy = ProxyMeasurement.from_settings(proxy)

    def settings(self) -> dict:
        settings = super().settings()
        settings["proxy"] = self.proxy.settings()
        if not self.proxy.trains:
            settings.pop("trainer")  # how a network would be trained says nothing about an untrained one
        return settings

    def check(self, space: SearchSpace) -> None:
        super().check(space)
        check_buildable(self.dataset, self.protocol, space)

    @property
    def score_name(self) -> str:  # "lga 0.3165"; a combination's own score is its lead proxy's
        return self.proxy.lead

    def relative_objective(self):
        if len(self.proxy.weights) < 2:
            return None
        return RankCombination(self.proxy.weights, key="proxy/{}")

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        values, cost = measure_candidate(self.proxy, self.dataset, self.protocol, self.trainer, arch, ctx)
        return Result(score=self.proxy.score(values), cost=cost,
                      metrics={f"proxy/{name}": value for name, value in values.items()})
