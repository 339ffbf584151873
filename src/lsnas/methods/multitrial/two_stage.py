"""Two-stage search (``method=two_stage``): rank M sampled candidates by a proxy, train only the top k.

Stage 1 is a multi-trial search of its own in ``<run dir>/ranking`` (its journal, trace and summary): the
method's strategy proposes ``method.num_candidates`` architectures and the proxy evaluator (settings:
``proxy=``) scores them. Stage 2, in the run dir itself, trains the ``method.num_trials`` best by the
run's evaluator (``evaluator=train`` by default), best first. Both stages are journaled, so an interrupted
run resumes where it stopped (``ckpt_path=last``); raising ``method.num_trials`` on resume trains the next
candidates of the ranking. A candidate that fails in stage 2 is not replaced by the next one.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods.multitrial.loop import SearchFailedError
from lsnas.methods.multitrial.runner import make_evaluator, run_search, search_config
from lsnas.methods.multitrial.strategy import DONE, Proposal, SearchState, Strategy
from lsnas.spaces import space_from_config

log = logging.getLogger(__name__)
RANKING_DIR = "ranking"


class RankedList(Strategy):
    """Proposes the given architectures in order, each once (``num_trials`` of them at most)."""

    requires = ()

    def __init__(self, num_trials: int, ranked: list[tuple[Architecture, dict]]):
        super().__init__(num_trials)
        self.ranked = ranked

    def ask(self, state: SearchState, rng: random.Random):
        if not self.budget_left(state):
            return DONE
        seen = state.seen()
        return next((Proposal(arch, tags) for arch, tags in self.ranked if arch.digest not in seen), DONE)


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    if not cfg.get("evaluator") or not cfg.method.get("ranker"):
        raise ConfigError("method=two_stage needs an evaluator for stage 2 (evaluator=train|train_job) and "
                          "method.ranker for stage 1")
    if cfg.method.num_trials > cfg.method.num_candidates:
        raise ConfigError(f"method.num_trials={cfg.method.num_trials} (trained) exceeds method.num_candidates="
                          f"{cfg.method.num_candidates} (ranked)")
    space = space_from_config(cfg.space)
    ranker, _ = make_evaluator(cfg.method.ranker)
    trainer, execution = make_evaluator(cfg.evaluator)
    config = search_config(cfg)
    proposer = instantiate(cfg.method.strategy, num_trials=cfg.method.num_candidates)
    ranking = run_search(cfg, run_dir / RANKING_DIR, space, proposer, ranker, execution, config=config,
                         title=f"stage 1: {cfg.method.num_candidates} candidates ranked by {cfg.proxy.name}")
    ranked = sorted(ranking.completed(), key=lambda t: (-t.score, t.k))
    if not ranked:
        raise SearchFailedError(f"no candidate of stage 1 could be scored; see {run_dir / RANKING_DIR}/trials.jsonl")
    log.info("stage 2: training the top %d of %d ranked candidates", cfg.method.num_trials, len(ranked))
    top = [(t.arch, {"rank": i + 1, "ranking_trial": t.k, "proxy_score": t.score}) for i, t in enumerate(ranked)]
    run_search(cfg, run_dir, space, RankedList(cfg.method.num_trials, top), trainer, execution, config=config,
               title=f"stage 2: the top {cfg.method.num_trials} trained")
    return json.loads((run_dir / "search_summary.json").read_text())
