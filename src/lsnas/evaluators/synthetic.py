"""A cheap evaluator with a known objective, for tests, benchmarks and trying a strategy out.

The score is the share of a hidden target architecture's decisions that the candidate shares (the
overlap of their ``encode`` vectors, ``objective=overlap``: for one-hot encodings), or a smooth bump
around the target in the space's unit box (``objective=smooth``: exp(-||x - t||^2 / (2 width^2 d)), for box
encodings such as the ResNet spaces'). 1.0 is reachable, and a strategy that exploits results climbs
towards it. ``target`` fixes the hidden architecture (its dict form) instead of drawing it from
``target_seed``. ``space`` (the run's space settings) encodes candidates as the search does. ``seconds``
simulates training time; ``fail_every`` / ``nan_every`` inject failures on every n-th trial (by trial
index), so failure handling can be exercised without a real training.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np

from lsnas.arch import Architecture
from lsnas.evaluators.base import EVALUATORS, Evaluator, Result, TrialContext
from lsnas.spaces import get_space, space_from_config
from lsnas.spaces.base import SearchSpace


@EVALUATORS.register("synthetic")
class SyntheticEvaluator(Evaluator):
    reads_data = False
    def __init__(self, target_seed: int = 0, seconds: float = 0.0, fail_every: int = 0, nan_every: int = 0,
                 objective: str = "overlap", width: float = 0.3, space: dict | None = None,
                 target: dict | None = None):
        if objective not in ("overlap", "smooth"):
            from lsnas.errors import ConfigError

            raise ConfigError(f"evaluator.objective must be overlap or smooth, got {objective!r}")
        self.objective, self.width, self.space = objective, float(width), space
        self.target_arch = target
        self.target_seed, self.seconds = int(target_seed), float(seconds)
        self.fail_every, self.nan_every = int(fail_every), int(nan_every)

    def check(self, space: SearchSpace) -> None:
        from lsnas.errors import ConfigError

        if not (space.supports("sample") and space.supports("encode")):
            raise ConfigError(f"evaluator=synthetic needs a space that can sample and encode; {space.name!r} "
                              "cannot (setting: evaluator)")

    def target(self, space: SearchSpace) -> Architecture:
        if self.target_arch is not None:
            return Architecture.from_dict(self.target_arch, source="evaluator.target")
        return space.sample(random.Random(f"synthetic target {self.target_seed}"))  # not any trial's stream

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        if self.fail_every and ctx.k % self.fail_every == self.fail_every - 1:
            raise RuntimeError(f"injected failure (evaluator.fail_every={self.fail_every})")
        space = space_from_config(self.space) if self.space else get_space(arch.space)
        mine, target = space.encode(arch), space.encode(self.target(space))
        if self.objective == "smooth":
            score = float(np.exp(-np.sum((mine - target) ** 2) / (2 * self.width ** 2 * len(target))))
        else:
            score = float(np.minimum(mine, target).sum() / target.sum())
        if self.nan_every and ctx.k % self.nan_every == self.nan_every - 1:
            score = float("nan")
        if self.seconds:
            time.sleep(self.seconds)
        return Result(score=score, cost={"epochs": 0}, metrics={"pid": os.getpid()})  # which worker ran it
