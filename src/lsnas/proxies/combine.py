"""A weighted rank combination of proxies, as the training-free searches that use several do (TE-NAS
ranks by the NTK's condition number and the number of linear regions, and sums the ranks).

Raw proxy values live on unrelated scales (a log-determinant, a condition number, a parameter count), so
they are combined by rank: each proxy ranks the candidates (best = highest ``sign * value``), the ranks
are turned into percentiles in (0, 1], and the score is their weighted mean. A candidate whose value is
NaN ranks last for that proxy. Ranks are relative to the candidates given, so the score of one candidate
moves as more are measured. A search ranks its complete trials by a :class:`RankCombination`, whose
:class:`RankIndex` moves every rank as each result arrives (``SearchState.objective``): O(n) vectorised per
result. Ranking all n again per proposal, with a Python object per trial, made the loop's cost per trial grow
with the search (2.4 ms at 1,000 trials, 5.5 ms at 3,000; ``benchmarks/multitrial_throughput.py --relative``).
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
    signed = np.array([[signed_value(name, row.get(name, math.nan)) for name in weights] for row in values]).T
    twice = np.stack([2 * rankdata(column, method="average") for column in signed])  # integers: exact in floats
    return combined_scores(twice, np.array(list(weights.values()), dtype=float)).tolist()


def signed_value(name: str, value: float) -> float:
    """Proxy ``name``'s value oriented so that higher is better; missing, NaN or infinite: -inf (ranked last)."""
    signed = get_proxy(name).sign * float(math.nan if value is None else value)
    return signed if math.isfinite(signed) else -math.inf


def combined_scores(twice_ranks: np.ndarray, weights: np.ndarray, n: int | None = None) -> np.ndarray:
    """Scores from twice the average ranks (proxies x candidates; 1-based ranks, so integers) among ``n``
    candidates (default: the columns): the weighted mean rank percentile. Summed proxy by proxy, element by
    element, so a column alone gives the same number as among all of them."""
    n = twice_ranks.shape[1] if n is None else n
    total = np.zeros(twice_ranks.shape[1])
    for weight, row in zip(weights, twice_ranks):
        total += weight * row
    return total / (2 * n * weights.sum())


class RankIndex:
    """Twice the average rank of each candidate's value per proxy among all candidates added so far, kept up to
    date as candidates are added at any position (a search's complete trials, in order of k): the new one is
    compared with the others, and the others' ranks move by what it changes, O(n) vectorised per candidate."""

    def __init__(self, weights: Sequence[float]):
        self.weights = np.asarray(weights, dtype=float)
        self._values = np.empty((len(self.weights), 0))
        self._twice = np.empty((len(self.weights), 0), dtype=np.int64)

    def __len__(self) -> int:
        return self._values.shape[1]

    def insert(self, position: int, signed: Sequence[float]) -> None:
        """Add a candidate with these signed values (:func:`signed_value`, one per proxy) at ``position``."""
        v = np.asarray(signed, dtype=float)[:, None]
        above, equal = self._values > v, self._values == v
        # its ranks L + 1 .. L + E among the L values below and the E equal ones, itself included: twice the mean
        new = 2 * (self._values < v).sum(axis=1) + equal.sum(axis=1) + 2
        self._twice += 2 * above + equal
        self._values = np.insert(self._values, position, v[:, 0], axis=1)
        self._twice = np.insert(self._twice, position, new, axis=1)

    def scores(self) -> np.ndarray:
        return combined_scores(self._twice, self.weights)

    def score(self, position: int) -> float:
        """The score of the candidate at ``position`` (bitwise the same as in :meth:`scores`)."""
        return float(combined_scores(self._twice[:, position:position + 1], self.weights, len(self))[0])

    def best(self) -> int | None:
        """The position of the highest score (the first among equals), None when empty."""
        return int(np.argmax(self.scores())) if len(self) else None


class RankCombination:
    """:func:`rank_combination` as a search's relative objective: a result's proxy values are its
    ``metrics[key.format(name)]``; :meth:`index` ranks results as they arrive."""

    def __init__(self, weights: Mapping[str, float], key: str = "proxy/{}"):
        self.weights, self.key = dict(weights), key

    def signed(self, result: Mapping) -> list[float]:
        metrics = result.get("metrics", {})
        return [signed_value(name, metrics.get(self.key.format(name), math.nan)) for name in self.weights]

    def index(self) -> RankIndex:
        return RankIndex(list(self.weights.values()))

    def __call__(self, results: Sequence[Mapping]) -> list[float]:
        """The scores of ``results`` ranked among themselves (all at once)."""
        return rank_combination([{name: r.get("metrics", {}).get(self.key.format(name), math.nan)
                                  for name in self.weights} for r in results], self.weights)
