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

import bisect
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, Protocol

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods.multitrial.journal import TrialLog
from lsnas.registry import Registry
from lsnas.spaces.base import SearchSpace

if TYPE_CHECKING:
    from lsnas.proxies.combine import RankIndex

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


class Objective(Protocol):
    """A relative objective: a trial's score depends on the other complete trials (a weighted rank combination of
    proxies, :class:`lsnas.proxies.combine.RankCombination`). ``signed`` gives the values it ranks, from a
    result; ``index`` an empty :class:`~lsnas.proxies.combine.RankIndex` that the state fills as results arrive."""

    def signed(self, result: dict) -> Sequence[float]: ...

    def index(self) -> RankIndex: ...


class SearchState:
    """The search so far, replayed from the journal: every asked trial in order of k.

    With an ``objective`` (the evaluator's, when its scores are relative), complete trials are scored by it,
    ranked among all of them; otherwise by their own journaled score. What strategies ask for on every proposal
    (the asked trials, the digests seen, the complete trials, their ranks, the best) is kept up to date from the
    events that arrived since the last question, so the Python work per trial does not grow with the search
    (a relative objective's ranks and best are O(n) vectorised)."""

    def __init__(self, log: TrialLog, space: SearchSpace, objective: Objective | None = None,
                 tags: dict | None = None):
        self.log, self.space, self.objective = log, space, objective
        self.tags = dict(tags or {})
        self._trials: dict[int, Trial] = {}
        self._ranks = objective.index() if objective is not None else None  # of the complete trials, in order of k
        self._views: dict[tuple, SearchState] = {}
        self._ks: list[int] = []           # asked, in order of k
        self._member: set[int] = set()
        self._digests: set[str] = set()
        self._complete: list[int] = []     # complete, in order of k
        self._finished = 0                 # results of any status
        self._best_k: int | None = None    # by the journaled score (no relative objective)
        self._asks_read = self._results_read = 0

    def where(self, **tags) -> SearchState:
        """The trials whose tags include ``tags`` (a stage of a staged search), as a state of their own: what a
        strategy sees of that stage. A relative objective ranks them among themselves."""
        merged = {**self.tags, **tags}
        if merged == self.tags:
            return self  # the same trials: one state, one rank index
        try:
            key = tuple(sorted(merged.items()))
            if key not in self._views:
                self._views[key] = SearchState(self.log, self.space, self.objective, merged)
            return self._views[key]
        except TypeError:  # a tag value that does not hash
            return SearchState(self.log, self.space, self.objective, merged)

    def _sync(self) -> None:
        """Take in the asks and results journaled since the last call."""
        log = self.log
        if self._asks_read < len(log.ask_order):
            for k in log.ask_order[self._asks_read:]:
                tags = log.asks[k].get("tags", {})
                if all(tags.get(t) == v for t, v in self.tags.items()):
                    self._ks.append(k)
                    self._member.add(k)
                    self._digests.add(log.asks[k]["digest"])
            self._asks_read = len(log.ask_order)
        if self._results_read < len(log.result_order):
            # a result is read once (the loop journals one per k; a second would not be seen)
            self._take_results([k for k in log.result_order[self._results_read:] if k in self._member])
            self._results_read = len(log.result_order)

    def _take_results(self, arrived: list[int]) -> None:
        results = self.log.results
        complete = [k for k in arrived if results[k]["status"] == "complete"]
        if self._ranks is not None:  # the objective's values first: if one raises, nothing has changed yet
            one_by_one = len(complete) <= max(64, len(self._complete) // 8)  # else (a replay) rank all at once
            ranked = complete if one_by_one else sorted(self._complete + complete)
            signed = [self.objective.signed(results[k]) for k in ranked]
        self._finished += len(arrived)
        for i, k in enumerate(complete):
            position = bisect.bisect_left(self._complete, k)
            self._complete.insert(position, k)
            if self._ranks is not None and one_by_one:
                self._ranks.insert(position, signed[i])
            best = results[self._best_k] if self._best_k is not None else None
            if best is None or (results[k].get("score"), -k) > (best.get("score"), -self._best_k):
                self._best_k = k
        if self._ranks is not None and not one_by_one:
            self._ranks.reset(signed)

    def _keys(self) -> list[int]:
        self._sync()
        return self._ks

    def _relative_score(self, k: int) -> float | None:
        """Trial k's score by the objective (None unless it is complete)."""
        self._sync()
        position = bisect.bisect_left(self._complete, k)
        if position == len(self._complete) or self._complete[position] != k:
            return None
        return self._ranks.score(position)

    def trial(self, k: int) -> Trial:
        ask, result = self.log.asks[k], self.log.results.get(k)
        objective = self._relative_score(k) if self._ranks is not None else None
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

    def first(self, n: int) -> list[Trial]:
        """The first ``n`` trials asked."""
        return [self.trial(k) for k in self._keys()[:n]]

    def completed(self, last: int | None = None) -> list[Trial]:
        """Complete trials with a score, in order of k (failures are never candidates for anything); with
        ``last``, only the last that many."""
        self._sync()
        ks = self._complete if last is None else self._complete[-last:] if last > 0 else []
        return [self.trial(k) for k in ks]

    @property
    def num_asked(self) -> int:
        return len(self._keys())

    @property
    def num_pending(self) -> int:
        return len(self._keys()) - self._finished

    def seen(self) -> set[str]:
        """The digests of every asked architecture (the state's own set: read it, do not change it)."""
        self._sync()
        return self._digests

    def best(self) -> Trial | None:
        """The complete trial with the highest score (the earliest among equals)."""
        self._sync()
        if self._ranks is not None:
            position = self._ranks.best()
            return None if position is None else self.trial(self._complete[position])
        return None if self._best_k is None else self.trial(self._best_k)

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
