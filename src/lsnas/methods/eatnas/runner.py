"""What ``search.py`` does for ``method=eatnas``: both stages in one journaled search, then the outputs.

    python search.py method=eatnas                                   # source and target: the embedded digits
    python search.py experiment=eatnas_cifar10_imagenet method.source.dataset.root=<dir> dataset.root=<dir>
    python search.py method=eatnas dataset@method.source.dataset=cifar100 dataset=imagenet1k
    python search.py method=eatnas ... hydra.run.dir=<run dir> ckpt_path=last    # resume, in either stage

The run's evaluator (``evaluator=train`` by default; any evaluator) scores each stage: the source stage with
``method.source.evaluator`` merged onto it and the source dataset (``method.source.dataset``, any ``dataset=``
config), the target stage with ``method.target.evaluator`` merged onto it and the run's ``dataset``. Run dir::

    trials.jsonl                 one journal; each trial tagged stage (source | target) and generation
    arch.json                    the best on the target (the answer; search_summary.json, search_trace.png: target)
    seed/arch.json               the best on the source: the seed of the target population
    population_quality.{png,json}  mean, variance and best of the population per generation, both stages
    blocks_seed.png, blocks_final.png   block diagrams of the seed and the answer
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lsnas.data.base import require_data
from lsnas.errors import ConfigError
from lsnas.evaluators.staged import StagedEvaluator
from lsnas.methods.eatnas.strategy import STAGES, ElasticTransfer, block_distance, population_quality
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.methods.multitrial.runner import make_evaluator, run_search
from lsnas.methods.multitrial.strategy import SearchState
from lsnas.spaces import space_from_config
from lsnas.spaces.mbv2 import STRIDES, block_channels
from lsnas.utils.io import atomic_write_json
from lsnas.viz import plot_blocks, plot_population_quality

log = logging.getLogger(__name__)
SEED_DIR = "seed"


def stage_evaluator_settings(cfg: DictConfig, stage: str) -> dict:
    """The run's evaluator settings with the stage's overrides (``method.<stage>.evaluator``) and its data."""
    base = OmegaConf.to_container(cfg.evaluator, resolve=True)
    overrides = cfg.method[stage].get("evaluator")
    overrides = {} if overrides is None else OmegaConf.to_container(overrides, resolve=True)
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ConfigError(f"method.{stage}.evaluator sets {unknown}, which the {cfg.evaluator.name} evaluator does "
                          f"not have (its settings: {sorted(base)})")
    merged = OmegaConf.to_container(OmegaConf.merge(base, overrides), resolve=True)
    if "dataset" in merged:
        dataset = cfg.method.source.dataset if stage == "source" else cfg.dataset
        merged["dataset"] = OmegaConf.to_container(dataset, resolve=True)
    return merged


def make_strategy(cfg: DictConfig) -> ElasticTransfer:
    m = cfg.method
    source = instantiate(m.source.strategy, num_trials=m.source.num_trials, _convert_="all")
    target = instantiate(m.target.strategy, num_trials=m.target.num_trials, _convert_="all")
    return ElasticTransfer(source, target, converge_tol=m.source.get("converge_tol"))


def quality(state: SearchState, strategy: ElasticTransfer) -> list:
    return [g for stage, evolution in zip(STAGES, (strategy.source, strategy.target))
            for g in population_quality(state.where(stage=stage), evolution.population_size, stage)]


def stage_data(cfg: DictConfig, evaluators: dict) -> dict[str, str | None]:
    """The dataset each stage's scores come from (None: a synthetic objective read none)."""
    names = {"source": cfg.method.source.dataset.name, "target": cfg.dataset.name}
    return {stage: names[stage] if evaluators[stage].reads_data else None for stage in STAGES}


def data_text(data: dict[str, str | None]) -> str:
    if not any(data.values()):
        return "synthetic objectives (no data)"
    return " -> ".join(name or "a synthetic objective" for name in (data["source"], data["target"]))


def write_outputs(cfg: DictConfig, run_dir: Path, state: SearchState, strategy: ElasticTransfer,
                  data: dict[str, str | None]) -> dict:
    generations = quality(state, strategy)
    atomic_write_json(run_dir / "population_quality.json", [asdict(g) for g in generations])
    if generations:
        plot_population_quality(generations, run_dir / "population_quality.png",
                                title=f"EAT-NAS population quality: {data_text(data)}")
    summary_path = run_dir / "search_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    seed, best = strategy.seed(state), state.where(stage="target").best()
    stages = {}
    for stage, (trial, dataset) in zip(STAGES, ((seed, data["source"]), (best, data["target"]))):
        view = state.where(stage=stage)
        stages[stage] = {"dataset": dataset, "trials": view.num_asked, "complete": len(view.completed()),
                         "stop": (strategy.source_stop(state) or "budget") if stage == "source" else None,
                         "best_trial": trial.k if trial else None, "best_score": trial.score if trial else None,
                         "generations": sum(g.stage == stage for g in generations)}
        if trial is not None:
            name, directory = ("seed", run_dir / SEED_DIR) if stage == "source" else ("final", run_dir)
            if stage == "source":
                trial.arch.save(directory / "arch.json")
            plot_blocks(trial.arch.genotype, block_channels(trial.arch.genotype), list(STRIDES),
                        run_dir / f"blocks_{name}.png",
                        title=f"{name}: trial {trial.k}, {stage} ({dataset or 'synthetic objective'}) score "
                              f"{trial.score:.4f}")
    summary["stages"] = stages
    if seed is not None and best is not None:
        summary["final_distance_from_seed"] = block_distance(best.arch, seed.arch)
    atomic_write_json(summary_path, summary)
    return summary


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    if not cfg.get("evaluator"):
        raise ConfigError("method=eatnas needs an evaluator (setting: evaluator=train|train_job|proxy|synthetic)")
    space = space_from_config(cfg.space)
    strategy = make_strategy(cfg)
    evaluators, execution, settings = {}, None, {}
    for stage in STAGES:
        settings[stage] = stage_evaluator_settings(cfg, stage)
        evaluators[stage], execution = make_evaluator(settings[stage])
    if evaluators["source"].reads_data and "dataset" in settings["source"]:
        require_data(OmegaConf.to_container(cfg.method.source.dataset, resolve=True), "method.source.dataset")
    data = stage_data(cfg, evaluators)
    log.info("EAT-NAS: stage 1 on %s (%d trials), stage 2 on %s (%d trials)",
             data["source"] or "a synthetic objective", cfg.method.source.num_trials,
             data["target"] or "a synthetic objective", cfg.method.target.num_trials)
    state = None
    try:
        state = run_search(cfg, run_dir, space, strategy, StagedEvaluator(evaluators), execution,
                           title=f"eatnas: {data_text(data)}", scope={"stage": "target"})
    finally:
        if state is None:  # stopped early: the outputs of what the journal holds
            if (run_dir / "trials.jsonl").exists():
                with Journal(run_dir) as journal:
                    state = SearchState(TrialLog.replay(journal.read()), space)
        if state is not None:
            write_outputs(cfg, run_dir, state, strategy, data)
    return json.loads((run_dir / "search_summary.json").read_text())
