"""The study's statistics: pure functions from the tidy table (``collect.COLUMNS``) to result tables.

Every function takes the complete rows (``complete(table)``) and the settings (``Settings``); intervals are
percentile bootstraps over the runs of each group (seeds and architectures), tests are scipy's and are named
in the tables. The architecture-level unit throughout is one search run's answer.

- ``summary``: per (method, source, search protocol, target, target protocol) the mean, std and interval.
- ``rank_correlations``: Kendall's tau and Spearman's rho between the method rankings of two settings (source
  vs target, proxy design vs proxy design, protocol vs protocol), each ranking by the mean of its method's runs,
  with intervals from resampling every method's runs.
- ``versus_baseline``: every (method, source) against the random-sampling baseline on every target.
- ``method_pairs``: for question (ii), pairs of methods compared on the source and on the target.
- ``protocol_effects``: the paired change of a target protocol over another, per target (same architectures).
- ``protocol_interactions``: that change on a source minus on another target, per architecture (question iv).
- ``architecture_correlation``: per method, source top-1 against target top-1 of its architectures.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lsnas.analysis.stats import (
    COEFFICIENTS,
    ROWWISE,
    correlation,
    difference_interval,
    grouped_bootstrap,
    holm,
    mann_whitney,
    mean_interval,
    wilcoxon,
)
from lsnas.analysis.study import NO_SOURCE

SETTING = ["search_protocol", "target", "target_protocol"]


@dataclass(frozen=True)
class Settings:
    metric: str = "target_top1"
    confidence: float = 0.95
    resamples: int = 2000
    alpha: float = 0.05
    seed: int = 0
    min_runs: int = 3         # fewer runs in a group: no interval (a bootstrap of 2 values is their range)
    baseline: str | None = None

    @classmethod
    def from_config(cls, cfg, baseline: str | None = None) -> Settings:
        cfg = dict(cfg or {})
        names = ("metric", "confidence", "resamples", "alpha", "seed", "min_runs")
        known = {k: cfg[k] for k in names if cfg.get(k) is not None}
        return cls(**known, baseline=baseline)


def complete(table: pd.DataFrame, metric: str = "target_top1") -> pd.DataFrame:
    return table[(table["status"] == "complete") & table[metric].notna()].copy()


def summary(rows: pd.DataFrame, s: Settings) -> pd.DataFrame:
    out = []
    keys = ["method", "source", *SETTING]
    for key, group in rows.groupby(keys, sort=True):
        values = group[s.metric].to_numpy(float)
        ci = mean_interval(values, s.resamples, s.confidence, s.seed, s.min_runs)
        out.append({**dict(zip(keys, key)), "n": len(values), "mean": ci.value,
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                    "ci_low": ci.low, "ci_high": ci.high,
                    "params": float(group["params"].mean()), "search_wall_s": float(group["search_wall_s"].mean()),
                    "train_wall_s": float(group["train_wall_s"].mean())})
    return pd.DataFrame(out)


def _with_baseline(rows: pd.DataFrame, source: str) -> pd.DataFrame:
    """The runs of architectures searched on ``source``, plus the source-free methods' (they belong to every
    source's ranking)."""
    return rows[(rows["source"] == source) | (rows["source"] == NO_SOURCE)]


def _ranking_correlation(a: dict[str, np.ndarray], b: dict[str, np.ndarray], s: Settings) -> dict:
    """tau and rho (with intervals) between the rankings of the methods present in both ``a`` and ``b``."""
    methods = sorted(set(a) & set(b))
    row = {"n_methods": len(methods), "methods": " ".join(methods)}
    groups = {**{f"a|{m}": a[m] for m in methods}, **{f"b|{m}": b[m] for m in methods}}  # a's columns, then b's
    k = len(methods)
    for name, rowwise in ROWWISE.items():
        if k < 3:  # two methods always rank +-1: nothing to learn
            value = low = high = math.nan
        else:
            value, low, high = grouped_bootstrap(groups, lambda m, f=rowwise: f(m[:, :k], m[:, k:]), s.resamples,
                                                 s.confidence, s.seed)
        row.update({name: value, f"{name}_low": low, f"{name}_high": high})
    return row


def _by_method(rows: pd.DataFrame, column: str) -> dict[str, np.ndarray]:
    rows = rows[rows[column].notna()]
    return {m: g[column].to_numpy(float) for m, g in rows.groupby("method")}


