"""The analysis and its findings on tidy tables whose answers are known (lsnas.analysis.synthetic)."""

import re

import pytest

from lsnas.analysis.analyze import Settings
from lsnas.analysis.findings import findings
from lsnas.analysis.report import analyse
from lsnas.analysis.synthetic import make_table

S = Settings(resamples=500, baseline="random_sample")
PROXIES = {"big": ["proxy_a", "proxy_b"]}


def answer(table, proxies=PROXIES, s=S):
    results = analyse(table, s)
    return results, findings(results, proxies, s)


def test_random_clearly_worse_is_found_and_named():
    results, text = answer(make_table(seeds=8))
    versus = results["versus_baseline"]
    assert (versus["difference"] > 1.5).all() and versus["test"].eq("Mann-Whitney U (two-sided)").all()
    # every target x protocol: random is below the best, significantly, the sign of the interval that of the gap
    assert len(re.findall(r"random sampling \([\d.]+%, n = 8\) is [\d.]+ points below the best method \+ source "
                          r"\(\w+ on \w+, [\d.]+%, n = 8\): random - best = -[\d.]+, 95% CI \[-[\d.]+, -[\d.]+\], "
                          r"Mann-Whitney U p [=<] [\d.]+: significant at 5%", text["iii"])) == 4
    assert text["iii"].count("Significantly above random after Holm's correction for the 12 comparisons: ") == 4
    assert text["iii"].count("Holm-adjusted p") >= 4 * 6  # most of the 12 beat it, corrected


def test_random_tied_is_never_called_significant():
    effects = {"darts": 0.0, "pcdarts": 0.0, "gdas": 0.0, "random": 0.0, "random_sample": 0.0}
    results, text = answer(make_table(effects, seeds=4, noise=0.5, arch_sd=1.0))
    verdicts = re.findall(r"random - best = [^:]*: (not significant|significant) at 5%", text["iii"])
    assert verdicts == ["not significant"] * 4  # one per target x recipe, even for the best picked after the fact
    assert "Significantly above random after Holm's correction for the 12 comparisons: none." in text["iii"]
    # with 2 runs a side a rank test cannot reach 5%: the text says so instead of implying a tie
    _, few = answer(make_table(effects, seeds=2))
    assert "it could not be with n = 2 vs 2 (the test's smallest p is 0.333)" in few["iii"]
    assert "no difference could have been significant" in few["ii"]
    # wherever the table calls a difference significant, its interval excludes zero and p < alpha
    sig = results["versus_baseline"][results["versus_baseline"]["significant"]]
    assert ((sig["ci_low"] > 0) | (sig["ci_high"] < 0)).all() and (sig["p"] < S.alpha).all()


def test_methods_that_tie_on_the_source_and_differ_on_the_target():
    effects = {"darts": {"big": 4.0}, "pcdarts": 0.0, "gdas": 0.0, "random": 0.0, "random_sample": 0.0}
    results, text = answer(make_table(effects, seeds=5, arch_sd=0.0, noise=0.5))
    pairs = results["method_pairs"]
    darts = pairs[(pairs["method_a"] == "darts") & (pairs["target"] == "big")]
    # equal on the source (a chance difference at 5% may show in a pair or two), 4 points apart on the target
    assert darts["tie_on_source"].mean() >= 0.75 and (darts["tie_on_source"] & darts["differ_on_target"]).sum() >= 3
    assert re.search(r"differ significantly on the target \(each test at 5%, uncorrected for the \d+ tried\): darts vs",
                     text["ii"])


def test_no_pair_differs_when_nothing_differs():
    effects = {"darts": 0.0, "pcdarts": 0.0, "gdas": 0.0}
    _, text = answer(make_table(effects, seeds=3, arch_sd=0.0, noise=0.3), s=Settings(resamples=300))
    assert "none of those differs significantly on the target" in text["ii"]
    assert text["iii"].startswith("Not answerable")


def test_protocol_matters_more_on_the_source():
    _, text = answer(make_table(protocol_effects={("cifar10", "darts"): 2.0}))
    assert "On cifar10 (a source: small data), the darts recipe changes test top-1 by +2." in text["iv"]
    assert "On big (a target), the darts recipe" in text["iv"]
    assert re.search(r"the darts recipe's effect on cifar10 \(\+2\.\d\d\) minus its effect on big \([-+]0\.\d\d\) is "
                     r"\+[12]\.\d\d points, .*: significant at 5%\. The recipe matters more on cifar10\.", text["iv"])


def test_noisier_small_data_is_not_taken_for_a_protocol_effect():
    # no recipe effect anywhere, but cifar10 runs twice as noisy: |b - a| is larger there, the interaction is not
    table = make_table(protocol_effects={}, noise=0.3, seeds=4)
    noisy = table["target"] == "cifar10"
    table.loc[noisy, "target_top1"] += __import__("numpy").random.default_rng(5).normal(0, 0.6, noisy.sum())
    _, text = answer(table)
    assert "recipe matters more" not in text["iv"]


def test_question_i_proxies_against_unrelated_sources():
    effects = {"darts": 0.0, "pcdarts": 1.0, "gdas": 2.0, "random": 3.0, "random_sample": -3.0}
    table = make_table(effects, seeds=4, arch_sd=0.2, noise=0.2)
    table.loc[table["source"].isin(["proxy_a", "proxy_b"]) & (table["target"] == "big"), "target_top1"] += 3.0
    results, text = answer(table)
    assert "architectures searched on its proxies (proxy_a, proxy_b" in text["i"]
    assert "points above those searched on cifar10" in text["i"] and ": significant at 5%" in text["i"]
    assert "the rankings agree" in text["i"]  # both proxies rank the four methods alike (well-separated effects)
    rc = results["rank_correlations"]
    assert set(rc["comparison"]) == {"source vs target", "source vs source", "protocol vs protocol"}
    row = rc[(rc["comparison"] == "source vs source") & rc["a"].str.startswith("proxy_a")].iloc[0]
    assert row["n_methods"] == 5 and row["kendall_tau"] == pytest.approx(1.0)
    assert answer(table, proxies={})[1]["i"].startswith("Not asked")
