"""Random search over sparse networks against the dense parent and random masks (``method=sparse_random``).

Farahani ("Random Search as a Baseline for Sparse Neural Network Architecture Search", 2024). For each
sparsity in ``method.sparsities``, ``method.num_trials`` masks of the parent (``space=sparse``) are sampled and
scored by ``method.scorer`` (a short training by default; a proxy evaluator works too). The best of them, the
*searched* mask, is trained fully by the run's evaluator (``evaluator=train_test``: the protocol's epochs, then
the test split), and so are ``method.num_random`` other *random* masks of the same sparsity and the *dense*
parent, each with every training seed of ``method.seeds``. All of them start from the parent's initial weights
at their kept nodes (``space.init_seed``), so seeds vary the data order, not the initialisation the masks were
searched for. Then the report (``lsnas.methods.sparse.report``). Run dir::

    dense/seed_<t>/              the dense parent trained with seed t
    sparsity_<s>/search/         the random search of the masks at sparsity s (its own journal, trace, arch.json)
    sparsity_<s>/seed_<t>/       the searched and the random masks trained with seed t
    sparse_study.{md,csv}, sparse_summary.csv, accuracy_vs_sparsity.png, convergence.png

Every part is a journaled search of its own, so an interrupted study resumes where it stopped
(``hydra.run.dir=<run dir> ckpt_path=last``).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.evaluators.base import Evaluator
from lsnas.methods.multitrial.loop import SearchFailedError
from lsnas.methods.multitrial.random_search import RandomSearch
from lsnas.methods.multitrial.runner import make_evaluator, run_search, search_config
from lsnas.methods.multitrial.two_stage import RankedList
from lsnas.methods.sparse.report import write_report
from lsnas.spaces import space_from_config
from lsnas.spaces.sparse import SparseSpace

log = logging.getLogger(__name__)


def sparsity_dir(sparsity: float) -> str:
    return f"sparsity_{sparsity:g}"


def check_settings(cfg: DictConfig, space) -> None:
    m = cfg.method
    if not isinstance(space, SparseSpace):
        raise ConfigError(f"method=sparse_random searches node masks (space=sparse or sparse_conv), not the "
                          f"{space.name!r} space")
    if not m.sparsities or not all(0 < s < 1 for s in m.sparsities):
        raise ConfigError(f"method.sparsities are fractions of nodes removed, in (0, 1); got {list(m.sparsities)}")
    if not m.seeds or m.num_trials < 1 or m.num_random < 1:
        raise ConfigError("method.seeds needs at least one training seed, method.num_trials (masks searched) and "
                          f"method.num_random (random masks trained) at least 1; got {list(m.seeds)}, "
                          f"{m.num_trials}, {m.num_random}")


def random_masks(space: SparseSpace, count: int, seed: int, exclude: set[str]) -> list[Architecture]:
    """``count`` distinct masks at the space's sparsity, none of the searched ones (a stream of its own, so
    they do not depend on how the search went)."""
    rng = random.Random(f"sparse-random-masks/{seed}/{space.sparsity:g}")
    masks: dict[str, Architecture] = {}
    for _ in range(1000 * count):
        arch = space.sample(rng)
        if arch.digest not in exclude:
            masks.setdefault(arch.digest, arch)
        if len(masks) == count:
            return list(masks.values())
    raise ConfigError(f"only {len(masks)} masks at sparsity {space.sparsity:g} other than the searched ones; "
                      "lower method.num_random")


def with_seed(cfg: DictConfig, seed: int) -> DictConfig:
    """The run's config with another training seed (what the trials' TrialContext.seed is)."""
    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(copy):
        copy.seed = int(seed)
    return copy


class Study:
    def __init__(self, cfg: DictConfig, run_dir: Path):
        self.cfg, self.run_dir = cfg, run_dir
        self.space = space_from_config(cfg.space)
        check_settings(cfg, self.space)
        self.scorer, _ = make_evaluator(cfg.method.scorer)
        self.trainer, self.execution = make_evaluator(cfg.evaluator)
        self.config = search_config(cfg)  # what a resume of any part must match

    def train_all(self, run_dir: Path, space: SparseSpace, entries: list[tuple[Architecture, dict]], seed: int,
                  title: str) -> None:
        run_search(with_seed(self.cfg, seed), run_dir, space, RankedList(len(entries), entries), self.trainer,
                   self.execution, config=self.config, title=title, write_arch=False)

    def search_masks(self, space: SparseSpace, run_dir: Path, evaluator: Evaluator):
        title = f"sparsity {space.sparsity:g}: {self.cfg.method.num_trials} masks scored"
        state = run_search(self.cfg, run_dir, space, RandomSearch(self.cfg.method.num_trials), evaluator,
                           self.execution, config=self.config, title=title)
        best = state.best()
        if best is None:
            raise SearchFailedError(f"no mask at sparsity {space.sparsity:g} could be scored; see "
                                    f"{run_dir}/trials.jsonl")
        return best, state.seen()

    def run(self) -> dict:
        m = self.cfg.method
        for seed in m.seeds:
            self.train_all(self.run_dir / "dense" / f"seed_{seed}", self.space,
                           [(self.space.dense(), {"role": "dense", "sparsity": 0.0})], seed,
                           f"the dense parent, seed {seed}")
        for sparsity in m.sparsities:
            level = self.space.at_sparsity(sparsity)
            level_dir = self.run_dir / sparsity_dir(sparsity)
            best, seen = self.search_masks(level, level_dir / "search", self.scorer)
            entries = [(best.arch, {"role": "searched", "sparsity": sparsity, "search_trial": best.k,
                                    "search_score": best.score})]
            entries += [(arch, {"role": "random", "sparsity": sparsity, "index": i})
                        for i, arch in enumerate(random_masks(level, m.num_random, self.cfg.seed, seen))]
            for seed in m.seeds:
                self.train_all(level_dir / f"seed_{seed}", level, entries, seed,
                               f"sparsity {sparsity:g}: searched + {m.num_random} random masks, seed {seed}")
        report = m.report
        return write_report(self.run_dir, target=report.target, target_fraction=report.target_fraction,
                            alpha=report.alpha)


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    return Study(cfg, Path(run_dir)).run()
