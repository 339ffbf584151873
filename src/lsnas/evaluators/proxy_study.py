"""Measure proxies and train, for the proxy-quality study (``method=proxy_study``, ``evaluator=proxy_study``).

Each candidate is measured under every labelled proxy measurement (``measurements.init``: every proxy at
initialisation; ``measurements.trained``: LGA after one epoch, by default), each on a network freshly built
from the trial's seed, then trained under the protocol like the train evaluator. The score is the trained
accuracy; the proxies are journaled as ``<label>/<proxy>`` metrics, which the study correlates with it.
"""

from __future__ import annotations

import time

from lsnas.arch import Architecture
from lsnas.evaluators.base import EVALUATORS, Evaluator, Result, TrialContext
from lsnas.evaluators.proxy import ProxyMeasurement, measure_candidate
from lsnas.evaluators.train import TrainEvaluator
from lsnas.spaces.base import SearchSpace


@EVALUATORS.register("proxy_study")
class ProxyStudyEvaluator(Evaluator):
    def __init__(self, dataset: dict, protocol: dict, trainer: dict, measurements: dict[str, dict],
                 epochs: int | None = None, max_steps: int | None = None, metric: str = "val/top1",
                 timeout_s: float | None = None):
        self.measurements = {label: ProxyMeasurement.from_settings(m) for label, m in measurements.items()}
        self.training = TrainEvaluator(dataset, protocol, trainer, epochs, max_steps, metric, timeout_s)

    def settings(self) -> dict:
        return {"measurements": {label: m.settings() for label, m in self.measurements.items()},
                "training": self.training.settings()}

    def check(self, space: SearchSpace) -> None:
        self.training.check(space)

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        metrics, seconds = {}, {}
        for label, measurement in self.measurements.items():
            started = time.perf_counter()
            values, _ = measure_candidate(measurement, self.training.dataset, self.training.protocol,
                                          self.training.trainer, arch, ctx)
            metrics.update({f"{label}/{name}": value for name, value in values.items()})
            seconds[f"{label}_seconds"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        result = self.training.evaluate(arch, ctx)
        result.metrics.update(metrics)
        result.cost.update(seconds, train_seconds=round(time.perf_counter() - started, 3),
                           seconds=round(sum(seconds.values()) + time.perf_counter() - started, 3))
        return result
