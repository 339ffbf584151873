"""The spline search's two pictures: the trace of predicted against measured scores (with the stop marked)
and 2-D slices of the fitted surface in the space's own units (channels, alpha, beta, phi)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lsnas.viz import plt, save_figure

MARKERS = {"design": "s", "spline": "o", "random": "^"}


def plot_spline_trace(trials, path: str | os.PathLike, stop: dict | None = None) -> Path:
    """Each finished trial's measured score by trial number (k, as in the journal and the log) and, for the
    spline's proposals, the score it predicted. ``stop``: the trial whose prediction came within epsilon
    (``{"k": ..., "epsilon": ...}``), marked by a line."""
    finished = sorted((t for t in trials if t.result is not None), key=lambda t: t.k)
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for origin, marker in MARKERS.items():
        mine = [t for t in finished if t.tags.get("origin") == origin and t.score is not None]
        if mine:
            ax.scatter([t.k for t in mine], [t.score for t in mine], marker=marker, s=24, label=f"measured ({origin})")
    predicted = [t for t in finished if "predicted" in t.tags]
    if predicted:
        ax.scatter([t.k for t in predicted], [t.tags["predicted"] for t in predicted], marker="x", color="#d62728",
                   s=30, label="predicted")
        for t in predicted:
            if t.score is not None:
                ax.plot([t.k, t.k], [t.tags["predicted"], t.score], color="#d62728", alpha=0.4, lw=1)
    if stop is not None:
        ax.axvline(stop["k"], color="#2ca02c", ls="--", lw=1,
                   label=f"stop: trial {stop['k']} within epsilon={stop['epsilon']:g}")
    ax.set_xlabel("trial (k)")
    ax.set_ylabel("score (fraction)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _axis(dim, unit: np.ndarray) -> np.ndarray:
    """Unit-box coordinates in the dim's own values (a choices dim: its index)."""
    if dim.choices is not None:
        return unit * (len(dim.choices) - 1)
    return dim.low + unit * (dim.high - dim.low)


def _label_axis(ax, dim, which: str) -> None:
    getattr(ax, f"set_{which}label")(dim.name, fontsize=9)
    if dim.choices is not None:
        getattr(ax, f"set_{which}ticks")(range(len(dim.choices)), [str(c) for c in dim.choices], fontsize=7)


def plot_spline_slices(spline, space, best, path: str | os.PathLike, measured=(), external=(),
                       resolution: int = 41, max_panels: int = 10) -> Path:
    """2-D slices of the fitted surface through the best architecture ``best``, one panel per pair of the
    space's dims (the first ``max_panels``), every other dim held at the best point's value. Axes are in the
    dims' units, colours share one scale and one labelled bar; the measured points (this run's and
    ``external`` ones measured elsewhere) are drawn unclipped on every panel."""
    dims = list(space.dims)
    centre = space.encode(best)
    pairs = [(i, j) for i in range(len(dims)) for j in range(i + 1, len(dims))][:max_panels] or [(0, 0)]
    grid = np.linspace(0, 1, resolution)
    u, v = np.meshgrid(grid, grid)
    surfaces = []
    for i, j in pairs:
        x = np.tile(centre, (u.size, 1))
        x[:, i], x[:, j] = u.ravel(), v.ravel()
        surfaces.append(spline(x).reshape(u.shape))
    low, high = min(z.min() for z in surfaces), max(z.max() for z in surfaces)
    levels = np.linspace(low, high, 21) if high > low else 21
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 1.2, 3.2 * rows + 0.6), squeeze=False,
                             constrained_layout=True)
    contour = None
    for ax, (i, j), z in zip(axes.flat, pairs, surfaces):
        contour = ax.contourf(_axis(dims[i], u), _axis(dims[j], v), z, levels=levels, cmap="viridis")
        for group, style in ((measured, {"marker": "o", "color": "white"}),
                             (external, {"marker": "D", "color": "#ff9896"})):
            if len(group):
                p = np.array([space.encode(a) for a in group])
                ax.scatter(_axis(dims[i], p[:, i]), _axis(dims[j], p[:, j]), s=16, edgecolor="black",
                           linewidths=0.5, clip_on=False, zorder=3, **style)
        ax.scatter(_axis(dims[i], centre[i]), _axis(dims[j], centre[j]), marker="*", s=140, color="#ff7f0e",
                   edgecolor="black", linewidths=0.6, clip_on=False, zorder=4)
        ax.margins(0.04)
        _label_axis(ax, dims[i], "x")
        _label_axis(ax, dims[j], "y")
        ax.tick_params(labelsize=7)
        held = [f"{d.name}={d.get(best.genotype)}" for k, d in enumerate(dims) if k not in (i, j)]
        ax.set_title(f"{dims[i].name} x {dims[j].name}" + (f" at {', '.join(held)}" if held else ""), fontsize=8)
    for ax in axes.flat[len(pairs):]:
        ax.axis("off")
    bar = fig.colorbar(contour, ax=axes, shrink=0.85, format="%.3g")
    bar.set_label("predicted score (fraction)")
    where = ", ".join(f"{d.name}={d.get(best.genotype)}" for d in dims)
    legend = ("star: best; circles: this run's measured points, projected onto each slice"
              + ("; diamonds: points measured elsewhere" if len(external) else ""))
    fig.suptitle(f"Spline slices through the best point ({where})\n{legend}", fontsize=9)
    return save_figure(fig, path)
