"""The Evaluator contract: an architecture in, a typed result out.

    @EVALUATORS.register("my_proxy")
    class MyProxy(Evaluator):
        def evaluate(self, arch, ctx) -> Result: ...

An evaluator is stateless and built from plain settings, so it pickles to a Ray worker or a SLURM job.
Its ``fingerprint`` names what its score means (protocol, dataset, split, budget): two trials of the same
architecture with the same fingerprint are duplicates, answered from the journal. Scores are "higher is
better" (top-1, a proxy's rank value); the cost says what a trial spent.

``run_trial`` is the one place that turns what happened into a status: complete, invalid (the architecture
cannot be built or breaks a constraint), nan, oom, timeout, failed, or lost (the worker died; raised by
executors).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lsnas.arch import Architecture, ArchitectureError
from lsnas.methods.multitrial.journal import STATUSES
from lsnas.registry import Registry
from lsnas.spaces.base import SearchSpace

EVALUATORS: Registry[type] = Registry("evaluator", setting="evaluator")


class InvalidArchitecture(Exception):
    """The candidate cannot be built for this data, or breaks a constraint (a MACs cap, say)."""


class TrialLost(Exception):
    """The process or node running the trial died; the trial is retried with the same seed."""


@dataclass
class TrialContext:
    k: int                     # the trial index
    seed: int                  # the training seed (the same for every trial: common random numbers)
    trial_dir: str             # <run dir>/trials/<k>: the trial's files (logs, a train.py run dir), if any
    attempt: int = 0           # > 0 when a lost trial is retried


@dataclass
class Result:
    status: str = "complete"
    score: float | None = None
    cost: dict = field(default_factory=dict)      # seconds, epochs, steps, macs, params, ...
    metrics: dict = field(default_factory=dict)   # anything else worth keeping (losses, val top-5)
    error: str | None = None
    artifacts: dict = field(default_factory=dict)  # paths (a checkpoint, a job id, a log)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}


class Evaluator:
    """Base of evaluators. Subclasses set ``name`` (via the registry) and implement ``evaluate``."""

    #: spaces the evaluator can score (None: any space that builds networks)
    spaces: tuple[str, ...] | None = None
    reads_data = True  # False: scores come from no dataset (a synthetic objective), so a run claims none

    @property
    def score_name(self) -> str:
        """What a score is, named beside its value in progress lines and summaries ("val/top1 0.71")."""
        return getattr(self, "metric", None) or "score"

    def settings(self) -> dict:
        """What determines the score (the fingerprint's input); by default the constructor's settings, less
        the dataset's loader workers (how fast data is read does not change a score)."""
        settings = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        if isinstance(settings.get("dataset"), dict):
            settings["dataset"] = {k: v for k, v in settings["dataset"].items() if k != "num_workers"}
        return settings

    def fingerprint(self) -> str:
        payload = json.dumps({"evaluator": type(self).__qualname__, **self.settings()}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def check(self, space: SearchSpace) -> None:
        """A start-up error (naming the setting) when this evaluator cannot score the space's architectures."""
        from lsnas.errors import ConfigError

        if self.spaces is not None and space.name not in self.spaces:
            raise ConfigError(f"the {type(self).__name__} evaluator scores architectures of the "
                              f"{', '.join(self.spaces)} space(s), not {space.name!r} (setting: evaluator or space)")

    def route(self, tags: dict) -> Evaluator:
        """The evaluator that scores a trial proposed with these tags: itself, except for a staged evaluator,
        which answers with its stage's."""
        return self

    def relative_objective(self):
        """The search's score when this evaluator's scores are relative to other candidates (a rank
        combination of proxies): an ``Objective`` (``lsnas.methods.multitrial.strategy``), such as
        ``lsnas.proxies.combine.RankCombination``. None: each trial's own score."""
        return None

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        raise NotImplementedError


def error_text(error: BaseException, limit: int = 12) -> str:
    """A failed trial's error for its result: the exception, then the last ``limit`` lines of its traceback."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    tail = "".join(lines[-limit:]).rstrip()
    return f"{type(error).__name__}: {error}\n{tail}"


def status_of(error: BaseException) -> str:
    if isinstance(error, (InvalidArchitecture, ArchitectureError)):
        return "invalid"
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return "oom"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, TrialLost):
        return "lost"
    return "failed"


def run_trial(evaluator: Evaluator, arch: dict, ctx: TrialContext) -> dict:
    """Evaluate ``arch`` (its dict form) and return the result as a dict; never raises for a trial's own
    failure. Runs in the driver, a thread, a Ray worker or a cluster job alike."""
    started = time.perf_counter()
    try:
        result = evaluator.evaluate(Architecture.from_dict(arch, source=f"trial {ctx.k}"), ctx)
        result = _checked(result)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a trial's failure is a result, not the end of the search
        result = Result(status=status_of(error), error=error_text(error))
    result.cost.setdefault("seconds", round(time.perf_counter() - started, 3))
    return result.to_dict()


def _checked(result: Result) -> Result:
    """What the journal can hold: a known status, a finite float score on complete trials only (a NaN score
    is the status nan), and JSON-clean cost / metrics / artifacts (non-finite numbers dropped)."""
    if result.status not in STATUSES:
        raise ValueError(f"the evaluator returned an unknown status {result.status!r}; known: {', '.join(STATUSES)}")
    score = None if result.score is None else float(result.score)
    if result.status == "complete" and (score is None or not math.isfinite(score)):
        result.status, result.error = "nan", f"no finite score (got {score!r})"
    result.score = score if result.status == "complete" else None
    for name in ("cost", "metrics", "artifacts"):
        setattr(result, name, _finite(json.loads(json.dumps(getattr(result, name), default=_plain))))
    return result


def _finite(value: Any) -> Any:
    """``value`` without non-finite numbers: dropped from dicts, None in lists."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items() if not _non_finite(v)}
    if isinstance(value, list):
        return [None if _non_finite(v) else _finite(v) for v in value]
    return value


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _plain(value: Any) -> Any:
    """numpy and torch values as Python numbers (or lists of them); anything else as its string."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
