"""How well proxies rank architectures: Kendall's tau and Spearman's rho against trained accuracy, with
bootstrap confidence intervals, from a proxy-quality study's journal.

    python -m lsnas.proxies.quality <run dir>      # (re)writes proxy_quality.{md,csv,png} there

Each proxy is correlated in its preferred direction (``sign * value``), so a positive coefficient means
the proxy ranks architectures the way training does, whatever the proxy. Candidates whose proxy value is
NaN (a degenerate kernel) are left out of that proxy's row; ``n`` says how many remained. The intervals
are percentile bootstraps over candidates (pairs resampled together, ``resamples`` times).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path

import numpy as np

from lsnas.analysis.stats import COEFFICIENTS, correlation
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.proxies.base import PROXIES, get_proxy
from lsnas.utils.io import atomic_write_text


def study_table(results: list[dict], resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> list[dict]:
    """One row per measured proxy (``<label>/<proxy>`` metrics of complete trials) against their scores."""
    complete = [r for r in results if r.get("status") == "complete"]
    keys = sorted({k for r in complete for k in r.get("metrics", {}) if k.split("/", 1)[-1] in PROXIES})
    rows = []
    for key in keys:
        sign = get_proxy(key.split("/", 1)[-1]).sign
        pairs = [(sign * r["metrics"][key], r["score"]) for r in complete
                 if math.isfinite(r["metrics"].get(key, math.nan))]
        x, y = (np.array(v) for v in zip(*pairs)) if pairs else (np.array([]), np.array([]))
        row = {"proxy": key, "n": len(pairs), "sign": sign}
        for name in COEFFICIENTS:
            value, low, high = correlation(x, y, name, resamples, confidence, seed)
            row.update({name: value, f"{name}_low": low, f"{name}_high": high})
        rows.append(row)
    return sorted(rows, key=lambda r: -np.nan_to_num(r["kendall_tau"], nan=-2.0))


def markdown(rows: list[dict], confidence: float, n_trials: int) -> str:
    pct = f"{confidence:.0%}"
    lines = [f"Rank correlation with trained accuracy over {n_trials} architectures ({pct} bootstrap intervals; "
             "positive: the proxy ranks as training does).", "",
             f"| proxy | n | Kendall tau [{pct} CI] | Spearman rho [{pct} CI] |", "|---|---:|---|---|"]
    for r in rows:
        why = "n/a: fewer than 3 architectures" if r["n"] < 3 else "n/a: no spread in the proxy or the accuracy"
        cells = [f"{r[c]:+.3f} [{r[c + '_low']:+.2f}, {r[c + '_high']:+.2f}]" if math.isfinite(r[c]) else why
                 for c in COEFFICIENTS]
        lines.append(f"| {r['proxy']} | {r['n']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def write_report(run_dir: str | Path, resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> list[dict]:
    """proxy_quality.md (the table), .csv (the numbers) and .png (scatter plots) from the run's journal."""
    from lsnas.viz import plot_proxy_scatter

    run_dir = Path(run_dir)
    log = TrialLog.replay(Journal(run_dir).read())
    results = list(log.results.values())
    rows = study_table(results, resamples, confidence, seed)
    n_trials = sum(r["status"] == "complete" for r in results)
    table = markdown(rows, confidence, n_trials)
    atomic_write_text(run_dir / "proxy_quality.md", table)
    fields = ["proxy", "n", *(f"{c}{s}" for c in COEFFICIENTS for s in ("", "_low", "_high"))]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run_dir / "proxy_quality.csv", buffer.getvalue())
    if rows:
        plot_proxy_scatter([r for r in results if r["status"] == "complete"], rows, run_dir / "proxy_quality.png")
    print(table)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a method=proxy_study run dir (it holds trials.jsonl)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_report(args.run_dir, args.resamples, args.confidence, args.seed)


if __name__ == "__main__":
    main()
