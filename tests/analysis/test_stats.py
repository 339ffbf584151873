"""The study's statistics against scipy on known rankings, and bootstrap intervals that cover known values."""

import math

import numpy as np
import pytest
from scipy import stats

from lsnas.analysis.stats import (
    correlation,
    difference_interval,
    grouped_bootstrap,
    kendall_tau_rows,
    mann_whitney,
    mean_interval,
    p_text,
    smallest_p,
    spearman_rho_rows,
    wilcoxon,
)


def test_rowwise_coefficients_equal_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (40, 7)).astype(float)  # many ties
    y = rng.normal(size=(40, 7))
    y[:, 1] = y[:, 0]
    tau = [stats.kendalltau(a, b).statistic for a, b in zip(x, y)]
    rho = [stats.spearmanr(a, b).statistic for a, b in zip(x, y)]
    np.testing.assert_allclose(kendall_tau_rows(x, y), tau, atol=1e-12)
    np.testing.assert_allclose(spearman_rho_rows(x, y), rho, atol=1e-12)
    assert math.isnan(kendall_tau_rows(np.ones((1, 4)), y[:1, :4])[0])  # no spread: no coefficient


def test_correlation_of_known_rankings():
    x = [1, 2, 3, 4, 5, 6]
    value, low, high = correlation(x, x, "kendall_tau", resamples=300)
    assert value == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    value, _, _ = correlation(x, x[::-1], "spearman_rho", resamples=300)
    assert value == -1.0
    y = [2, 1, 4, 3, 6, 5]
    assert correlation(x, y, "kendall_tau")[0] == pytest.approx(stats.kendalltau(x, y).statistic)
    assert all(math.isnan(v) for v in correlation([1, 2], [1, 2], "kendall_tau"))


def test_bootstrap_interval_covers_the_known_mean():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(40):
        sample = rng.normal(5.0, 1.0, size=12)
        ci = mean_interval(sample, resamples=1000, seed=trial)
        covered += ci.low <= 5.0 <= ci.high
        assert ci.value == pytest.approx(sample.mean())
    assert covered >= 32  # a 95% interval: about 38 of 40; far fewer would mean a broken interval
    assert math.isnan(mean_interval([3.0]).low) and mean_interval([]).value != mean_interval([]).value


def test_difference_interval_and_tests_against_scipy():
    a, b = [71.0, 72.5, 73.1, 72.2, 71.8], [69.0, 68.2, 69.9, 70.1, 68.8]
    ci = difference_interval(a, b, resamples=2000)
    assert ci.value == pytest.approx(np.mean(a) - np.mean(b)) and ci.low > 0 and ci.excludes_zero
    assert mann_whitney(a, b) == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    d = np.array(a) - np.array(b)
    assert wilcoxon(d) == pytest.approx(stats.wilcoxon(d).pvalue)
    assert math.isnan(mann_whitney([1.0], [1.0])) and math.isnan(wilcoxon([0.0, 0.0, 1.0]))
    tied = difference_interval([1.0, 2.0, 3.0], [1.5, 2.5, 2.0], resamples=2000)
    assert not tied.excludes_zero


def test_grouped_bootstrap_of_a_ranking_correlation():
    # three methods whose rankings agree in two settings, with well-separated means: tau = 1 throughout
    groups = {"a|x": [1.0, 1.1], "a|y": [5.0, 5.1], "a|z": [9.0, 9.2], "b|x": [2.0, 2.2], "b|y": [4.0, 4.1],
              "b|z": [8.0, 8.3]}
    value, low, high = grouped_bootstrap(groups, lambda m: kendall_tau_rows(m[:, :3], m[:, 3:]), resamples=200)
    assert value == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    # noisy groups: the interval widens but still contains the point value
    rng = np.random.default_rng(0)
    noisy = {k: np.mean(v) + rng.normal(0, 4, 5) for k, v in groups.items()}
    value, low, high = grouped_bootstrap(noisy, lambda m: kendall_tau_rows(m[:, :3], m[:, 3:]), resamples=500)
    assert low <= value <= high and low < high


def test_smallest_attainable_p_matches_scipy():
    assert smallest_p("mann_whitney", 2, 2) == pytest.approx(1 / 3)
    extreme = stats.mannwhitneyu([3, 4], [1, 2], alternative="two-sided").pvalue
    assert extreme == pytest.approx(smallest_p("mann_whitney", 2, 2))
    assert smallest_p("mann_whitney", 5, 5) == pytest.approx(stats.mannwhitneyu(range(5, 10), range(5)).pvalue)
    assert smallest_p("wilcoxon", 6) == pytest.approx(stats.wilcoxon([1, 2, 3, 4, 5, 6]).pvalue)


def test_p_text():
    assert p_text(0.0004) == "p < 0.001" and p_text(0.0291) == "p = 0.029" and p_text(math.nan) == "p n/a"
