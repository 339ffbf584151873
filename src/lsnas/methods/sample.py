"""Random sampling: one architecture drawn uniformly from the space, with no evaluation at all.

NASTransfer's (Panda et al., AAAI 2021) random-sampling baseline: the found architecture is a uniform
sample, so whatever a search method adds must show on the target against it. No data is read. The draw is
random search's first candidate under the same seed (the loop's RNG for trial 0), so ``method=random_sample
seed=s`` is what ``method=random seed=s`` would have tried first.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from lsnas.arch import ARCH_FILENAME
from lsnas.methods import print_train_command
from lsnas.methods.multitrial.loop import trial_rng
from lsnas.spaces import space_from_config
from lsnas.utils.io import atomic_write_json


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    space = space_from_config(cfg.space)
    arch = space.sample(trial_rng(cfg.seed, 0))
    summary = {"method": cfg.method.name, "space": cfg.space.name, "dataset": None, "seed": cfg.seed,
               "genotype": arch.genotype, "arch_digest": arch.digest, "best_score": None,
               "wall_time_s": 0.0, "completed": True, "note": "sampled uniformly; no data read, nothing evaluated"}
    arch.save(run_dir / ARCH_FILENAME)
    atomic_write_json(run_dir / "search_summary.json", summary)
    print_train_command(cfg, run_dir / ARCH_FILENAME)
    return summary
