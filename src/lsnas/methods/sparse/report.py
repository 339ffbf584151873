"""The sparse-search report: dense parent, searched and random masks against sparsity, from a study's run dir.

    python -m lsnas.methods.sparse.report <run dir> [--target 0.85] [--alpha 0.05]

Writes ``sparse_study.csv`` (one row per final training: its sparsity, kind, mask, seed, accuracies, epochs to
the target and the validation curve), ``sparse_summary.csv`` and ``sparse_study.md`` (mean ± std per sparsity
and kind, and the searched-vs-random tests), ``accuracy_vs_sparsity.png`` and ``convergence.png``.

- The final accuracy is the test split's top-1 when the trainings measured it (``evaluator=train_test``), else
  the last validation top-1.
- Convergence is the validation top-1 after each epoch; *epochs to target* is the first epoch (counted from 1)
  at or above the target: ``--target`` (absolute), else ``--target-fraction`` of the dense parent's mean last
  validation top-1 (0.95 by default). A training that never reaches it counts as epochs + 1 in the test.
- Searched against random masks at each sparsity: the two-sided Mann-Whitney U test (``scipy.stats``), which
  assumes no normality, on the final accuracies (searched: one mask x seeds; random: masks x seeds) and on
  the epochs to target. With 3 seeds the searched side has 3 values, so only large differences can be
  significant; the report states n beside every p. The searched side is one mask retrained with several data
  orders, so the test is about that mask, not the search procedure; the report says so.
- A training whose last training loss is still near ln(classes) never left chance: flagged per training
  (``at_chance``), counted per group and listed in the report.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from lsnas.analysis.stats import mann_whitney, smallest_p
from lsnas.methods.multitrial.journal import JOURNAL_FILENAME, Journal, TrialLog
from lsnas.utils.io import atomic_write_json, atomic_write_text

ROLES = ("dense", "searched", "random")
TRAINING_FIELDS = ("sparsity", "role", "mask", "index", "seed", "params", "macs", "final_top1", "test_top1",
                   "val_top1", "train_loss", "at_chance", "epochs", "epochs_to_target", "seconds", "curve")
SUMMARY_FIELDS = ("sparsity", "role", "n", "params", "final_mean", "final_std", "epochs_to_target_mean",
                  "reached", "at_chance", "p_final", "p_epochs")


def collect(run_dir: str | Path) -> list[dict]:
    """One row per complete final training under ``dense/seed_*`` and ``sparsity_*/seed_*``."""
    run_dir = Path(run_dir)
    rows = []
    for journal in sorted([*run_dir.glob(f"dense/seed_*/{JOURNAL_FILENAME}"),
                           *run_dir.glob(f"sparsity_*/seed_*/{JOURNAL_FILENAME}")]):
        seed = int(journal.parent.name.removeprefix("seed_"))
        log = TrialLog.replay(Journal(journal.parent).read())
        for k, result in sorted(log.results.items()):
            if result["status"] != "complete":
                continue
            tags, metrics, cost = log.asks[k].get("tags", {}), result.get("metrics", {}), result.get("cost", {})
            curve = [v for v in metrics.get("curve", []) if v is not None]
            test = metrics.get("test/top1")
            val = curve[-1] if curve else result.get("score")
            rows.append({"sparsity": float(tags.get("sparsity", 0.0)), "role": tags.get("role", "random"),
                         "mask": log.asks[k]["digest"], "index": tags.get("index"), "seed": seed,
                         "params": cost.get("params"), "macs": cost.get("macs"),
                         "final_top1": test if test is not None else val, "test_top1": test, "val_top1": val,
                         "epochs": cost.get("epochs"), "seconds": cost.get("seconds"), "curve": curve,
                         "train_loss": metrics.get("train/loss_epoch"),
                         "at_chance": at_chance(metrics.get("train/loss_epoch"), metrics.get("num_classes"))})
    return rows


def at_chance(train_loss: float | None, num_classes: int | None, margin: float = 0.95) -> bool | None:
    """A training that never left chance: its last training loss is still within ``margin`` of ln(classes),
    the cross-entropy of a uniform guess (None when the journal does not say)."""
    if train_loss is None or not num_classes or num_classes < 2:
        return None
    return bool(train_loss >= margin * math.log(num_classes))


def target_accuracy(rows: list[dict], target: float | None, fraction: float) -> float:
    if target is not None:
        return float(target)
    dense = [r["val_top1"] for r in rows if r["role"] == "dense"]
    if not dense:
        raise ValueError("no dense training to set the convergence target from; give --target")
    return fraction * float(np.mean(dense))


def epochs_to(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple[float, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["sparsity"], r["role"]), []).append(r)
    summary = []
    for (sparsity, role), group in sorted(groups.items(), key=lambda g: (g[0][0], ROLES.index(g[0][1]))):
        finals = [r["final_top1"] for r in group]
        reached = [r["epochs_to_target"] for r in group if r["epochs_to_target"] is not None]
        spread = float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0
        params = int(np.mean([r["params"] for r in group]))
        row = {"sparsity": sparsity, "role": role, "n": len(group), "params": params,
               "final_mean": float(np.mean(finals)), "final_std": spread,
               "epochs_to_target_mean": float(np.mean(reached)) if reached else math.nan,
               "reached": f"{len(reached)}/{len(group)}", "at_chance": sum(bool(r.get("at_chance")) for r in group),
               "p_final": math.nan, "p_epochs": math.nan}
        if role == "searched":
            random_ = groups.get((sparsity, "random"), [])
            row["p_final"] = mann_whitney(finals, [r["final_top1"] for r in random_])
            row["p_epochs"] = mann_whitney([_censored(r) for r in group], [_censored(r) for r in random_])
        summary.append(row)
    return summary


def _censored(row: dict) -> float:
    return row["epochs_to_target"] if row["epochs_to_target"] is not None else (row["epochs"] or len(row["curve"])) + 1


GROUPS_NOTE = ("*searched* is one mask, the best of one random search per sparsity (`seed`), trained once per "
               "training seed (`method.seeds`: data orders; the initialisation is the parent's): its spread is "
               "training noise around that mask, and its test compares that mask with the random masks, not the "
               "search procedure (which would need a search per seed). *random* is `method.num_random` masks x the "
               "same seeds.")


def markdown(summary: list[dict], target: float, alpha: float, metric: str, rows: list[dict] = ()) -> str:
    lines = [f"Final {metric} (mean ± std over trainings: masks × seeds) and epochs to reach validation top-1 ≥ "
             f"{target:.4f}.", "", GROUPS_NOTE, "",
             "| sparsity | kind | n | params | final top-1 | epochs to target | reached | at chance |",
             "|---:|---|---:|---:|---|---:|---:|---:|"]
    for r in summary:
        epochs = f"{r['epochs_to_target_mean']:.1f}" if math.isfinite(r["epochs_to_target_mean"]) else "–"
        lines.append(f"| {r['sparsity']:g} | {r['role']} | {r['n']} | {r['params']:,} | {r['final_mean']:.4f} ± "
                     f"{r['final_std']:.4f} | {epochs} | {r['reached']} | {r['at_chance']} |")
    stuck = [r for r in rows if r.get("at_chance")]
    if stuck:
        lines += ["", f"**{len(stuck)} training(s) never left chance** (last training loss within 5% of ln(classes), "
                  "the loss of a uniform guess); they are in the means above, and a mean that includes them says "
                  "more about trainability than about accuracy:", ""]
        lines += [f"- sparsity {r['sparsity']:g}, {r['role']}, mask {r['mask'][:10]}, seed {r['seed']}: training loss "
                  f"{r['train_loss']:.3f}, final top-1 {r['final_top1']:.4f}" for r in stuck]
    by_key = {(r["sparsity"], r["role"]): r for r in summary}
    tests = [r for r in summary if r["role"] == "searched" and (r["sparsity"], "random") in by_key]
    if tests:
        lines += ["", f"Searched against random masks (two-sided Mann-Whitney U; significant at alpha = {alpha:g}):",
                  "", "| sparsity | searched − random (final) | p (final) | p (epochs to target) | verdict |",
                  "|---:|---:|---:|---:|---|"]
        for r in tests:
            other = by_key[(r["sparsity"], "random")]
            verdict = ("differ" if r["p_final"] < alpha else "no significant difference") \
                if math.isfinite(r["p_final"]) else "not testable"
            floor = smallest_p("mann_whitney", r["n"], other["n"])
            if verdict != "differ" and floor >= alpha:  # say so, and what would allow it
                enough = next(n for n in range(r["n"], 1000) if smallest_p("mann_whitney", n, other["n"]) < alpha)
                verdict = (f"could not be significant: the smallest p at these sizes is {floor:.3g}; "
                           f"{enough} searched trainings against {other['n']} would allow it")
            lines.append(f"| {r['sparsity']:g} | {r['final_mean'] - other['final_mean']:+.4f} | {_p(r['p_final'])} | "
                         f"{_p(r['p_epochs'])} | {verdict} (n = {r['n']} vs {other['n']}) |")
    return "\n".join(lines) + "\n"


def _p(p: float) -> str:
    return f"{p:.3g}" if math.isfinite(p) else "n/a"


def _csv(rows: list[dict], fields) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    return buffer.getvalue()


def write_report(run_dir: str | Path, target: float | None = None, target_fraction: float = 0.95,
                 alpha: float = 0.05) -> dict:
    """Write the report's files into ``run_dir``; return its summary (also ``search_summary.json``)."""
    from lsnas.viz import plot_sparse_accuracy, plot_sparse_convergence

    run_dir = Path(run_dir)
    rows = collect(run_dir)
    if not rows:
        raise FileNotFoundError(f"{run_dir}: no complete final training (dense/seed_*, sparsity_*/seed_*)")
    goal = target_accuracy(rows, target, target_fraction)
    for row in rows:
        row["epochs_to_target"] = epochs_to(row["curve"], goal)
    summary = summarize(rows)
    metric = "test top-1" if all(r["test_top1"] is not None for r in rows) else "validation top-1"
    table = markdown(summary, goal, alpha, metric, rows)
    atomic_write_text(run_dir / "sparse_study.md", table)
    atomic_write_text(run_dir / "sparse_study.csv", _csv(rows, TRAINING_FIELDS))
    atomic_write_text(run_dir / "sparse_summary.csv", _csv(summary, SUMMARY_FIELDS))
    plot_sparse_accuracy(summary, run_dir / "accuracy_vs_sparsity.png", metric)
    plot_sparse_convergence(rows, goal, run_dir / "convergence.png")
    result = {"method": "sparse_random", "target": goal, "alpha": alpha, "metric": metric,
              "trainings": len(rows), "summary": [_json_clean(r) for r in summary]}
    atomic_write_json(run_dir / "search_summary.json", result)
    print(table)
    return result


def _json_clean(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a method=sparse_random run dir")
    parser.add_argument("--target", type=float, default=None, help="validation top-1 that counts as converged")
    parser.add_argument("--target-fraction", type=float, default=0.95,
                        help="without --target: this fraction of the dense parent's mean final validation top-1")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the tests")
    args = parser.parse_args(argv)
    write_report(args.run_dir, args.target, args.target_fraction, args.alpha)


if __name__ == "__main__":
    main()