def rank_correlations(rows: pd.DataFrame, s: Settings) -> pd.DataFrame:
    out = []
    sources = sorted(set(rows["source"]) - {NO_SOURCE})
    for (sp, tp), part in rows.groupby(["search_protocol", "target_protocol"]):
        targets = sorted(set(part["target"]))
        # source vs target: the ranking on the source (architectures trained on it) against each other target
        for source in sources:
            own = _with_baseline(part, source)
            on_source = _by_method(own[own["target"] == source], s.metric)
            if not on_source:
                continue
            for target in targets:
                if target != source:
                    on_target = _by_method(own[own["target"] == target], s.metric)
                    out.append({"comparison": "source vs target", "search_protocol": sp, "target_protocol": tp,
                                "a": f"{source} (trained on {source})", "b": f"{source} -> {target}",
                                **_ranking_correlation(on_source, on_target, s)})
        # proxy design vs proxy design: the rankings on one target from architectures of two sources
        for target in targets:
            on_target = part[part["target"] == target]
            for a, b in itertools.combinations(sources, 2):
                if target in (a, b):
                    continue
                ra, rb = (_by_method(_with_baseline(on_target, x), s.metric) for x in (a, b))
                if ra and rb:
                    out.append({"comparison": "source vs source", "search_protocol": sp, "target_protocol": tp,
                                "a": f"{a} -> {target}", "b": f"{b} -> {target}", "target": target, "source_a": a,
                                "source_b": b, **_ranking_correlation(ra, rb, s)})
    # protocol vs protocol: one target, one source, two final-training recipes
    for sp, target, source in rows.groupby(["search_protocol", "target", "source"]).groups:
        if source == NO_SOURCE:
            continue
        own = _with_baseline(rows[(rows["search_protocol"] == sp) & (rows["target"] == target)], source)
        protocols = sorted(set(own["target_protocol"]))
        for a, b in itertools.combinations(protocols, 2):
            ra, rb = (_by_method(own[own["target_protocol"] == x], s.metric) for x in (a, b))
            out.append({"comparison": "protocol vs protocol", "search_protocol": sp, "target_protocol": f"{a} | {b}",
                        "a": f"{source} -> {target} ({a})", "b": f"{source} -> {target} ({b})",
                        **_ranking_correlation(ra, rb, s)})
    table = pd.DataFrame(out)
    return table[table["n_methods"] > 0].reset_index(drop=True) if len(table) else table


