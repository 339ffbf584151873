"""Pictures of architectures and searches: DARTS cell diagrams, architecture-weight heat maps and
multi-trial search traces."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.patches  # noqa: E402
import matplotlib.path  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lsnas.spaces.darts.genotype import CELL_TYPES, NUM_NODES  # noqa: E402
from lsnas.spaces.darts.ops import PRIMITIVES  # noqa: E402

OP_COLORS = {"max_pool_3x3": "#1f77b4", "avg_pool_3x3": "#17becf", "skip_connect": "#7f7f7f",
             "sep_conv_3x3": "#d62728", "sep_conv_5x5": "#ff7f0e", "dil_conv_3x3": "#2ca02c",
             "dil_conv_5x5": "#9467bd"}


def save_figure(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


CANDIDATE_T = (0.5, 0.42, 0.58, 0.34, 0.66, 0.27, 0.73, 0.2, 0.8)  # where along its edge a label may sit


def cell_positions() -> dict[int | str, tuple[float, float]]:
    """A layered layout of a DARTS cell: inputs left, nodes 0-3 in order, alternating above and below the axis
    so edges from both inputs stay apart, the output right."""
    pos: dict[int | str, tuple[float, float]] = {0: (0.0, 1.6), 1: (0.0, -1.6)}
    for i in range(NUM_NODES):
        pos[i + 2] = (1.9 + 1.9 * i, 1.25 if i % 2 == 0 else -1.25)
    pos["out"] = (1.9 + 1.9 * NUM_NODES, 0.0)
    return pos


def _bezier(p0, c, p1, t: float) -> np.ndarray:
    p0, c, p1 = (np.asarray(v, dtype=float) for v in (p0, c, p1))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t ** 2 * p1


def _overlap(a, b) -> float:
    """The area two display-space boxes share."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def plot_cell(genotype: dict, kind: str, path: str | os.PathLike) -> Path:
    """A DARTS cell as a left-to-right DAG: inputs c_{k-2}, c_{k-1}, nodes 0-3, output c_{k} (``draw_cell``)."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    draw_cell(ax, genotype, kind)
    return save_figure(fig, path)


def draw_cell(ax, genotype: dict, kind: str) -> tuple[list, list]:
    """Draw a cell on ``ax``. Each edge is a curve labelled with its operation on the curve itself; a label
    slides along its edge to the first place where it covers no node and no other label (measured in the
    rendered figure), as a layout engine would. Returns the labels' and the nodes' display boxes."""
    fig = ax.figure
    pos = cell_positions()
    names = {0: "c[k-2]", 1: "c[k-1]", **{i + 2: str(i) for i in range(NUM_NODES)}, "out": "c[k]"}
    ax.set_xlim(-0.7, pos["out"][0] + 0.7)
    ax.set_ylim(-2.6, 2.6)
    ax.axis("off")
    nodes = {}
    for node, (x, y) in pos.items():
        style = ("circle", "#fff3b0") if isinstance(node, int) and node >= 2 else ("round", "#c7e9c0")
        if node == "out":
            style = ("round", "#fdd0a2")
        nodes[node] = ax.text(x, y, names[node], ha="center", va="center", fontsize=9, zorder=4,
                              bbox=dict(boxstyle=style[0], fc=style[1]))
    renderer = fig.canvas.get_renderer()
    for text in nodes.values():
        text.draw(renderer)  # lays out each node's box, so its extent is where it will be drawn
    node_boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in nodes.values()]
    placed: list = []
    for k, (op, src) in enumerate(genotype[kind]):
        dst = k // 2 + 2
        p0, p1 = np.array(pos[src]), np.array(pos[dst])
        normal = np.array([-(p1 - p0)[1], (p1 - p0)[0]])
        control = (p0 + p1) / 2 + (0.18 if k % 2 else -0.18) * normal
        color = OP_COLORS.get(op, "k")
        # the curve as a polyline between the two nodes' rims (in the rendered figure), so the arrow head shows
        points = np.array([_bezier(p0, control, p1, t) for t in np.linspace(0.0, 1.0, 80)])
        shown = ax.transData.transform(points)
        ends = [node_boxes[list(nodes).index(n)].expanded(1.15, 1.15) for n in (src, dst)]
        outside = np.array([not any(box.contains(x, y) for box in ends) for x, y in shown])
        curve = matplotlib.path.Path(points[outside])
        ax.add_patch(matplotlib.patches.FancyArrowPatch(path=curve, arrowstyle="-|>", mutation_scale=12, color=color,
                                                        lw=1.6, zorder=2))
        label = ax.text(0, 0, op, fontsize=7, ha="center", va="center", color=color, zorder=5,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=color, lw=0.5, alpha=0.95))
        best = None
        for t in CANDIDATE_T:
            label.set_position(_bezier(p0, control, p1, t))
            label.draw(renderer)  # lays out the bbox patch at this position
            box = label.get_bbox_patch().get_window_extent(renderer)
            cost = sum(_overlap(box, other) for other in node_boxes) * 10 + sum(_overlap(box, o) for o in placed)
            if best is None or cost < best[0]:
                best = (cost, t, box)
            if cost == 0:
                break
        label.set_position(_bezier(p0, control, p1, best[1]))
        label.draw(renderer)
        placed.append(label.get_bbox_patch().get_window_extent(renderer))
    for node in genotype[f"{kind}_concat"]:
        ax.annotate("", xy=pos["out"], xytext=pos[node], zorder=1,
                    arrowprops=dict(arrowstyle="->", color="#bbbbbb", lw=1, shrinkA=14, shrinkB=16))
    ax.set_title(f"{kind} cell")
    return placed, node_boxes


def edge_labels() -> list[str]:
    names = ["c[k-2]", "c[k-1]"] + [str(i) for i in range(NUM_NODES)]
    return [f"{i} <- {names[j]}" for i in range(NUM_NODES) for j in range(i + 2)]


def plot_edge_weights(weights: dict[str, np.ndarray], path: str | os.PathLike, title: str = "") -> Path:
    """Heat maps (edges x operations) of the architecture weights of both cell types."""
    fig, axes = plt.subplots(1, len(CELL_TYPES), figsize=(11, 5.2), constrained_layout=True)
    for ax, kind in zip(axes, CELL_TYPES):
        w = np.asarray(weights[kind])
        im = ax.imshow(w, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(PRIMITIVES)), PRIMITIVES, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(w.shape[0]), edge_labels(), fontsize=7)
        ax.set_title(f"{kind} cell")
        fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_search_trace(trials, path: str | os.PathLike, title: str = "") -> Path:
    """A multi-trial search at a glance: each finished trial's score and the best so far, against the
    trial index and against the cumulative evaluation cost. Failed trials are red crosses on the axis."""
    finished = [t for t in trials if t.result is not None]
    order = sorted(finished, key=lambda t: t.result.get("time", 0.0))  # the order results came in
    cost = np.cumsum([(t.result.get("cost") or {}).get("seconds") or 0.0 for t in order])
    scores = [t.score for t in order]
    best = np.maximum.accumulate([s if s is not None else -np.inf for s in scores])
    ok = [i for i, s in enumerate(scores) if s is not None]
    bad = [i for i, s in enumerate(scores) if s is None]
    floor = min((scores[i] for i in ok), default=0.0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, x, label in ((axes[0], np.arange(1, len(order) + 1), "trials finished"),
                         (axes[1], cost, "evaluation cost (s, cumulative)")):
        ax.scatter(x[ok], [scores[i] for i in ok], s=14, alpha=0.6, label="trial")
        if bad:
            ax.scatter(x[bad], [floor] * len(bad), marker="x", color="#d62728", label="failed")
        shown = np.isfinite(best)
        ax.step(x[shown], best[shown], where="post", color="#ff7f0e", label="best so far")
        ax.set_xlabel(label)
        ax.set_ylabel("score")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_proxy_scatter(results: list[dict], rows: list[dict], path: str | os.PathLike, columns: int = 4) -> Path:
    """One panel per proxy: its value (x) against the trained accuracy (y) of each architecture, titled with
    Kendall's tau and Spearman's rho (``rows`` of ``lsnas.proxies.quality.study_table``, best first). Values
    that span decades are shown on a symmetric log axis."""
    n = len(rows)
    cols = min(columns, n)
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=(3.2 * cols, 2.8 * -(-n // cols)), squeeze=False,
                             constrained_layout=True)
    for ax, row in zip(axes.flat, rows):
        pairs = [(r["metrics"][row["proxy"]], r["score"]) for r in results
                 if np.isfinite(r["metrics"].get(row["proxy"], np.nan))]
        x, y = (np.array(v) for v in zip(*pairs)) if pairs else (np.array([]), np.array([]))
        ax.scatter(x, y, s=14, alpha=0.7)
        finite = x[x != 0]
        if finite.size and np.abs(finite).max() / max(np.abs(finite).min(), 1e-300) > 1e3:
            ax.set_xscale("symlog", linthresh=max(np.abs(finite).min(), 1e-12))
        else:
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        tau, rho = row["kendall_tau"], row["spearman_rho"]
        lower = " (lower is better)" if row.get("sign", 1) < 0 else ""
        stats_text = (f"tau {tau:+.2f}  rho {rho:+.2f}" if np.isfinite(tau) else
                      "tau, rho n/a (fewer than 3 architectures)" if row["n"] < 3 else "tau, rho n/a (no spread)")
        ax.set_title(f"{row['proxy']}{lower}\n{stats_text}  (n={row['n']})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("trained accuracy", fontsize=8)
    return save_figure(fig, path)


SPARSE_COLORS = {"dense": "#2ca02c", "searched": "#d62728", "random": "#1f77b4"}


def plot_sparse_accuracy(summary: list[dict], path: str | os.PathLike, metric: str = "top-1") -> Path:
    """Final accuracy (mean ± std) against sparsity: searched and random masks, the dense parent as a band."""
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for role in ("searched", "random"):
        rows = [r for r in summary if r["role"] == role]
        if rows:
            ax.errorbar([r["sparsity"] for r in rows], [r["final_mean"] for r in rows],
                        yerr=[r["final_std"] for r in rows], marker="o", capsize=3, label=f"{role} masks",
                        color=SPARSE_COLORS[role])
    for r in (r for r in summary if r["role"] == "dense"):
        ax.axhline(r["final_mean"], color=SPARSE_COLORS["dense"], label="dense parent")
        low, high = r["final_mean"] - r["final_std"], r["final_mean"] + r["final_std"]
        ax.axhspan(low, high, color=SPARSE_COLORS["dense"], alpha=0.15)
    ax.set_xlabel("sparsity (fraction of hidden nodes removed)")
    ax.set_ylabel(f"final {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_sparse_convergence(rows: list[dict], target: float, path: str | os.PathLike) -> Path:
    """Validation top-1 per epoch (mean, and the range over trainings), one panel per sparsity, with the dense
    parent in each."""
    sparsities = sorted({r["sparsity"] for r in rows if r["role"] != "dense"}) or [0.0]
    fig, axes = plt.subplots(1, len(sparsities), figsize=(3.6 * len(sparsities), 3.4), squeeze=False,
                             sharey=True, constrained_layout=True)
    for ax, sparsity in zip(axes[0], sparsities):
        for role, color in SPARSE_COLORS.items():
            curves = [r["curve"] for r in rows if r["role"] == role and (role == "dense" or r["sparsity"] == sparsity)]
            length = min((len(c) for c in curves), default=0)
            if not length:
                continue
            values = np.array([c[:length] for c in curves])
            epochs = np.arange(1, length + 1)
            ax.plot(epochs, values.mean(0), color=color, label=role)
            ax.fill_between(epochs, values.min(0), values.max(0), color=color, alpha=0.15)
        ax.axhline(target, color="k", linestyle="--", linewidth=0.8, label="target")
        ax.set_title(f"sparsity {sparsity:g}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation top-1")
    axes[0][0].legend(fontsize=8)
    return save_figure(fig, path)


def plot_population_quality(generations, path: str | os.PathLike, title: str = "") -> Path:
    """EAT-NAS's population quality: per generation of each stage, the population's mean score with a band of
    one standard deviation, and its best; stages side by side (their scores are on different data)."""
    stages = list(dict.fromkeys(g.stage for g in generations)) or ["source"]
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 3.8), constrained_layout=True, squeeze=False)
    for ax, stage in zip(axes[0], stages):
        rows = [g for g in generations if g.stage == stage]
        x = np.array([g.index for g in rows])
        mean, std = np.array([g.mean for g in rows]), np.array([g.std for g in rows])
        ax.plot(x, mean, marker="o", label="mean")
        ax.fill_between(x, mean - std, mean + std, alpha=0.25, label="mean ± std")
        ax.plot(x, [g.best for g in rows], ls="--", marker=".", color="#ff7f0e", label="best member")
        ax.set_xlabel("generation")
        ax.set_ylabel("score")
        ax.set_title(f"{stage} stage")
        ax.grid(alpha=0.3)
        if len(x):
            ax.set_xticks(x)
    axes[0][0].legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


BLOCK_COLORS = {"sep": "#9ecae1", "mb3": "#a1d99b", "mb6": "#fdae6b"}


def plot_blocks(genotype: dict, channels: list[int], strides: list[int], path: str | os.PathLike,
                title: str = "") -> Path:
    """A block-space network left to right: one box per block, its width the layer count and its height the
    channels, labelled with op, kernel, layers x channels, stride and skip."""
    fig, ax = plt.subplots(figsize=(11, 3.4))
    x, top = 0.0, max(channels)
    for i, (block, c, s) in enumerate(zip(genotype["blocks"], channels, strides)):
        w, h = 0.6 + 0.35 * block["layers"], 0.4 + 2.2 * c / top
        ax.add_patch(plt.Rectangle((x, -h / 2), w, h, fc=BLOCK_COLORS.get(block["op"], "#dddddd"), ec="k"))
        skip = "skip" if block["skip"] == "identity" else "no skip"
        ax.text(x + w / 2, 0, f"{block['op']}\nk{block['kernel']}\n{block['layers']}x{c}\ns{s}\n{skip}",
                ha="center", va="center", fontsize=7)
        ax.text(x + w / 2, -1.55, f"block {i + 1}\nw{block['width']:g}", ha="center", va="top", fontsize=7)
        x += w + 0.25
    ax.set_xlim(-0.2, x)
    ax.set_ylim(-2.0, 1.5)
    ax.axis("off")
    ax.set_title(title or f"{genotype['activation']}, shape-changing skips: {genotype['shape_skip']}, "
                          f"{genotype.get('implementation', 'torchvision')} details")
    return save_figure(fig, path)


def plot_selection(trials, selected: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """BigNAS's selection: every child scored on the shared weights (top-1 against MACs), the MACs targets as
    vertical lines, and the child selected for each target."""
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    done = [t for t in trials if t.score is not None]
    for phase, marker in (("coarse", "o"), ("fine", "^")):
        pts = [t for t in done if t.tags.get("phase") == phase]
        ax.scatter([t.result["cost"]["macs"] / 1e6 for t in pts], [t.score for t in pts], s=16, alpha=0.5,
                   marker=marker, label=f"{phase} ({len(pts)})")
    for row in selected:
        ax.axvline(row["target_macs"] / 1e6, color="#bbbbbb", ls="--", lw=1)
    ax.plot([r["macs"] / 1e6 for r in selected], [r["top1"] for r in selected], color="#d62728", marker="*",
            ms=12, lw=1, label="selected")
    ax.set_xlabel("MMACs")
    ax.set_ylabel("top-1 (inherited weights, recalibrated BN)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
