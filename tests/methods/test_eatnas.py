"""EAT-NAS: the offspring generator, population quality, the two stages in one journal, resume in either stage,
and the method end to end from its config (synthetic objectives; one slow run with real training on digits)."""

import json
import random

import pytest

from lsnas.arch import Architecture
from lsnas.data import DataNotFoundError
from lsnas.errors import ConfigError
from lsnas.evaluators import StagedEvaluator, SyntheticEvaluator
from lsnas.methods.eatnas import ElasticTransfer, OffspringGenerator, SourceEvolution, TargetEvolution
from lsnas.methods.eatnas.runner import search, stage_evaluator_settings
from lsnas.methods.eatnas.strategy import block_distance, converged, population_quality
from lsnas.methods.multitrial.executors import InProcessExecutor
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.methods.multitrial.loop import SearchLoop
from lsnas.methods.multitrial.strategy import SearchState
from lsnas.spaces.mbv2 import DECISIONS, MBV2BlockSpace
from tests.helpers.config import compose_config

SPACE = MBV2BlockSpace()
PROBABILITIES = {key: 0.2 for key in DECISIONS}


def strategy(source_trials=12, target_trials=12, population=4, converge_tol=None, max_distance=3):
    offspring = OffspringGenerator(PROBABILITIES, max_distance=max_distance)
    return ElasticTransfer(
        SourceEvolution(source_trials, population, 2, mutate=list(DECISIONS)),
        TargetEvolution(target_trials, population, 2, offspring, mutate=["op", "kernel", "skip"]),
        converge_tol=converge_tol)


def evaluator():
    stages = {"source": SyntheticEvaluator(target_seed=1, objective="smooth", width=0.5),
              "target": SyntheticEvaluator(target_seed=2, objective="smooth", width=0.5)}
    return StagedEvaluator(stages)


def run(run_dir, strat, seed=0, scope=None) -> SearchState:
    with Journal(run_dir) as journal:
        state = SearchState(TrialLog.replay(journal.read()), SPACE)
        SearchLoop(journal, state, strat, evaluator(), InProcessExecutor(), seed, scope=scope).run()
    return state


def asked(state):
    return [(t.k, t.arch.digest, t.tags, t.score) for t in state.trials]


def test_the_offspring_population_lies_within_the_configured_distance_of_the_seed():
    seed = SPACE.sample(random.Random(0))
    generator = OffspringGenerator(PROBABILITIES, max_distance=3)
    rng = random.Random(1)
    distances = [block_distance(generator(seed, SPACE, rng), seed) for _ in range(300)]
    assert min(distances) >= 1 and max(distances) == 3  # never the seed itself; the cap is reached, not passed
    only_kernels = OffspringGenerator({"kernel": 1.0}, max_distance=7)
    child = only_kernels(seed, SPACE, rng)
    for a, b in zip(seed.genotype["blocks"], child.genotype["blocks"]):
        assert {k for k in DECISIONS if a[k] != b[k]} == {"kernel"}  # every block moved, one step
        assert abs(DECISIONS["kernel"].index(a["kernel"]) - DECISIONS["kernel"].index(b["kernel"])) == 1
    with pytest.raises(ConfigError, match="probabilities"):
        OffspringGenerator({"stride": 0.5})


def _hand_made_log(scores_by_stage: dict[str, list[float | None]]) -> TrialLog:
    events, k = [], 0
    rng = random.Random(0)
    for stage, scores in scores_by_stage.items():
        for score in scores:
            arch = SPACE.sample(rng)
            events.append({"event": "ask", "k": k, "arch": arch.to_dict(), "digest": arch.digest, "fingerprint": stage,
                           "tags": {"stage": stage}})
            if score is not None:
                events.append({"event": "result", "k": k, "status": "complete", "score": score})
            else:
                events.append({"event": "result", "k": k, "status": "failed", "error": "boom"})
            k += 1
    return TrialLog.replay(events)


