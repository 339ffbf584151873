"""A tidy table with known answers: for the tests, the notebook, and trying a report out without running a study.

Each search run's architecture has a quality q ~ N(0, 1) that carries over to every target (``arch_sd`` points
per unit); a method adds ``method_effects[method]`` points everywhere (or, given a dict, on each target
its entry: a method that differs on one target only); a target protocol adds
``protocol_effects[(target, protocol)]`` points; every training adds N(0, ``noise``) points.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from lsnas.analysis.collect import COLUMNS, add_source_accuracy
from lsnas.analysis.study import NO_SOURCE


def make_table(method_effects: dict[str, float | dict[str, float]] | None = None,
               sources=("cifar10", "proxy_a", "proxy_b"), seeds: int = 4, targets: dict[str, float] | None = None,
               protocols=("plain", "darts"), protocol_effects: dict[tuple[str, str], float] | None = None,
               source_free=("random_sample",), arch_sd: float = 1.0, noise: float = 0.3, seed: int = 0,
               study: str = "synthetic") -> pd.DataFrame:
    method_effects = method_effects if method_effects is not None else {
        "darts": 0.0, "pcdarts": 0.0, "gdas": 0.0, "random": 0.0, "random_sample": -3.0}
    targets = targets if targets is not None else {"big": 40.0, "cifar10": 80.0}
    protocol_effects = protocol_effects if protocol_effects is not None else {("cifar10", "darts"): 2.0}
    rng = np.random.default_rng(seed)
    rows = []
    for method, effect in method_effects.items():
        searched = method not in source_free
        for source in sources if searched else [NO_SOURCE]:
            for k in range(seeds):
                quality = rng.normal()
                search_dir = f"search/{method}/{source}/tiny/seed{k}"
                search = {"study": study, "method": method, "source": source, "search_protocol": "tiny", "seed": k,
                          "status": "complete", "stage": "transfer", "space": "darts",
                          "search_score": 50 + quality if searched else None,
                          "search_wall_s": 100.0 if searched else 0.0, "search_device_hours": 0.03 if searched else 0.0,
                          "arch_digest": hashlib.sha256(search_dir.encode()).hexdigest()[:16],
                          "params": 3.3e6 + 1e5 * quality, "macs": 5.3e8, "search_dir": search_dir}
                for target, base in targets.items():
                    shift = effect.get(target, 0.0) if isinstance(effect, dict) else effect
                    for protocol in protocols:
                        top1 = (base + shift + arch_sd * quality + protocol_effects.get((target, protocol), 0.0)
                                + rng.normal(0, noise))
                        rows.append({**search, "target": target, "target_protocol": protocol, "target_top1": top1,
                                     "target_top5": min(100.0, top1 + 20), "target_val_top1": top1,
                                     "train_wall_s": 60.0, "train_device_hours": 60 / 3600, "epochs": 2,
                                     "transfer_dir": f"transfer/{search_dir[7:]}/{target}/{protocol}"})
    return add_source_accuracy(pd.DataFrame(rows).reindex(columns=list(COLUMNS)))
