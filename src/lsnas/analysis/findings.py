"""The study's four questions answered in sentences built from the numbers, never stronger than the
intervals allow: a difference is called significant only when its test's p is below alpha and its interval
excludes zero; a rank correlation is called agreement only when its whole interval is above zero.

(i) Do architectures searched on an unrelated small dataset transfer as well as those searched on a proxy
    of the target, and does the proxy's design change the ranking of methods?
(ii) Do methods that tie on the source differ on the target?
(iii) Is random sampling competitive on the target, and which method + proxy beats it?
(iv) Does the training protocol matter more on small data than on large?
"""

from __future__ import annotations

import math

import pandas as pd

from lsnas.analysis.analyze import Settings
from lsnas.analysis.stats import difference_interval, mann_whitney, p_text, smallest_p
from lsnas.analysis.study import NO_SOURCE

QUESTIONS = {
    "i": "Do architectures searched on an unrelated dataset transfer as well as those searched on a proxy of the "
         "target, and does the proxy's design change the ranking of methods?",
    "ii": "Do methods that tie on the source differ on the target?",
    "iii": "Is random sampling competitive on the target, and which method + source beats it?",
    "iv": "Does the training protocol matter more on small data (a source) than on large (a target)?",
}


def _pts(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+.2f}"


def _ci(low: float, high: float, confidence: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{confidence:.0%} CI not estimable (too few runs)"
    return f"{confidence:.0%} CI [{low:+.2f}, {high:+.2f}]"


def _verdict(p: float, low: float, high: float, s: Settings, test: tuple = ()) -> str:
    """``test``: (name, n1[, n2]) for the note that a rank test cannot reach alpha with so few runs."""
    if math.isfinite(p) and p < s.alpha and (low > 0 or high < 0):
        return f"significant at {s.alpha:.0%}"
    if test and (floor := smallest_p(*test)) >= s.alpha:
        sizes = " vs ".join(str(n) for n in test[1:])
        return (f"not significant at {s.alpha:.0%}, and it could not be with n = {sizes} (the test's smallest p is "
                f"{floor:.3f})")
    return f"not significant at {s.alpha:.0%}"


def _where(target: str, protocol: str, search_protocol: str, many_search_protocols: bool) -> str:
    return f"on {target} ({protocol} recipe{f', {search_protocol} search' if many_search_protocols else ''})"


def _agreement(tau: float, low: float, high: float, confidence: float) -> str:
    if not math.isfinite(tau):
        return "cannot be estimated (fewer than 3 methods in common, or no spread)"
    span = _ci(low, high, confidence)
    if math.isfinite(low) and low > 0:
        return f"is {tau:.2f} ({span}): the rankings agree (the whole interval is above 0)"
    if math.isfinite(high) and high < 0:
        return f"is {tau:.2f} ({span}): the rankings are reversed"
    return f"is {tau:.2f} ({span}): the data cannot tell agreement from disagreement"


def question_i(rows: pd.DataFrame, correlations: pd.DataFrame, proxies_of: dict, s: Settings) -> str:
    if not proxies_of:
        return "Not asked: the study names no proxies of its targets (study.proxies_of)."
    parts = []
    many = rows["search_protocol"].nunique() > 1
    for target, proxies in proxies_of.items():
        on = rows[(rows["target"] == target) & (rows["source"] != NO_SOURCE) & (rows["source"] != target)]
        for (sp, tp), part in on.groupby(["search_protocol", "target_protocol"]):
            proxy = part[part["source"].isin(proxies)][s.metric].to_numpy(float)
            other = part[~part["source"].isin(proxies)]
            if not proxy.size or not len(other):
                continue
            unrelated = other[s.metric].to_numpy(float)
            ci = difference_interval(proxy, unrelated, s.resamples, s.confidence, s.seed)
            p = mann_whitney(proxy.tolist(), unrelated.tolist())
            direction = "above" if ci.value >= 0 else "below"
            parts.append(
                f"{_where(target, tp, sp, many).capitalize()}, architectures searched on its proxies "
                f"({', '.join(proxies)}; n = {proxy.size}) score {abs(ci.value):.2f} points {direction} those searched "
                f"on {', '.join(sorted(set(other['source'])))} (n = {unrelated.size}), "
                f"{_ci(ci.low, ci.high, s.confidence)}, Mann-Whitney U {p_text(p)}: "
                f"{_verdict(p, ci.low, ci.high, s, ('mann_whitney', proxy.size, unrelated.size))}.")
            design = correlations[(correlations["comparison"] == "source vs source")
                                  & (correlations["target_protocol"] == tp) & (correlations["search_protocol"] == sp)]
            for row in design[design["target"] == target].itertuples():
                a, b = row.source_a, row.source_b
                if a in proxies and b in proxies:
                    agreement = _agreement(row.kendall_tau, row.kendall_tau_low, row.kendall_tau_high, s.confidence)
                    parts.append(f"Kendall's tau between the method rankings from {a} and from {b} "
                                 f"({row.n_methods} methods) {agreement}.")
    return " ".join(parts) or "No target has both proxy-searched and other architectures trained on it yet."


def question_ii(pairs: pd.DataFrame, s: Settings) -> str:
    if pairs.empty:
        return ("Not answerable: it needs the architectures trained on their source too (a target named like a "
                "source) and on another target.")
    ties = pairs[pairs["tie_on_source"]]
    differ = ties[ties["differ_on_target"]]
    text = (f"Of {len(pairs)} pairs of methods compared on the same source, {len(ties)} show no significant "
            f"difference on the source at {s.alpha:.0%}")
    if differ.empty:
        floors = [(smallest_p("mann_whitney", r.n_a, r.n_b), r.n_a, r.n_b) for r in ties.itertuples()]
        floor, n_a, n_b = min(floors) if floors else (math.nan, 0, 0)
        limit = (f"with n = {n_a} vs {n_b} runs at best the Mann-Whitney test's smallest p is {floor:.3f}, so no "
                 "difference could have been significant: the study cannot answer this" if floor >= s.alpha else
                 "with its few runs per method, small differences would go unseen")
        return text + ("; none of those differs significantly on the target either, so this study shows no case "
                       f"of methods that tie on the source and separate on the target ({limit}).")
    examples = [f"{r.method_a} vs {r.method_b} (searched on {r.source}): {_pts(r.source_difference)} points on the "
                f"source ({_ci(r.source_ci_low, r.source_ci_high, s.confidence)}), {_pts(r.target_difference)} on "
                f"{r.target} with the {r.target_protocol} recipe "
                f"({_ci(r.target_ci_low, r.target_ci_high, s.confidence)}, "
                f"Mann-Whitney U {p_text(r.target_p)})" for r in differ.itertuples()]
    return (text + f"; {len(differ)} of them differ significantly on the target (each test at {s.alpha:.0%}, "
            f"uncorrected for the {len(ties)} tried): " + "; ".join(examples) + ".")


def question_iii(versus: pd.DataFrame, s: Settings) -> str:
    if versus.empty:
        return "Not answerable: the study has no random-sampling baseline (study.baseline) with results."
    parts = []
    many = versus["search_protocol"].nunique() > 1
    for (sp, target, tp), part in versus.groupby(["search_protocol", "target", "target_protocol"]):
        best = part.loc[part["mean"].idxmax()]
        test = ("mann_whitney", best["n"], best["n_baseline"])
        gap = best["baseline_mean"] - best["mean"]
        direction = "below" if gap < 0 else "above"
        parts.append(
            f"{_where(target, tp, sp, many).capitalize()}, random sampling ({best['baseline_mean']:.2f}%, "
            f"n = {best['n_baseline']}) is {abs(gap):.2f} points {direction} the best method + source "
            f"({best['method']} on {best['source']}, {best['mean']:.2f}%, n = {best['n']}): random - best = "
            f"{_pts(gap)}, {_ci(-best['ci_high'], -best['ci_low'], s.confidence)}, Mann-Whitney U {p_text(best['p'])}: "
            f"{_verdict(best['p'], best['ci_low'], best['ci_high'], s, test)} "
            "(the best is picked after the fact; neither the interval nor the test corrects for the choice).")
        beats = part[part["significant_holm"] & (part["difference"] > 0)]
        loses = part[part["significant_holm"] & (part["difference"] < 0)]
        listed = ", ".join(f"{r.method} on {r.source} ({_pts(r.difference)}, Holm-adjusted {p_text(r.p_holm)})"
                           for r in beats.itertuples()) or "none"
        parts.append(f"Significantly above random after Holm's correction for the {len(part)} comparisons: {listed}."
                     + (" Significantly below: " + ", ".join(f"{r.method} on {r.source} ({_pts(r.difference)})"
                                                             for r in loses.itertuples()) + "." if len(loses) else ""))
    return " ".join(parts)


def question_iv(effects: pd.DataFrame, interactions: pd.DataFrame, s: Settings) -> str:
    if effects.empty:
        return "Not answerable: it needs at least two target protocols."
    parts = []
    for row in effects.itertuples():
        kind = "a source: small data" if row.on_source else "a target"
        parts.append(f"On {row.target} ({kind}), the {row.protocol_b} recipe changes test top-1 by "
                     f"{_pts(row.difference)} points over {row.protocol_a} ({row.n_architectures} architectures "
                     "trained both ways, "
                     f"{_ci(row.ci_low, row.ci_high, s.confidence)}, Wilcoxon signed-rank {p_text(row.p)}: "
                     f"{_verdict(row.p, row.ci_low, row.ci_high, s, ('wilcoxon', row.n_nonzero))}).")
    if interactions.empty:
        parts.append("No architecture was trained with both recipes on a source and on another target, so whether the "
                     "recipe matters more on small data is not answered.")
    for row in interactions.itertuples():
        verdict = _verdict(row.p, row.ci_low, row.ci_high, s, ("wilcoxon", row.n_nonzero))
        more = ""
        if verdict.startswith("significant"):
            bigger = row.small if abs(row.effect_small) > abs(row.effect_large) else row.large
            more = f" The recipe matters more on {bigger}."
        parts.append(f"Per architecture ({row.n_architectures} trained both ways on both), the {row.protocol_b} "
                     f"recipe's effect on {row.small} ({_pts(row.effect_small)}) minus its effect on {row.large} "
                     f"({_pts(row.effect_large)}) is {_pts(row.difference)} points, "
                     f"{_ci(row.ci_low, row.ci_high, s.confidence)}, Wilcoxon signed-rank {p_text(row.p)}: {verdict}."
                     + more)
    return " ".join(parts)


def findings(results: dict[str, pd.DataFrame], proxies_of: dict, s: Settings) -> dict[str, str]:
    """The paragraph of each question, from ``report.analyse``'s result tables."""
    return {"i": question_i(results["rows"], results["rank_correlations"], proxies_of, s),
            "ii": question_ii(results["method_pairs"], s),
            "iii": question_iii(results["versus_baseline"], s),
            "iv": question_iv(results["protocol_effects"], results["protocol_interactions"], s)}