def test_population_quality_on_a_hand_made_population():
    # populations of 3; generation 1 has a failed trial, which never joins the population
    state = SearchState(_hand_made_log({"source": [0.1, 0.2, 0.3, 0.5, None, 0.7, 0.6],
                                        "target": [0.4, 0.4, 0.4]}), SPACE)
    source = population_quality(state.where(stage="source"), 3, "source")
    assert [(g.index, g.size, g.complete) for g in source] == [(0, 3, True), (1, 3, True), (2, 3, False)]
    assert source[0].mean == pytest.approx(0.2) and source[0].var == pytest.approx(0.02 / 3)
    assert source[1].mean == pytest.approx((0.3 + 0.5 + 0.7) / 3)  # the last 3 complete: aging dropped 0.1, 0.2
    assert source[1].best == 0.7 and source[1].std == pytest.approx(((0.04 + 0 + 0.04) / 3) ** 0.5)
    assert source[2].mean == pytest.approx((0.5 + 0.7 + 0.6) / 3)
    target = population_quality(state.where(stage="target"), 3, "target")
    assert [(g.mean, g.var) for g in target] == [(pytest.approx(0.4), pytest.approx(0.0))]
    assert converged(source, tol=0.5) and not converged(source, tol=0.2)  # means 0.2 -> 0.5 over complete ones
    assert not converged(source, tol=None)


def test_two_stages_in_one_journal_seed_and_offspring(tmp_path):
    state = run(tmp_path, strategy())
    trials = state.trials
    assert [t.tags["stage"] for t in trials] == ["source"] * 12 + ["target"] * 12
    assert [t.tags["generation"] for t in trials[:12]] == [0] * 4 + [1] * 4 + [2] * 4
    fingerprints = {t.ask["fingerprint"] for t in trials[:12]}, {t.ask["fingerprint"] for t in trials[12:]}
    assert len(fingerprints[0]) == len(fingerprints[1]) == 1 and fingerprints[0] != fingerprints[1]
    seed = state.where(stage="source").best()
    first = trials[12]
    assert first.tags["origin"] == "seed" and first.arch == seed.arch  # the seed is evaluated on the target
    assert first.score != seed.score  # ... anew: not answered from its stage-1 result
    for t in trials[13:16]:
        assert t.tags["origin"] == "offspring" and 1 <= block_distance(t.arch, seed.arch) <= 3
    for t in trials[16:]:
        parent = state.trial(t.tags["parent"])
        assert parent.tags["stage"] == "target"
        changed = [key for a, b in zip(parent.arch.genotype["blocks"], t.arch.genotype["blocks"])
                   for key in DECISIONS if a[key] != b[key]]
        assert len(changed) == 1  # one move: op, kernel or skip, or one scale step
    best = state.where(stage="target").best()
    assert best.tags["stage"] == "target" and best.score >= first.score


@pytest.mark.parametrize("cut", [7, 30])  # events kept: mid stage 1, mid stage 2
def test_a_killed_run_resumes_in_either_stage_as_if_uninterrupted(tmp_path, cut):
    whole = run(tmp_path / "whole", strategy())
    run(tmp_path / "parts", strategy())
    journal = tmp_path / "parts" / "trials.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:cut]))  # the driver died here
    stopped = TrialLog.replay([json.loads(line) for line in lines[:cut]])
    stage = {a["tags"]["stage"] for a in stopped.asks.values()}
    assert stage == ({"source"} if cut == 7 else {"source", "target"})
    resumed = run(tmp_path / "parts", strategy())
    assert asked(resumed) == asked(whole)


def test_stage_one_ends_when_its_population_converged(tmp_path, caplog):
    transfer = strategy(source_trials=40, converge_tol=1.0)  # any generation converges
    with caplog.at_level("INFO"):
        state = run(tmp_path, transfer)
    source = state.where(stage="source")
    assert source.num_asked == 8 and state.where(stage="target").num_asked == 12
    assert "stage 1 (source) stops after 8 trials: converged" in caplog.text
    assert transfer.source_stop(state).startswith("converged: the population's mean rose by")
    assert strategy(source_trials=40).source_stop(state) is None  # converge_tol=None: the budget decides
    assert compose_config("search", "method=eatnas", "budget=full").method.source.converge_tol == 0.002  # on


def test_each_stage_gets_its_dataset_and_evaluator_overrides():
    cfg = compose_config("search", "method=eatnas", "logger=none", "+method.source.evaluator.epochs=2",
                         "dataset@method.source.dataset=cifar100")
    source, target = stage_evaluator_settings(cfg, "source"), stage_evaluator_settings(cfg, "target")
    assert (source["dataset"]["name"], target["dataset"]["name"]) == ("cifar100", "digits")
    assert (source["epochs"], target["epochs"]) == (2, None)
    paper = compose_config("search", "experiment=eatnas_cifar10_imagenet", "logger=none")
    assert (paper.method.source.dataset.name, paper.dataset.name) == ("cifar10", "imagenet1k")
    bare = compose_config("search", "method=eatnas", "logger=none")  # runs anywhere: the embedded digits twice
    assert (bare.method.source.dataset.name, bare.dataset.name) == ("digits", "digits")
    bad = compose_config("search", "method=eatnas", "logger=none", "+method.target.evaluator.epoch=2")
    with pytest.raises(ConfigError, match="epoch"):
        stage_evaluator_settings(bad, "target")


