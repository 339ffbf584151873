"""What ``search.py`` does for ``method=bignas``: train the supernet (the one-shot runner), then select children
under MACs targets on its shared weights (``method.selection``; none when ``targets`` is empty).

    python search.py method=bignas dataset=cifar10 method.selection.targets=[2e6,4e6]

Run dir: the supernet's checkpoint, ``arch.json`` (the biggest child), and ``selection/``: the selection's
journal, ``target_<MACs>/arch.json`` per target, ``selection.{md,csv}`` and ``selection.png`` (top-1 against MACs).
"""

from __future__ import annotations

import csv
import io
import logging
import shlex
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lsnas.arch import ARCH_FILENAME, Architecture
from lsnas.evaluators.supernet import SupernetEvaluator, load_supernet
from lsnas.methods import train_command
from lsnas.methods.bignas.selection import CoarseToFine
from lsnas.methods.multitrial.runner import run_search, search_config
from lsnas.methods.oneshot.runner import search as train_supernet
from lsnas.utils.io import atomic_write_json, atomic_write_text
from lsnas.viz import plot_selection

log = logging.getLogger(__name__)
SELECTION_DIR = "selection"


def select(cfg: DictConfig, run_dir: Path) -> list[dict]:
    s = cfg.method.selection
    net, space, _ = load_supernet(run_dir)
    evaluator = SupernetEvaluator(str(run_dir), OmegaConf.to_container(cfg.dataset, resolve=True),
                                  batch_size=s.batch_size, calib_batches=s.calib_batches, eval_batches=s.eval_batches)
    strategy = CoarseToFine(list(s.targets), num_fine=s.num_fine, num_classes=net.classifier.out_features,
                            in_channels=net.stem.conv.in_channels)
    out = run_dir / SELECTION_DIR
    state = run_search(cfg, out, space, strategy, evaluator, {"executor": "inprocess"},
                       config={**search_config(cfg), "selection": OmegaConf.to_container(s, resolve=True)},
                       title=f"coarse-to-fine selection under {len(strategy.targets)} MACs targets", write_arch=False,
                       log_trials=False)  # the run's loggers hold the supernet's training curves
    rows = []
    for target in strategy.targets:
        best = strategy.best_within(state, target)
        if best is None:
            log.warning("no child within %s MACs was scored", f"{target:,.0f}")
            continue
        directory = out / f"target_{int(target)}"
        best.arch.save(directory / "arch.json")
        rows.append({"target_macs": int(target), "trial": best.k, "phase": best.tags.get("phase"),
                     "macs": best.result["cost"]["macs"], "params": best.result["cost"]["params"],
                     "top1": round(best.score, 4), "resolution": best.arch.genotype["resolution"],
                     "arch": str(directory / "arch.json")})
    if rows:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out / "selection.csv", buffer.getvalue())
        lines = ["| MACs target | selected MACs | params | resolution | top-1 (inherited) | phase | trial |",
                 "|---:|---:|---:|---:|---:|---|---:|"]
        lines += [f"| {r['target_macs']:,} | {r['macs']:,} | {r['params']:,} | {r['resolution']} | {r['top1']:.4f} | "
                  f"{r['phase']} | {r['trial']} |" for r in rows]
        atomic_write_text(out / "selection.md", "\n".join(lines) + "\n")
        plot_selection(state.trials, rows, out / "selection.png", title=f"BigNAS children on {cfg.dataset.name}")
        print("\n".join(lines))
    return rows


def child_commands(cfg: DictConfig, run_dir: Path, arch_path: Path, out: Path, resolution: int) -> list[str]:
    """How a selected child becomes a network of its own: extract it with its inherited weights (BN
    recalibrated), then evaluate it (``protocol.epochs=0``) or fine-tune it with train.py."""
    extract = (f"python -m lsnas.methods.bignas.extract {shlex.quote(str(run_dir))} --arch "
               f"{shlex.quote(str(arch_path))} --out {shlex.quote(str(out))}")
    train = (f"{train_command(cfg, out / ARCH_FILENAME)} init_weights={shlex.quote(str(out / 'weights.pt'))} "
             f"dataset.resolution={resolution} protocol.epochs=0")
    return [extract, train]


def print_next_steps(cfg: DictConfig, run_dir: Path, rows: list[dict]) -> None:
    """After the selection table: the extract and train commands of each chosen child (or, without a
    selection, of the biggest child, the run's arch.json)."""
    children = [(Path(r["arch"]), Path(r["arch"]).parent / "child", r["resolution"],
                 f"MACs target {r['target_macs']:,}") for r in rows]
    if not children:
        biggest = Architecture.load(run_dir / ARCH_FILENAME)
        children = [(run_dir / ARCH_FILENAME, run_dir / "child", biggest.genotype["resolution"], "the biggest child")]
    print("extract each child with its inherited weights, then evaluate it (protocol.epochs=0) or fine-tune it "
          "(protocol.epochs=N):")
    for arch_path, out, resolution, label in children:
        print(f"  # {label}")
        for command in child_commands(cfg, run_dir, arch_path, out, resolution):
            print(f"  {command}")


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    summary = train_supernet(cfg, run_dir, announce=False)
    if rank_zero_only.rank != 0:
        return summary
    selection = cfg.method.get("selection")
    rows = []
    if selection and selection.targets:
        rows = summary["selection"] = select(cfg, run_dir)
        atomic_write_json(run_dir / "search_summary.json", summary)
    print_next_steps(cfg, run_dir, rows)
    return summary
