"""Run dirs -> one tidy table: a row per (method, source, search protocol, seed, target, target protocol).

The collector only reads what the runs wrote (``search_summary.json``, ``metrics.json``, ``arch.json``,
``study_status.json``, the W&B run dir); nothing is parsed from logs. Every planned row is there: a run that
failed, was interrupted or has not run yet keeps its row, with ``status`` and ``reason`` saying why it has no
numbers (a search that did not finish gives its rows for every target and protocol).

Columns (accuracies in percent, costs in seconds and device-hours = wall seconds x processes / 3600):
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lsnas.analysis.study import SEARCH_AXES, TRANSFER_AXES, Study, read_json, run_status
from lsnas.methods import search_outcome
from lsnas.utils.io import atomic_write_bytes, atomic_write_text

COLUMNS = {
    "study": "the study's name",
    **{axis: "an axis of the study (source 'none': a method that reads no data)" for axis in TRANSFER_AXES},
    "status": "complete | failed | interrupted | pending (of the row's search, then its transfer run)",
    "stage": "where the row stopped: search | transfer (complete rows: transfer)",
    "reason": "why a row has no numbers (a failed run's error)",
    "search_score": "the search's own validation accuracy on the source (supernet or best trial), %",
    "source_top1": "the architecture's test top-1 trained on its source under the row's target protocol, %",
    "target_top1": "test top-1 of the final training on the target, %",
    "target_top5": "test top-5 on the target, %",
    "target_val_top1": "the final training's last validation top-1, %",
    "params": "parameters of the target network",
    "macs": "multiply-accumulates of one forward pass at the target's resolution",
    "search_wall_s": "search cost: wall seconds (multi-trial: summed trial seconds)",
    "search_device_hours": "search cost in device-hours",
    "train_wall_s": "final training's wall seconds (across resumes)",
    "train_device_hours": "final training's cost in device-hours",
    "epochs": "epochs the final training ran",
    "space": "the architecture's search space",
    "arch_digest": "the architecture's digest (equal architectures, equal digests)",
    "search_dir": "the search run dir",
    "transfer_dir": "the final training's run dir",
    "search_wandb_id": "the search's W&B run id (None without W&B)",
    "transfer_wandb_id": "the final training's W&B run id",
}
__doc__ += "\n".join(f"- ``{k}``: {v}" for k, v in COLUMNS.items()) + "\n"


def _percent(value) -> float | None:
    return None if value is None else round(100.0 * float(value), 4)


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the W&B run written under ``run_dir/wandb`` (the latest, after resumes)."""
    runs = list((run_dir / "wandb").glob("*run-*-*")) if (run_dir / "wandb").is_dir() else []
    runs = sorted((r for r in runs if r.is_dir() and not r.name.startswith("latest")), key=lambda r: r.stat().st_mtime)
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None


def _search_part(study: Study, subdir: str) -> dict:
    run_dir = study.dir / subdir
    summary = read_json(run_dir / "search_summary.json") or {}
    score, wall = search_outcome(summary)
    return {"search_score": _percent(score), "search_wall_s": wall,
            "search_device_hours": None if wall is None else wall * summary.get("world_size", 1) / 3600,
            "space": summary.get("space"), "arch_digest": summary.get("arch_digest"),
            "search_dir": str(run_dir), "search_wandb_id": wandb_run_id(run_dir)}


def _transfer_part(run_dir: Path) -> dict:
    m = read_json(run_dir / "metrics.json") or {}
    wall = m.get("wall_time_s")
    return {"target_top1": _percent(m.get("top1")), "target_top5": _percent(m.get("top5")),
            "target_val_top1": _percent(m.get("val_top1")), "params": m.get("params"), "macs": m.get("macs"),
            "train_wall_s": wall, "train_device_hours": None if wall is None else wall * m.get("world_size", 1) / 3600,
            "epochs": m.get("epochs"), "transfer_dir": str(run_dir), "transfer_wandb_id": wandb_run_id(run_dir)}


def collect(study: Study) -> pd.DataFrame:
    """The study's tidy table (``COLUMNS``), every planned row included."""
    searches = study.search_cells()
    transfers, _ = study.transfer_cells(searches)
    by_search: dict[str, list] = {}
    for cell in transfers:
        by_search.setdefault(cell.arch_from, []).append(cell)
    rows = []
    for search in searches:
        search_status = run_status(study.dir / search.subdir, "search")
        part = _search_part(study, search.subdir)
        if search_status["status"] != "complete":
            for target in (t for t in study.targets if study.trains_on(search.axes["source"], t)):
                for protocol in study.target_protocols:
                    rows.append({**search.axes, "target": target, "target_protocol": protocol,
                                 "status": search_status["status"], "stage": "search",
                                 "reason": search_status["reason"], **part})
            continue
        for cell in by_search.get(search.subdir, []):
            run_dir = study.dir / cell.subdir
            status = run_status(run_dir, "transfer")
            rows.append({**cell.axes, "status": status["status"], "stage": "transfer", "reason": status["reason"],
                         **part, **(_transfer_part(run_dir) if status["status"] == "complete" else
                                    {"transfer_dir": str(run_dir)})})
    table = pd.DataFrame(rows).reindex(columns=[c for c in COLUMNS if c != "study"])
    table.insert(0, "study", study.name)
    return add_source_accuracy(table)


def add_source_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """``source_top1``: the same search's architecture trained on its source (the target named like the source)
    under the same target protocol."""
    keys = [*SEARCH_AXES, "target_protocol"]
    on_source = table[table["target"] == table["source"]][[*keys, "target_top1"]]
    on_source = on_source.rename(columns={"target_top1": "source_top1"})
    merged = table.drop(columns="source_top1").merge(on_source, on=keys, how="left")
    return merged.reindex(columns=table.columns)


def write_table(table: pd.DataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """``table.csv`` and ``table.parquet`` (atomically), and ``table_schema.json`` (the columns' meanings)."""
    out_dir = Path(out_dir)
    csv_path, parquet_path = out_dir / "table.csv", out_dir / "table.parquet"
    atomic_write_text(csv_path, table.to_csv(index=False))
    atomic_write_bytes(parquet_path, table.to_parquet(index=False))
    atomic_write_text(out_dir / "table_schema.json", json.dumps(COLUMNS, indent=1))
    problems = table[table["status"] != "complete"]
    print(f"table: {len(table)} rows ({len(table) - len(problems)} complete) -> {csv_path}, {parquet_path}")
    for row in problems.drop_duplicates(["stage", "search_dir", "transfer_dir"]).itertuples():
        where = row.search_dir if row.stage == "search" else row.transfer_dir
        print(f"  {row.status}: {where}: {row.reason}")
    return csv_path, parquet_path
