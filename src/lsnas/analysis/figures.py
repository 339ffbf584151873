"""The study's figures, each from a result table of ``analyze`` (matplotlib, written atomically by viz)."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from lsnas.analysis.study import NO_SOURCE  # noqa: E402
from lsnas.viz import save_figure  # noqa: E402


def _panels(n: int, width: float = 4.6, height: float = 3.4):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def grouped_bars(summary: pd.DataFrame, path: str | os.PathLike, metric: str = "test top-1 (%)",
                 confidence: float = 0.95, rows: pd.DataFrame | None = None, column: str = "target_top1") -> Path:
    """Per (target, target protocol): the mean per method, one bar per source, with the bootstrap interval
    where there is one, and every run as a dot (``rows``), so two seeds show their spread too."""
    panels = list(summary.groupby(["target", "target_protocol", "search_protocol"]))
    fig, axes = _panels(len(panels), width=5.2)
    sources = sorted(set(summary["source"]))
    colours = dict(zip(sources, plt.cm.tab10.colors))
    for ax, ((target, tp, sp), part) in zip(axes, panels):
        methods = sorted(set(part["method"]))
        width = 0.8 / max(len(sources), 1)
        for j, source in enumerate(sources):
            means = part[part["source"] == source].set_index("method").reindex(methods)
            x = np.arange(len(methods)) + (j - (len(sources) - 1) / 2) * width
            ax.bar(x, means["mean"], width, label=source, color=colours[source], alpha=0.85)
            has = means["ci_low"].notna().to_numpy()
            ax.errorbar(x[has], means["mean"][has], yerr=[(means["mean"] - means["ci_low"])[has],
                                                           (means["ci_high"] - means["mean"])[has]],
                        fmt="none", ecolor="k", capsize=2, elinewidth=0.8)
            if rows is not None:
                runs = rows[(rows["target"] == target) & (rows["target_protocol"] == tp)
                            & (rows["search_protocol"] == sp) & (rows["source"] == source)]
                for i, method in enumerate(methods):
                    values = runs.loc[runs["method"] == method, column].to_numpy(float)
                    ax.scatter(np.full(values.size, x[i]), values, s=9, color="k", zorder=3)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=20)
        search = f", {sp} search" if summary["search_protocol"].nunique() > 1 else ""
        ax.set_title(f"on {target} ({tp} recipe){search}", fontsize=10)
        ax.set_ylabel(metric)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(title="searched on", fontsize=8, title_fontsize=8)
    fig.suptitle(f"Mean over seeds (dots: the runs) with {confidence:.0%} bootstrap intervals where there are "
                 "enough runs (analysis.min_runs)", fontsize=10)
    return save_figure(fig, path)


def source_vs_target(rows: pd.DataFrame, path: str | os.PathLike, metric: str = "target_top1") -> Path | None:
    """Each architecture's top-1 on its source against on a target, a panel per (target, protocol), coloured by
    method, with Kendall's tau of each method in the legend."""
    pairs = rows[rows["source_top1"].notna() & (rows["target"] != rows["source"])]
    if pairs.empty:
        return None
    panels = list(pairs.groupby(["target", "target_protocol"]))
    fig, axes = _panels(len(panels))
    methods = sorted(set(pairs["method"]))
    colours = dict(zip(methods, plt.cm.tab10.colors))
    for ax, ((target, tp), part) in zip(axes, panels):
        for method, group in part.groupby("method"):
            tau = stats.kendalltau(group["source_top1"], group[metric]).statistic if len(group) > 2 else math.nan
            ax.scatter(group["source_top1"], group[metric], s=22, color=colours[method],
                       label=f"{method} (tau {tau:.2f})" if math.isfinite(tau) else method)
        tau_all = stats.kendalltau(part["source_top1"], part[metric]).statistic if len(part) > 2 else math.nan
        ax.set_title(f"{target}, {tp} recipe: all tau {tau_all:.2f}", fontsize=10)
        ax.set_xlabel("top-1 on its source (%)")
        ax.set_ylabel(f"top-1 on {target} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def correlation_heatmap(rows: pd.DataFrame, path: str | os.PathLike, metric: str = "target_top1") -> Path | None:
    """Kendall's tau between the method rankings of every pair of settings (source -> target, recipe); the
    source-free methods belong to every source's ranking."""
    rankings = {}
    for (source, target, tp), _ in rows[rows["source"] != NO_SOURCE].groupby(["source", "target", "target_protocol"]):
        part = rows[(rows["target"] == target) & (rows["target_protocol"] == tp)
                    & rows["source"].isin([source, NO_SOURCE])]
        rankings[(source, target, tp)] = part.groupby("method")[metric].mean()
    settings = sorted(rankings)
    if len(settings) < 2:
        return None
    n = len(settings)
    matrix = np.full((n, n), np.nan)
    for (i, a), (j, b) in itertools.product(enumerate(settings), repeat=2):
        common = sorted(set(rankings[a].index) & set(rankings[b].index))
        if len(common) >= 3:
            matrix[i, j] = stats.kendalltau(rankings[a][common], rankings[b][common]).statistic
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.6 + 0.5 * n))
    image = ax.imshow(matrix, cmap="RdBu", vmin=-1, vmax=1)
    labels = [f"{s} -> {t} ({p})" for s, t, p in settings]
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    for i, j in itertools.product(range(n), repeat=2):
        if math.isfinite(matrix[i, j]):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="Kendall's tau of the method rankings")
    ax.set_title("Do settings rank the methods alike? (blank: fewer than 3 methods in common)", fontsize=9)
    return save_figure(fig, path)


def baseline_forest(versus: pd.DataFrame, path: str | os.PathLike) -> Path | None:
    """Every (method, source) minus the random-sampling baseline, with its interval, a panel per target."""
    if versus.empty:
        return None
    panels = list(versus.groupby(["target", "target_protocol", "search_protocol"]))
    fig, axes = _panels(len(panels), width=6.0, height=0.6 + 0.32 * versus.groupby(["method", "source"]).ngroups)
    for ax, ((target, tp, _), part) in zip(axes, panels):
        part = part.sort_values(["method", "source"])
        y = np.arange(len(part))
        colours = ["tab:green" if s and d > 0 else "tab:red" if s else "tab:gray"
                   for s, d in zip(part["significant"], part["difference"])]
        ax.errorbar(part["difference"], y, xerr=np.nan_to_num([part["difference"] - part["ci_low"],
                                                               part["ci_high"] - part["difference"]]),
                    fmt="none", ecolor="0.5", capsize=2)
        ax.scatter(part["difference"], y, color=colours, zorder=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, [f"{m} / {s}" for m, s in zip(part["method"], part["source"])], fontsize=8)
        ax.set_xlabel("difference to random sampling (points)")
        ax.set_title(f"on {target} ({tp} recipe)", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Against the random-sampling baseline (green/red: significant)", fontsize=10)
    return save_figure(fig, path)
