"""A weighted rank combination of proxies, as the training-free searches that use several do (TE-NAS
ranks by the NTK's condition number and the number of linear regions, and sums the ranks).

Raw proxy values live on unrelated scales (a log-determinant, a condition number, a parameter count), so
they are combined by rank: each proxy ranks the candidates (best = highest ``sign * value``), the ranks
are turned into percentiles in (0, 1], and the score is their weighted mean. A candidate whose value is
NaN ranks last for that proxy. Ranks are relative to the candidates given, so the score of one candidate
moves as more are measured. A search ranks its complete trials by a :class:`RankCombination`: its
:class:`RankIndex` moves every rank as each result comes in, O(n) vectorised, instead of ranking every trial
again per question (``SearchState.objective``; docs/benchmarks.md, "Scored by a relative objective").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from lsnas.errors import ConfigError
from lsnas.proxies.base import get_proxy


def check_weights(measure: Sequence[str], weights: Sequence[float] | None = None) -> dict[str, float]:
    """{proxy: weight} from ``proxy.measure`` (names) and ``proxy.weights`` (None: equal), checked."""
    if isinstance(measure, str):
        measure = [measure]
    if not measure:
        raise ConfigError("proxy.measure is empty: name at least one proxy, e.g. proxy.measure=[lga]")
    if len(set(measure)) != len(measure):
        raise ConfigError(f"proxy.measure names a proxy twice: {list(measure)}")
    weights = [1.0] * len(measure) if weights is None else list(weights)
    if len(weights) != len(measure):
        raise ConfigError(f"proxy.weights has {len(weights)} entries for the {len(measure)} proxies of "
                          f"proxy.measure={list(measure)} (or null for equal weights)")
    for name, weight in zip(measure, weights):
        get_proxy(name)  # an unknown name fails here, listing the known ones
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
            raise ConfigError(f"proxy.weights: the weight of {name} must be a positive number, got {weight!r}")
    return {str(name): float(weight) for name, weight in zip(measure, weights)}


def rank_combination(values: Sequence[Mapping[str, float]], weights: Mapping[str, float]) -> list[float]:
    """The weighted mean rank percentile of each candidate (1.0: the best of ``values`` on every proxy).

    ``values[i][name]`` is proxy ``name``'s raw value for candidate i (missing or NaN: ranked last).
    """
    if not values:
        return []
    signed = np.array([[signed_value(name, row.get(name, math.nan)) for row in values] for name in weights])
    return combined_scores(twice_ranks(signed), np.array(list(weights.values()), dtype=float)).tolist()


def twice_ranks(signed: np.ndarray) -> np.ndarray:
    """Twice the average 1-based rank of each value in its row (proxies x candidates): integers."""
    return (2 * rankdata(signed, method="average", axis=1)).astype(np.int64)


def signed_value(name: str, value: float) -> float:
    """Proxy ``name``'s value oriented so that higher is better; missing, NaN or infinite: -inf (ranked last)."""
    signed = get_proxy(name).sign * float(math.nan if value is None else value)
    return signed if math.isfinite(signed) else -math.inf


def combined_scores(twice: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Scores from twice the average ranks (proxies x candidates, :func:`twice_ranks`): the weighted mean rank
    percentile, summed proxy by proxy so that both ways of ranking give the same numbers to the bit."""
    total = np.zeros(twice.shape[1])
    for weight, row in zip(weights, twice):
        total += weight * row
    return total / (2 * twice.shape[1] * weights.sum())


class RankIndex:
    """Twice the average rank of each candidate's value per proxy among all candidates added so far, kept up to
    date as candidates are added at any position (a search's complete trials, in order of k): a new one is
    compared with the others once, which moves their ranks, O(n) vectorised. Many at once (a resumed search's
    replay) are ranked together instead: one sort, where one by one would be O(n^2)."""

    def __init__(self, weights: Sequence[float]):
        self.weights = np.asarray(weights, dtype=float)
        self._values = np.empty((len(self.weights), 0))
        self._twice = np.empty((len(self.weights), 0), dtype=np.int64)
        self._scores: np.ndarray | None = None  # of the current candidates; None: to compute

    def __len__(self) -> int:
        return self._values.shape[1]

    def _column(self, signed: Sequence[float]) -> np.ndarray:
        v = np.asarray(signed, dtype=float)
        if v.shape != (len(self.weights),):
            raise ValueError(f"{len(v)} values for a rank index of {len(self.weights)} proxies")
        return np.where(np.isfinite(v), v, -np.inf)  # as signed_value: not finite ranks last

    def insert(self, position: int, signed: Sequence[float]) -> None:
        """Add a candidate with these signed values (one per proxy, higher better) at ``position``."""
        v = self._column(signed)[:, None]
        above, equal = self._values > v, self._values == v
        # its ranks are L + 1 .. L + E, with L = n - above - equal values below it and E = equal + 1 (itself):
        # twice their mean is 2L + E + 1
        new = 2 * (len(self) - above.sum(axis=1)) - equal.sum(axis=1) + 2
        self._twice += 2 * above + equal
        self._values = np.insert(self._values, position, v[:, 0], axis=1)
        self._twice = np.insert(self._twice, position, new, axis=1)
        self._scores = None

    def reset(self, columns: Sequence[Sequence[float]]) -> None:
        """Replace the candidates by these (their signed values, in position order), ranked in one go."""
        values = np.stack([self._column(c) for c in columns], axis=1) if len(columns) else self._values[:, :0]
        self._values, self._twice, self._scores = values, twice_ranks(values), None

    def scores(self) -> np.ndarray:
        """Every candidate's score, in position order (computed once per change)."""
        if self._scores is None:
            self._scores = combined_scores(self._twice, self.weights)
        return self._scores

    def score(self, position: int) -> float:
        return float(self.scores()[position])

    def best(self) -> int | None:
        """The position of the highest score (the first among equals), None when empty."""
        return int(np.argmax(self.scores())) if len(self) else None


class RankCombination:
    """:func:`rank_combination` as a search's relative objective: a result's proxy values are its
    ``metrics[key.format(name)]``; :meth:`index` ranks results as they come in."""

    def __init__(self, weights: Mapping[str, float], key: str = "proxy/{}"):
        self.weights, self.key = dict(weights), key

    def signed(self, result: Mapping) -> list[float]:
        metrics = result.get("metrics", {})
        return [signed_value(name, metrics.get(self.key.format(name), math.nan)) for name in self.weights]

    def index(self) -> RankIndex:
        return RankIndex(list(self.weights.values()))

    def __call__(self, results: Sequence[Mapping]) -> list[float]:
        """The scores of ``results`` ranked among themselves, all at once (what the index must agree with)."""
        return rank_combination([{name: r.get("metrics", {}).get(self.key.format(name), math.nan)
                                  for name in self.weights} for r in results], self.weights)