def versus_baseline(rows: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """mean(method, source) - mean(baseline) on every target and protocol, with the Mann-Whitney U test
    (independent architectures: nothing pairs a method's run with a baseline run)."""
    if s.baseline is None:
        return pd.DataFrame()
    out = []
    for (sp, target, tp), part in rows.groupby(SETTING):
        base = part[part["method"] == s.baseline][s.metric].to_numpy(float)
        if not base.size:
            continue
        for (method, source), group in part[part["method"] != s.baseline].groupby(["method", "source"]):
            values = group[s.metric].to_numpy(float)
            ci = difference_interval(values, base, s.resamples, s.confidence, s.seed, s.min_runs)
            p = mann_whitney(values, base)
            out.append({"search_protocol": sp, "target": target, "target_protocol": tp, "method": method,
                        "source": source, "n": len(values), "n_baseline": len(base), "mean": float(values.mean()),
                        "baseline_mean": float(base.mean()), "difference": ci.value, "ci_low": ci.low,
                        "ci_high": ci.high, "p": p, "test": "Mann-Whitney U (two-sided)",
                        "significant": bool(p < s.alpha and ci.excludes_zero)})
    table = pd.DataFrame(out)
    if len(table):  # Holm's step-down correction within each target x protocol (the comparisons a reader scans)
        table["p_holm"] = table.groupby(SETTING)["p"].transform(holm)
        table["significant_holm"] = (table["p_holm"] < s.alpha) & table["significant"]
    return table


def source_view(rows: pd.DataFrame, source: str, metric: str) -> pd.DataFrame:
    """The runs of architectures searched on ``source`` and of the source-free methods, each with its
    ``source_top1``: for a source-free method, its own architecture trained on that source (same seed, search
    protocol and target protocol), which the collector cannot know (it has no source to match)."""
    view = _with_baseline(rows, source).copy()
    free = view["source"] == NO_SOURCE
    if free.any():
        keys = ["method", "search_protocol", "seed", "target_protocol"]
        on_source = view[free & (view["target"] == source)][[*keys, metric]].rename(columns={metric: "_on_source"})
        filled = view.merge(on_source, on=keys, how="left")["_on_source"].to_numpy()
        view.loc[free.to_numpy(), "source_top1"] = filled[free.to_numpy()]
    return view


def method_pairs(rows: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """Pairs of methods on the same source: their difference on the source (the architectures trained on it:
    ``source_top1``) and on each other target, each with an interval and a Mann-Whitney U test."""
    out = []
    for source in sorted(set(rows["source"]) - {NO_SOURCE}):
        view = source_view(rows, source, s.metric)
        view = view[view["source_top1"].notna() & (view["target"] != source)]
        for (sp, target, tp), part in view.groupby(SETTING):
            for a, b in itertools.combinations(sorted(set(part["method"])), 2):
                ga, gb = part[part["method"] == a], part[part["method"] == b]
                row = {"search_protocol": sp, "source": source, "target": target, "target_protocol": tp,
                       "method_a": a, "method_b": b, "n_a": len(ga), "n_b": len(gb)}
                for where, column in (("source", "source_top1"), ("target", s.metric)):
                    ci = difference_interval(ga[column], gb[column], s.resamples, s.confidence, s.seed,
                                             s.min_runs)
                    p = mann_whitney(ga[column].tolist(), gb[column].tolist())
                    row.update({f"{where}_difference": ci.value, f"{where}_ci_low": ci.low,
                                f"{where}_ci_high": ci.high, f"{where}_p": p})
                row["tie_on_source"] = not (row["source_p"] < s.alpha
                                            and row["source_ci_low"] * row["source_ci_high"] > 0)
                row["differ_on_target"] = bool(row["target_p"] < s.alpha
                                               and row["target_ci_low"] * row["target_ci_high"] > 0)
                out.append(row)
    return pd.DataFrame(out)


ARCH_KEY = ["method", "source", "search_protocol", "seed"]  # one search run's answer: one architecture


def _protocol_diffs(rows: pd.DataFrame, metric: str, a: str, b: str) -> pd.Series:
    """b - a per (architecture, target), over the architectures trained both ways."""
    wide = rows.pivot_table(index=[*ARCH_KEY, "target"], columns="target_protocol", values=metric)
    if a not in wide or b not in wide:
        return pd.Series(dtype=float)
    return (wide[b] - wide[a]).dropna()


def protocol_pairs(rows: pd.DataFrame, order: list[str] | None = None) -> list[tuple[str, str]]:
    """Every pair of target protocols (a, b) in the study's order (``order``: the table's, complete or not), so
    a difference means the same thing on every target whichever runs failed."""
    present = set(rows["target_protocol"])
    ordered = [p for p in (order or sorted(present)) if p in present]
    return list(itertools.combinations(ordered, 2))


def protocol_effects(rows: pd.DataFrame, s: Settings, order: list[str] | None = None) -> pd.DataFrame:
    """Per target and pair of target protocols (a, b): mean of b - a over the same architectures (one search
    run's answer trained both ways), its interval and the Wilcoxon signed-rank test. ``on_source``: the target
    is one of the study's sources (the small data of question iv)."""
    out = []
    sources = set(rows["source"])
    for a, b in protocol_pairs(rows, order):
        for (sp, target), part in rows.groupby(["search_protocol", "target"]):
            wide = part.pivot_table(index=ARCH_KEY, columns="target_protocol", values=s.metric)
            both = wide[[a, b]].dropna() if a in wide and b in wide else pd.DataFrame(columns=[a, b], dtype=float)
            d = (both[b] - both[a]).to_numpy(float)
            ci = mean_interval(d, s.resamples, s.confidence, s.seed, s.min_runs)
            out.append({"search_protocol": sp, "target": target, "on_source": target in sources, "protocol_a": a,
                        "protocol_b": b, "n_architectures": len(d), "mean_a": float(both[a].mean()),
                        "mean_b": float(both[b].mean()), "difference": ci.value, "ci_low": ci.low,
                        "ci_high": ci.high, "p": wilcoxon(d), "n_nonzero": int(np.count_nonzero(d)),
                        "test": "Wilcoxon signed-rank (two-sided, paired by architecture)"})
    return pd.DataFrame(out)


def protocol_interactions(rows: pd.DataFrame, s: Settings, order: list[str] | None = None) -> pd.DataFrame:
    """Question (iv): for architectures trained under both protocols on a source (small data) and on another
    target, the recipe's effect on the source minus its effect on the target, per architecture: a mean with its
    interval and the Wilcoxon signed-rank test (each architecture is its own control: noise that differs between
    the datasets does not pass for an effect)."""
    out = []
    sources = set(rows["source"])
    for a, b in protocol_pairs(rows, order):
        diffs = _protocol_diffs(rows, s.metric, a, b).unstack("target")
        for small in [t for t in diffs.columns if t in sources]:
            for large in [t for t in diffs.columns if t not in sources]:
                both = diffs[[small, large]].dropna()
                d = (both[small] - both[large]).to_numpy(float)
                ci = mean_interval(d, s.resamples, s.confidence, s.seed, s.min_runs)
                out.append({"protocol_a": a, "protocol_b": b, "small": small, "large": large,
                            "n_architectures": len(d),
                            "effect_small": float(both[small].mean()) if len(d) else math.nan,
                            "effect_large": float(both[large].mean()) if len(d) else math.nan,
                            "difference": ci.value, "ci_low": ci.low, "ci_high": ci.high, "p": wilcoxon(d),
                            "n_nonzero": int(np.count_nonzero(d)),
                            "test": "Wilcoxon signed-rank (two-sided, paired by architecture)"})
    return pd.DataFrame(out)


def architecture_correlation(rows: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """Per method (and all methods together), the architectures' source top-1 against their target top-1."""
    out = []
    pairs = rows[rows["source_top1"].notna() & (rows["target"] != rows["source"])]
    for (sp, target, tp), part in pairs.groupby(SETTING):
        for method, group in [("all", part), *part.groupby("method")]:
            row = {"search_protocol": sp, "target": target, "target_protocol": tp, "method": method,
                   "n": len(group)}
            for name in COEFFICIENTS:
                value, low, high = correlation(group["source_top1"], group[s.metric], name, s.resamples,
                                               s.confidence, s.seed)
                row.update({name: value, f"{name}_low": low, f"{name}_high": high})
            out.append(row)
    return pd.DataFrame(out)
