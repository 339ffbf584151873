"""A weighted rank combination of proxies, as the training-free searches that use several do (TE-NAS
ranks by the NTK's condition number and the number of linear regions, and sums the ranks).

Raw proxy values live on unrelated scales (a log-determinant, a condition number, a parameter count), so
they are combined by rank: each proxy ranks the candidates (best = highest ``sign * value``), the ranks
are turned into percentiles in (0, 1], and the score is their weighted mean. A candidate whose value is
NaN ranks last for that proxy. Ranks are relative to the candidates given, so the score of one candidate
moves as more are measured; a search recomputes them over every complete trial (``SearchState.objective``).
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
    n = len(values)
    if n == 0:
        return []
    total = np.zeros(n)
    for name, weight in weights.items():
        signed = np.array([get_proxy(name).sign * float(row.get(name, math.nan)) for row in values])
        signed[~np.isfinite(signed)] = -np.inf
        total += weight * rankdata(signed, method="average") / n
    return (total / sum(weights.values())).tolist()