def _synthetic_cfg(*overrides):
    return compose_config("search", "method=eatnas", "logger=none", "evaluator=synthetic",
                          "evaluator.objective=smooth", "+method.source.evaluator.target_seed=1", *overrides)


def test_the_method_writes_the_seed_the_answer_and_the_plots(tmp_path):
    summary = search(_synthetic_cfg(), tmp_path)
    log = TrialLog.replay([json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()])
    state = SearchState(log, SPACE)
    seed, best = state.where(stage="source").best(), state.where(stage="target").best()
    assert Architecture.load(tmp_path / "seed" / "arch.json") == seed.arch
    assert Architecture.load(tmp_path / "arch.json") == best.arch
    assert summary["best_trial"] == best.k and summary["stages"]["source"]["best_trial"] == seed.k
    assert summary["stages"]["target"]["trials"] == 8 and summary["stages"]["source"]["dataset"] is None
    for name in ("population_quality.png", "blocks_seed.png", "blocks_final.png", "search_trace.png"):
        assert (tmp_path / name).stat().st_size > 0
    quality = json.loads((tmp_path / "population_quality.json").read_text())
    assert {(g["stage"], g["index"]) for g in quality} == {(s, i) for s in ("source", "target") for i in (0, 1)}
    # raising a stage's budget on resume goes on from where the run stopped
    more = search(_synthetic_cfg("method.target.num_trials=12", "ckpt_path=last"), tmp_path)
    assert more["stages"]["target"]["trials"] == 12 and more["stages"]["source"]["trials"] == 8


def test_the_method_refuses_another_space(tmp_path):
    with pytest.raises(ConfigError, match="mbv2_blocks"):
        search(_synthetic_cfg("space=resnet"), tmp_path)


@pytest.mark.slow
def test_real_training_on_two_datasets_then_train_py(tmp_path):
    from tests.test_search_cli import run as run_cli

    run_cli("search.py", "method=eatnas", "dataset=digits", "dataset@method.source.dataset=digits",
            "method.source.dataset.val_fraction=0.3", "method.source.num_trials=2", "method.target.num_trials=2",
            "method.source.strategy.population_size=2", "method.target.strategy.population_size=2",
            "method.source.strategy.sample_size=1", "method.target.strategy.sample_size=1", "protocol.epochs=1",
            "protocol.trainer.limit_train_batches=2", "protocol.trainer.limit_val_batches=1", "logger=none",
            f"hydra.run.dir={tmp_path}")
    log = TrialLog.replay([json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()])
    assert [a["tags"]["stage"] for a in log.asks.values()] == ["source"] * 2 + ["target"] * 2
    assert all(r["status"] == "complete" for r in log.results.values())
    assert Architecture.from_dict(json.loads((tmp_path / "arch.json").read_text())).space == "mbv2_blocks"
    run_cli("train.py", f"arch={tmp_path / 'arch.json'}", "dataset=digits", "protocol=quick", "protocol.epochs=1",
            "protocol.trainer.limit_train_batches=2", "protocol.trainer.limit_val_batches=1", "logger=none",
            f"hydra.run.dir={tmp_path / 'train'}")
    assert json.loads((tmp_path / "train" / "metrics.json").read_text())


def test_the_progress_line_shows_the_best_of_the_answer_stage(tmp_path, caplog):
    with caplog.at_level("INFO", logger="lsnas.methods.multitrial.loop"):
        state = run(tmp_path, strategy(source_trials=4, target_trials=4), scope={"stage": "target"})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trial ")]
    best = state.where(stage="target").best()
    assert f"best {best.score:.4f} (trial {best.k})" in lines[-1]
    assert "best - (trial -)" in lines[0]  # no target trial yet while stage 1 runs


def test_missing_source_data_is_named_by_its_own_setting(tmp_path):
    cfg = compose_config("search", "method=eatnas", "logger=none", "dataset@method.source.dataset=cifar10",
                         f"method.source.dataset.root={tmp_path}/absent", "method.source.dataset.download=false")
    with pytest.raises(DataNotFoundError, match=r"method\.source\.dataset\.root=") as error:
        search(cfg, tmp_path / "run")
    assert "run again with dataset.root" not in str(error.value)
    assert not (tmp_path / "run" / "trials.jsonl").exists()  # refused at start-up, before any trial
