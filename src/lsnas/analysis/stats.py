"""The statistics every lsnas report uses: rank correlations with bootstrap intervals, means with
bootstrap intervals, differences of means with a named test. Pure functions over arrays.

Intervals are percentile bootstraps of our own rather than ``scipy.stats.bootstrap``: with few runs some
resamples repeat one value (or one pair) and have no statistic, which makes scipy's interval NaN; here
those resamples are left out. The tests themselves are scipy's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

COEFFICIENTS = {"kendall_tau": lambda x, y: stats.kendalltau(x, y).statistic,
                "spearman_rho": lambda x, y: stats.spearmanr(x, y).statistic}


def _chunks(rows: int, n: int, budget: int = 4_000_000):
    step = max(1, budget // max(n * n, 1))
    return (slice(i, i + step) for i in range(0, rows, step))


def kendall_tau_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of every row of ``x`` against the same row of ``y`` (what scipy's kendalltau gives
    for one row: sum of sign products over pairs / sqrt(untied pairs in x * untied pairs in y); NaN without
    spread). Vectorised for bootstraps."""
    out = np.empty(len(x))
    for rows in _chunks(len(x), x.shape[1]):
        sx = np.sign(x[rows, :, None] - x[rows, None, :])
        sy = np.sign(y[rows, :, None] - y[rows, None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[rows] = (sx * sy).sum((1, 2)) / np.sqrt((sx * sx).sum((1, 2)) * (sy * sy).sum((1, 2)))
    return out


def spearman_rho_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of every row pair: Pearson's r of the rows' ranks (ties averaged), as scipy's."""
    rx, ry = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))


ROWWISE = {"kendall_tau": kendall_tau_rows, "spearman_rho": spearman_rho_rows}


def _percentiles(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    boot = boot[np.isfinite(boot)]
    if not boot.size:
        return math.nan, math.nan
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return float(low), float(high)


def correlation(x, y, coefficient: str, resamples: int = 1000, confidence: float = 0.95,
                seed: int = 0) -> tuple[float, float, float]:
    """(coefficient, low, high) of ``x`` against ``y``; NaN throughout with fewer than 3 pairs or no spread.
    The interval is a percentile bootstrap over pairs (resampled together)."""
    fn = COEFFICIENTS[coefficient]
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(x), size=(resamples, len(x)))
    boot = ROWWISE[coefficient](x[draws], y[draws])  # a resample with one repeated pair has none: dropped
    return (float(fn(x, y)), *_percentiles(boot, confidence))


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)


def mean_interval(values, resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
                  min_n: int = 2) -> Interval:
    """The mean with a percentile-bootstrap interval; NaN bounds with fewer than ``min_n`` values (a percentile
    bootstrap of 2 values is their range, which covers the mean far less often than its nominal level)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return Interval(math.nan, math.nan, math.nan)
    if v.size < max(min_n, 2):
        return Interval(float(v.mean()), math.nan, math.nan)
    rng = np.random.default_rng(seed)
    boot = v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
    return Interval(float(v.mean()), *_percentiles(boot, confidence))


def difference_interval(a, b, resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
                        min_n: int = 2) -> Interval:
    """mean(a) - mean(b), each side resampled on its own (independent groups); NaN bounds when a side has fewer
    than ``min_n`` values (its spread would be left out of the interval)."""
    a, b = (np.asarray(v, float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not a.size or not b.size:
        return Interval(math.nan, math.nan, math.nan)
    value = float(a.mean() - b.mean())
    if min(a.size, b.size) < max(min_n, 2):
        return Interval(value, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    boot = (a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1)
            - b[rng.integers(0, b.size, size=(resamples, b.size))].mean(axis=1))
    return Interval(value, *_percentiles(boot, confidence))


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p of the Mann-Whitney U test; NaN when a side is empty or nothing varies."""
    a, b = [float(v) for v in a if math.isfinite(v)], [float(v) for v in b if math.isfinite(v)]
    if not a or not b or len(set(a) | set(b)) < 2:
        return math.nan
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def wilcoxon(differences: Sequence[float]) -> float:
    """Two-sided p of the Wilcoxon signed-rank test of paired differences; NaN below 2 non-zero pairs."""
    d = np.asarray(differences, float)
    d = d[np.isfinite(d)]
    if np.count_nonzero(d) < 2:
        return math.nan
    return float(stats.wilcoxon(d).pvalue)


def grouped_bootstrap(groups: dict[str, np.ndarray], statistic: Callable[[np.ndarray], np.ndarray],
                      resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """A statistic of the groups' means (a rank correlation between two method rankings, say), with an
    interval from resampling the runs within every group independently (over seeds and architectures).
    ``statistic`` maps a (rows, groups) array of means, columns in ``groups``' order, to one value per row."""
    arrays = [np.asarray(v, float) for v in groups.values()]
    means = np.array([[v.mean() for v in arrays]])
    rng = np.random.default_rng(seed)
    boot = np.column_stack([v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1) for v in arrays])
    return (float(statistic(means)[0]), *_percentiles(statistic(boot), confidence))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p values (family-wise error); NaN stays NaN and is not counted."""
    p = np.asarray(p_values, float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def smallest_p(test: str, n1: int, n2: int = 0) -> float:
    """The smallest two-sided p a rank test can give with these sample sizes (exact distributions, no ties):
    Mann-Whitney 2 / C(n1 + n2, n1), Wilcoxon signed-rank 2 / 2^n. With 2 runs per side it is 0.333: such a
    comparison cannot be significant at 5% whatever the numbers, and a report must say so."""
    if test == "mann_whitney":
        return min(1.0, 2 / math.comb(n1 + n2, n1)) if n1 and n2 else math.nan
    if test == "wilcoxon":
        return min(1.0, 2 / 2 ** n1) if n1 else math.nan
    raise ValueError(f"unknown test {test!r}")


def p_text(p: float) -> str:
    """'p = 0.029', 'p < 0.001' or 'p n/a'."""
    return "p n/a" if not math.isfinite(p) else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")
