"""A small study definition and run dirs written by hand in the formats search.py / train.py write."""

import json
from pathlib import Path

from lsnas.analysis.study import Study
from lsnas.arch import Architecture, from_zoo


def study_config(tmp_path: Path, **changes) -> dict:
    cfg = {"name": "mini", "dir": str(tmp_path / "study"), "launcher": "basic", "baseline": "random_sample",
           "proxies_of": {"big": ["proxy"]},
           "search": {"seeds": [0, 1],
                      "methods": {"darts": ["method=darts"], "random_sample": ["method=random_sample"]},
                      "source_free": ["random_sample"],
                      "sources": {"small": ["dataset=digits"], "proxy": ["dataset=digits", "dataset.resolution=8"]},
                      "protocols": {"tiny": ["budget=small"]}, "common": ["logger=csv"]},
           "transfer": {"targets": {"big": ["dataset=digits"], "small": ["dataset=digits"]},
                        "protocols": {"plain": ["protocol=quick"]}, "common": ["logger=csv"]},
           "analysis": {"resamples": 200}}
    for key, value in changes.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


def write_search(run_dir: Path, method: str, seed: int, completed: bool = True, score: float = 0.5) -> Architecture:
    run_dir.mkdir(parents=True, exist_ok=True)
    arch = from_zoo("darts_v2")
    summary = {"method": method, "seed": seed, "completed": completed, "arch_digest": arch.digest,
               "val_top1": score, "wall_time_s": 12.0, "world_size": 1, "space": "darts"}
    (run_dir / "search_summary.json").write_text(json.dumps(summary))
    if completed:
        arch.save(run_dir / "arch.json")
    return arch


def write_metrics(run_dir: Path, top1: float, wandb_id: str | None = "abc123") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"top1": top1, "top5": min(1.0, top1 + 0.2), "val_top1": top1, "params": 1000, "macs": 5000,
               "wall_time_s": 36.0, "world_size": 2, "epochs": 2}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    if wandb_id:
        (run_dir / "wandb" / f"offline-run-20261202_010203-{wandb_id}").mkdir(parents=True)


def make_study(tmp_path: Path, **changes) -> Study:
    return Study(study_config(tmp_path, **changes))
