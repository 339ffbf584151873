"""Evaluate a candidate by training it briefly in this process, scored on the held-out validation split.

The network, optimiser and schedule come from a named protocol (``protocol=quick`` by default), exactly
as ``train.py`` would build them; the Trainer comes from the one ``make_trainer``. The budget is
``evaluator.epochs`` (default: the protocol's) or ``evaluator.max_steps``. The score is the last epoch's
``val/top1`` on the split the datamodule holds out of the training set. Its value after every epoch is
journaled too (``metrics.curve``), for convergence studies. The test split is read only with ``test=true``
(``evaluator=train_test``), after training, for a study's final networks; the score stays the validation one.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import random

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lsnas.arch import Architecture
from lsnas.evaluators.base import EVALUATORS, Evaluator, InvalidArchitecture, Result, TrialContext
from lsnas.spaces.base import SearchSpace
from lsnas.training.callbacks import EpochCurve
from lsnas.training.complexity import complexity
from lsnas.training.runner import build_network, make_module
from lsnas.training.trainer import last_validation, make_trainer

_DATA: dict[str, L.LightningDataModule] = {}  # per process: trials in one worker share the loaded data


def datamodule_for(dataset: dict, batch_size: int):
    key = json.dumps([dataset, batch_size], sort_keys=True, default=str)
    if key not in _DATA:
        _DATA[key] = instantiate(dataset, batch_size=batch_size)
    # the training order follows the seed of the trial at hand (seed_everything ran first), not the seed of
    # the trial that loaded the data: trials with other seeds (a study's seeds) see other orders
    _DATA[key].shuffle_seed = torch.initial_seed() % 2**31
    return _DATA[key]


def build_candidate(dataset: dict, protocol: dict, arch: Architecture, batch_size: int):
    """(datamodule, network, {params, macs}) for a candidate; a network that cannot be built is invalid."""
    datamodule = datamodule_for(dataset, batch_size)
    datamodule.resolve_num_classes()
    try:
        net = build_network(arch, datamodule, protocol)
    except ValueError as e:
        raise InvalidArchitecture(str(e)) from e
    return datamodule, net, complexity(net, datamodule.input_shape)


def check_buildable(dataset: dict, protocol: dict, space: SearchSpace) -> None:
    """Build one sampled candidate for the dataset's input shape: a protocol that cannot build this space's
    networks (an unknown network, an auxiliary head on too small inputs) fails at start-up, not in every
    trial."""
    datamodule = instantiate(dataset, batch_size=protocol["batch_size"])
    datamodule.num_classes = datamodule.num_classes or 10
    build_network(space.sample(random.Random(0)), datamodule, protocol)


@contextlib.contextmanager
def quiet_lightning():
    """Lightning's per-fit info lines ("GPU available", "max_epochs reached") once per trial are noise."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@EVALUATORS.register("train")
class TrainEvaluator(Evaluator):
    def __init__(self, dataset: dict, protocol: dict, trainer: dict, epochs: int | None = None,
                 max_steps: int | None = None, metric: str = "val/top1", timeout_s: float | None = None,
                 max_params: int | None = None, max_macs: int | None = None, test: bool = False):
        self.dataset, self.protocol, self.trainer = dataset, protocol, trainer
        self.test = test  # also measure the test split after training (final trainings, not a search's score)
        self.epochs = int(epochs if epochs is not None else protocol["epochs"])
        self.max_steps, self.metric, self.timeout_s = max_steps, metric, timeout_s
        self.max_params, self.max_macs = max_params, max_macs

    def settings(self) -> dict:  # how long we wait does not change what the score means
        return {k: v for k, v in super().settings().items() if k != "timeout_s"}

    def check(self, space: SearchSpace) -> None:
        super().check(space)
        check_buildable(self.dataset, self.protocol, space)

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        L.seed_everything(ctx.seed, workers=True, verbose=False)
        datamodule, net, cost = build_candidate(self.dataset, self.protocol, arch, self.protocol["batch_size"])
        for key, cap in (("params", self.max_params), ("macs", self.max_macs)):
            if cap is not None and cost[key] > cap:
                raise InvalidArchitecture(f"{cost[key]} {key} exceed evaluator.max_{key}={cap}")
        module = make_module(net, datamodule.num_classes, self.protocol, arch)
        recipe = dict(self.protocol.get("trainer") or {})
        if self.timeout_s:
            recipe["max_time"] = datetime.timedelta(seconds=self.timeout_s)
        settings = OmegaConf.create({"trainer": self.trainer, "logger": None})
        curve = EpochCurve(self.metric)
        with quiet_lightning():
            trainer, clock = make_trainer(settings, ctx.trial_dir, max_epochs=self.epochs, checkpoints=False,
                                          callbacks=[curve],
                                          progress=False, max_steps=self.max_steps or -1,
                                          gradient_clip_val=self.protocol.get("grad_clip") or None, **recipe)
            trainer.fit(module, datamodule=datamodule)
        finished = trainer.current_epoch >= self.epochs or (self.max_steps and trainer.global_step >= self.max_steps)
        if not finished and self.timeout_s:
            raise TimeoutError(f"training stopped by evaluator.timeout_s={self.timeout_s} after "
                               f"{trainer.current_epoch} of {self.epochs} epochs")
        with quiet_lightning():  # the final weights' score, as train.py reports it (validated again if need be)
            last_validation(trainer, module, datamodule, self.metric)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        metrics["curve"] = curve.values  # the metric after each epoch (convergence studies)
        metrics["num_classes"] = datamodule.num_classes  # chance level: a loss near ln(classes) never learned
        if self.test:
            with quiet_lightning():
                (tested,) = trainer.test(module, datamodule=datamodule, verbose=False)
            metrics.update({k: float(v) for k, v in tested.items()})
        cost.update(seconds=round(clock.elapsed_s, 3), epochs=trainer.current_epoch, steps=trainer.global_step)
        loss = metrics.get("train/loss_epoch", 0.0)
        if not math.isfinite(loss):
            return Result(status="nan", cost=cost, metrics=metrics, error=f"training loss became {loss}")
        if self.metric not in metrics:
            raise RuntimeError(f"no {self.metric!r} after training (evaluator.metric); logged: {sorted(metrics)}")
        return Result(score=metrics[self.metric], cost=cost, metrics=metrics)
