"""Search methods. One-shot methods are LightningModules trained over a supernet (``oneshot/``);
multi-trial methods are strategies run by one ask/tell loop (``multitrial/``). A method's config names
the runner that executes it (``method.run._target_``), so ``search.py`` treats them alike."""

from __future__ import annotations

import shlex
from pathlib import Path

from hydra.utils import get_method
from omegaconf import DictConfig

from lsnas.errors import ConfigError


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Run the configured method (what ``search.py`` does)."""
    target = (cfg.method.get("run") or {}).get("_target_")
    if not target:
        raise ConfigError(f"method {cfg.method.get('name')!r} names no runner (setting: method.run._target_)")
    return get_method(target)(cfg, run_dir)


def search_outcome(summary: dict) -> tuple[float | None, float | None]:
    """(score, cost in seconds) of a search from its ``search_summary.json``: the best trial's score (multi-trial)
    or the supernet's validation top-1 (one-shot); the wall time, or a multi-trial search's summed trial seconds."""
    score = summary.get("best_score")
    cost = summary.get("wall_time_s")
    return (summary.get("val_top1") if score is None else score,
            summary.get("total_evaluation_seconds") if cost is None else cost)


def train_command(cfg: DictConfig, arch_path: Path, overrides: list[str] | None = None) -> str:
    """The train.py command for the searched architecture: an experiment's pairing if set, else the dataset
    searched on with the settings the search was given on the command line (``dataset.source=...``,
    ``dataset.root=...``, ``data_dir=``, ``regime=``), so the command works when pasted."""
    from lsnas.cli import task_overrides

    overrides = task_overrides() if overrides is None else overrides
    then = cfg.get("then_train") or {}
    same_data = not then.get("dataset")
    # a proxy's root is its source's: when the pairing trains on that source, the root carries over
    source_is_target = not same_data and cfg.dataset.get("source") == then.get("dataset")
    carried = [o for o in overrides if o.startswith("data_dir=")
               or (same_data and o.lstrip("+").startswith(("dataset.", "regime=")))
               or (source_is_target and o.startswith("dataset.root="))]
    parts = [f"arch={arch_path}", f"dataset={then.get('dataset') or cfg.dataset.name}", *carried]
    protocol = then.get("protocol") or cfg.method.get("train_protocol")  # a method's own recipe (sparse)
    if protocol:
        parts.append(f"protocol={protocol}")
    return "python train.py " + " ".join(shlex.quote(p) for p in parts)


def print_train_command(cfg: DictConfig, arch_path: Path) -> None:
    """The next step, printed at the end of a search."""
    print(f"architecture written to {arch_path}; train it with:\n  {train_command(cfg, arch_path)}")
