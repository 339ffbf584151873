"""The Strategy contract of multi-trial search: ask for a proposal given the search state, be told results.

    class MyStrategy(Strategy):
        requires = ("sample",)                     # space operations it uses (checked at start-up)

        def ask(self, state, rng):                 # -> Proposal | None (wait for results) | DONE
            ...

A strategy keeps no state of its own that matters: everything it needs (the population, the generation,
its stage, the points a surrogate is fitted to) is derived from ``state``, which the driver replays from
the journal. ``rng`` is a fresh ``random.Random`` seeded from (search seed, trial index k), so a fresh
strategy given the same state proposes the same thing, and a resumed search continues where the
uninterrupted one would have been. (With several workers, a strategy that uses results sees them in the
order they finish, which varies from run to run; with one worker, or for random search, the whole search
is reproducible.) ``tell`` is at most a cache.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods.multitrial.journal import TrialLog
from lsnas.registry import Registry
from lsnas.spaces.base import SearchSpace

STRATEGIES: Registry[type] = Registry("multi-trial strategy", setting="method")


class _Done:
    def __repr__(self) -> str:
        return "DONE"


DONE = _Done()  # ask's answer when the strategy has nothing more to propose


@dataclass(frozen=True)
class Proposal:
    arch: Architecture
    tags: dict = field(default_factory=dict)  # e.g. {"parent": 12, "generation": 3}: journaled with the ask


@dataclass(frozen=True)
class Trial:
    """One asked trial as the strategy sees it: its architecture, tags and (once finished) its result.
    ``objective`` is its score relative to the other trials, when the search's score is relative."""

    k: int
    ask: dict
    result: dict | None
    objective: float | None = None

    @cached_property
    def arch(self) -> Architecture:
        return Architecture.from_dict(self.ask["arch"], source=f"trial {self.k}")

    @property
    def tags(self) -> dict:
        return self.ask.get("tags", {})

    @property
    def status(self) -> str:
        return self.result["status"] if self.result else "pending"

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def score(self) -> float | None:
        """What the search maximises: the evaluator's score, or the relative objective when there is one."""
        if not self.complete:
            return None
        return self.objective if self.objective is not None else self.result.get("score")


#: A relative objective: the complete trials' results (in order of k) -> their scores. A weighted rank
#: combination of proxies is one: a candidate's rank depends on the others measured.
Objective = Callable[[Sequence[dict]], Sequence[float]]


class SearchState:
    """The search so far, replayed from the journal: every asked trial in order of k.

    With an ``objective`` (the evaluator's, when its scores are relative), complete trials are scored by it,
    recomputed over all of them whenever the journal changes; otherwise by their own journaled score."""

    def __init__(self, log: TrialLog, space: SearchSpace, objective: Objective | None = None,
                 tags: dict | None = None):
        self.log, self.space, self.objective = log, space, objective
        self.tags = dict(tags or {})
        self._trials: dict[int, Trial] = {}
        self._objectives: tuple[int, dict[int, float]] = (-1, {})

    def where(self, **tags) -> SearchState:
        """The trials whose tags include ``tags`` (a stage of a staged search), as a state of their own: what a
        strategy sees of that stage. A relative objective ranks them among themselves."""
        return SearchState(self.log, self.space, self.objective, {**self.tags, **tags})

    def _keys(self) -> list[int]:
        asks = self.log.asks
        if not self.tags:
            return sorted(asks)
        return [k for k in sorted(asks) if all(asks[k].get("tags", {}).get(t) == v for t, v in self.tags.items())]

    def _relative_scores(self) -> dict[int, float]:
        version, scores = self._objectives
        if version != self.log.version:
            done = [k for k in self._keys() if k in self.log.results and self.log.results[k]["status"] == "complete"]
            scores = dict(zip(done, map(float, self.objective([self.log.results[k] for k in done]))))
            self._objectives = (self.log.version, scores)
        return scores

    def trial(self, k: int) -> Trial:
        ask, result = self.log.asks[k], self.log.results.get(k)
        objective = self._relative_scores().get(k) if self.objective else None
        cached = self._trials.get(k)
        if cached is None or cached.result is not result or cached.objective != objective:
            fresh = Trial(k, ask, result, objective)
            if cached is not None and "arch" in vars(cached):
                vars(fresh)["arch"] = cached.arch  # parsed once
            cached = self._trials[k] = fresh
        return cached

    @property
    def trials(self) -> list[Trial]:
        return [self.trial(k) for k in self._keys()]

    def completed(self) -> list[Trial]:
        """Complete trials with a score, in order of k (failures are never candidates for anything)."""
        return [t for t in self.trials if t.complete]

    @property
    def num_asked(self) -> int:
        return len(self._keys())

    @property
    def num_pending(self) -> int:
        return sum(k not in self.log.results for k in self._keys())

    def seen(self) -> set[str]:
        return {self.log.asks[k]["digest"] for k in self._keys()}

    def best(self) -> Trial | None:
        """The complete trial with the highest score (the earliest among equals)."""
        return max(self.completed(), key=lambda t: (t.score, -t.k), default=None)

    def __iter__(self) -> Iterator[Trial]:
        return iter(self.trials)


class Strategy:
    """Base of multi-trial strategies: ``num_trials`` proposals in all (the budget, which may change
    when a search is resumed)."""

    requires: ClassVar[tuple[str, ...]] = ("sample",)

    def __init__(self, num_trials: int):
        if num_trials < 1:
            raise ConfigError(f"method.num_trials must be at least 1, got {num_trials}")
        self.num_trials = int(num_trials)
        self.stop_reason: str | None = None  # why ask answered DONE before the budget ran out (a convergence test)

    def check_space(self, space: SearchSpace) -> None:
        """A start-up error when the space lacks an operation this strategy needs."""
        missing = [op for op in self.requires if not space.supports(op)]
        if missing:
            raise ConfigError(f"{type(self).__name__} needs a space that can {' and '.join(missing)} "
                              f"architectures, which the {space.name!r} space cannot (setting: space or method)")

    def budget_left(self, state: SearchState) -> bool:
        return state.num_asked < self.num_trials

    def ask(self, state: SearchState, rng: random.Random) -> Proposal | None | _Done:
        raise NotImplementedError

    def tell(self, trial: Trial) -> None:
        """Called when ``trial`` finishes (nothing to do for strategies that derive all from the state)."""

    def sample_unseen(self, state: SearchState, rng: random.Random, tries: int = 1000) -> Architecture | None:
        """A uniformly random architecture not asked before (None when ``tries`` draws find none)."""
        seen = state.seen()
        for _ in range(tries):
            arch = state.space.sample(rng)
            if arch.digest not in seen:
                return arch
        return None
