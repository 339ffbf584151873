"""Proxies in searches: the proxy/ configs, rank combinations, few-step proxies, the two-stage method and the
proxy-quality study with its report."""

import json
import math
import random
import re

import numpy as np
import pytest
import torch
from scipy import stats

from lsnas.errors import ConfigError
from lsnas.evaluators import ProxyMeasurement, TrialContext
from lsnas.methods import search
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.methods.multitrial.strategy import SearchState
from lsnas.proxies import PROXIES
from lsnas.proxies.combine import RankCombination, check_weights, rank_combination
from lsnas.proxies.quality import correlation, study_table, write_report
from lsnas.spaces import get_space, known_spaces
from lsnas.spaces.sparse import SparseSpace
from tests.helpers.config import compose_config, options

TINY = ("dataset.resolution=8", "protocol.model.layers=3", "protocol.model.init_channels=4", "logger=none")


def journal_results(run_dir) -> dict[int, dict]:
    return TrialLog.replay(Journal(run_dir).read()).results


# -- rank combination -------------------------------------------------------------------------------
def test_rank_combination_averages_rank_percentiles_in_each_proxys_direction():
    values = [{"naswot": 1.0, "ntk_cond": 10.0}, {"naswot": 3.0, "ntk_cond": 30.0}, {"naswot": 2.0, "ntk_cond": 5.0}]
    # naswot (higher better) ranks 1,3,2; ntk_cond (lower better) ranks 2,1,3 (of 3)
    assert rank_combination(values, {"naswot": 1.0, "ntk_cond": 1.0}) == pytest.approx([1.5 / 3, 2 / 3, 2.5 / 3])
    assert rank_combination(values, {"naswot": 3.0, "ntk_cond": 1.0}) == pytest.approx(
        [(3 * 1 + 2) / 12, (3 * 3 + 1) / 12, (3 * 2 + 3) / 12])


def test_a_nan_value_ranks_last_and_ties_share_their_rank():
    values = [{"lga": math.nan}, {"lga": 0.5}, {"lga": 0.5}]
    assert rank_combination(values, {"lga": 1.0}) == pytest.approx([1 / 3, 2.5 / 3, 2.5 / 3])


@pytest.mark.parametrize("measure, weights, message", [
    ([], None, "proxy.measure is empty"), (["lga", "lga"], None, "twice"), (["lga"], [1, 2], "2 entries"),
    (["lga"], [0], "positive"), (["nope"], None, "unknown proxy 'nope'")])
def test_proxy_settings_errors_name_the_setting(measure, weights, message):
    with pytest.raises(ConfigError, match=message):
        check_weights(measure, weights)


def test_the_rank_index_kept_up_to_date_equals_ranking_everything_again():
    """Candidates added one by one at random positions (results arrive out of order of k), with ties, NaN and
    infinities: after every addition each score equals rank_combination over all of them in position order, to
    the bit, and the best is its first maximum."""
    rng = np.random.default_rng(0)
    combination = RankCombination({"naswot": 2.0, "ntk_cond": 1.0, "lga": 0.5}, key="{}")
    index, rows = combination.index(), []
    for _ in range(60):
        row = {name: float(rng.choice([rng.integers(0, 6), math.nan, math.inf, -math.inf], p=[0.85, 0.05, 0.05, 0.05]))
               for name in combination.weights}  # few distinct values: many ties
        position = int(rng.integers(0, len(rows) + 1))
        rows.insert(position, {"metrics": row})
        index.insert(position, combination.signed({"metrics": row}))
        expected = combination(rows)
        assert index.scores().tolist() == expected
        assert [index.score(i) for i in range(len(rows))] == expected
        assert index.best() == int(np.argmax(expected))
    assert len(set(expected)) < len(expected)  # the ties were there


def test_a_relative_objective_search_state_scores_trials_as_ranking_them_all_would():
    """SearchState with a rank combination, results arriving out of order of k in batches (one by one, and more at
    once than it adds one by one, as a resume's replay), failures among them: the scores and the best of the state,
    of views of two tagged groups, and of a state replayed from scratch all equal rank_combination over the complete
    results (of the group) in order of k."""
    log, space = TrialLog(), get_space("darts")
    combination = RankCombination({"naswot": 1.0, "ntk_cond": 1.0})
    state = SearchState(log, space, objective=combination)
    rng = random.Random(0)
    for k in range(300):
        arch = space.sample(random.Random(k))
        log.apply({"event": "ask", "k": k, "arch": arch.to_dict(), "digest": arch.digest, "fingerprint": "f",
                   "tags": {"group": k % 2}})
    order = rng.sample(range(300), 300)
    for size in (1, 1, 5, 1, 100, 2, 150, 40):  # 100 and 150: ranked all at once
        for k in order[:size]:
            status = "failed" if k % 7 == 6 else "complete"
            metrics = {"proxy/naswot": float(rng.randint(0, 9)), "proxy/ntk_cond": float(rng.randint(0, 9))}
            log.apply({"event": "result", "k": k, "status": status, "score": 0.0, "metrics": metrics})
        order = order[size:]
        for view, group in ((state, None), (state.where(group=0), 0), (state.where(group=1), 1),
                            (SearchState(log, space, objective=combination), None)):
            done = sorted(j for j, r in log.results.items()
                          if r["status"] == "complete" and group in (None, log.asks[j]["tags"]["group"]))
            expected = combination([log.results[j] for j in done])
            assert [t.k for t in view.completed()] == done and [t.score for t in view.completed()] == expected
            best = view.best()
            if done:
                assert best.k == done[int(np.argmax(expected))]
            else:
                assert best is None
    assert state.where() is state


def test_a_rank_combination_ranks_missing_nan_and_infinite_values_last():
    combination = RankCombination({"naswot": 1.0}, key="{}")
    results = [{"metrics": {"naswot": v}} for v in (2.0, math.nan, None, math.inf, 1.0)] + [{"metrics": {}}]
    assert combination(results) == pytest.approx([6 / 6, 2.5 / 6, 2.5 / 6, 2.5 / 6, 5 / 6, 2.5 / 6])


def test_the_search_state_ranks_by_the_objective_as_results_come_in():
    log = TrialLog()
    state = SearchState(log, get_space("darts"), objective=RankCombination({"lga": 1.0}, key="{}"))
    space = get_space("darts")
    for k, value in enumerate([0.2, 0.9]):
        arch = space.sample(random.Random(k))
        log.apply({"event": "ask", "k": k, "arch": arch.to_dict(), "digest": arch.digest, "fingerprint": "f"})
        log.apply({"event": "result", "k": k, "status": "complete", "score": 0.0, "metrics": {"lga": value}})
    assert state.best().k == 1 and [t.score for t in state.completed()] == [0.5, 1.0]
    arch = space.sample(random.Random(2))
    log.apply({"event": "ask", "k": 2, "arch": arch.to_dict(), "digest": arch.digest, "fingerprint": "f"})
    log.apply({"event": "result", "k": 2, "status": "complete", "score": 0.0, "metrics": {"lga": 0.5}})
    assert [t.score for t in state.completed()] == pytest.approx([1 / 3, 1.0, 2 / 3])


# -- configs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in options("proxy") if not n.startswith("_") and n != "none"])
def test_every_proxy_config_builds_a_measurement(name):
    cfg = compose_config("search", "method=random", "evaluator=proxy", f"proxy={name}")
    measurement = ProxyMeasurement(**cfg.proxy)
    assert set(measurement.names) <= set(PROXIES.names()) and measurement.name == name
    assert measurement.trains == (name == "lga_trained")


def test_lists_replace_the_measured_proxies_on_the_command_line():
    cfg = compose_config("search", "method=random", "evaluator=proxy", "proxy.measure=[naswot,synflow]",
                         "proxy.weights=[2,1]")
    assert ProxyMeasurement(**cfg.proxy).weights == {"naswot": 2.0, "synflow": 1.0}


def test_ntk_rows_per_pass_is_checked_and_leaves_the_fingerprint_alone():
    """It changes how the kernel is computed, not its value, so journals measured either way resume together."""
    cfg = compose_config("search", "method=random", "evaluator=proxy", "proxy=lga")
    default = ProxyMeasurement(**cfg.proxy)
    batched = ProxyMeasurement(**{**cfg.proxy, "ntk_rows_per_pass": 8})
    assert default.ntk_rows_per_pass == 1 and batched.ntk_rows_per_pass == 8
    assert batched.settings() == default.settings()
    with pytest.raises(ConfigError, match="proxy.ntk_rows_per_pass"):
        ProxyMeasurement(**{**cfg.proxy, "ntk_rows_per_pass": 0})


# -- the evaluator ----------------------------------------------------------------------------------
def proxy_evaluator(tmp_path, *overrides):
    cfg = compose_config("search", "method=random", "evaluator=proxy", "proxy.batch_size=16", *TINY, *overrides)
    from lsnas.methods.multitrial.runner import make_evaluator

    return make_evaluator(cfg.evaluator)[0]


def test_every_candidate_is_measured_on_the_same_batches_whatever_the_global_rng(tmp_path):
    evaluator = proxy_evaluator(tmp_path, "proxy=params", "proxy.num_batches=2")
    from lsnas.evaluators.train import datamodule_for

    datamodule = datamodule_for(evaluator.dataset, 64)
    torch.manual_seed(1)
    first = evaluator.proxy.batches(datamodule)
    from lsnas.evaluators import proxy as proxy_module

    proxy_module._BATCHES.clear()
    torch.manual_seed(2)
    second = evaluator.proxy.batches(datamodule)
    assert len(first) == 2 and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
                                   for a, b in zip(first, second))
    torch.manual_seed(5)  # drawing batches leaves the global RNG as it was
    expected = torch.rand(1)
    torch.manual_seed(5)
    proxy_module._BATCHES.clear()
    evaluator.proxy.batches(datamodule)
    assert torch.equal(torch.rand(1), expected)


def test_a_few_step_proxy_trains_the_candidate_before_measuring(tmp_path):
    space = get_space("darts")
    arch = space.sample(random.Random(0))
    ctx = TrialContext(k=0, seed=0, trial_dir=str(tmp_path))
    fresh = proxy_evaluator(tmp_path, "proxy=lga").evaluate(arch, ctx)
    trained = proxy_evaluator(tmp_path, "proxy=lga_trained", "proxy.train.epochs=0", "proxy.train.steps=3",
                              "proxy.train.batch_size=64").evaluate(arch, ctx)
    assert trained.cost["train_steps"] == 3 and "train_steps" not in fresh.cost
    assert trained.metrics["proxy/lga"] != fresh.metrics["proxy/lga"]
    again = proxy_evaluator(tmp_path, "proxy=lga").evaluate(arch, ctx)
    assert again.metrics == fresh.metrics  # the trial's seed alone decides the network


def test_the_trainer_is_part_of_the_fingerprint_only_when_the_proxy_trains(tmp_path):
    plain = [proxy_evaluator(tmp_path, "proxy=lga", f"trainer.precision={p}").fingerprint() for p in ("32", "bf16")]
    trained = [proxy_evaluator(tmp_path, "proxy=lga_trained", f"trainer.precision={p}").fingerprint()
               for p in ("32", "bf16")]
    assert plain[0] == plain[1] and trained[0] != trained[1]


def test_a_search_ranked_by_a_rank_combination_picks_the_best_combined_rank(tmp_path):
    cfg = compose_config("search", "method=random", "evaluator=proxy", "proxy=ntk_naswot", "proxy.batch_size=16",
                         "method.num_trials=4", *TINY)
    summary = search(cfg, tmp_path)
    results = journal_results(tmp_path)
    ks = sorted(results)
    combined = rank_combination([{n: results[k]["metrics"][f"proxy/{n}"] for n in ("ntk_cond", "naswot")}
                                 for k in ks], {"ntk_cond": 1.0, "naswot": 1.0})
    best = ks[int(np.argmax(combined))]
    assert summary["best_trial"] == best and summary["best_score"] == pytest.approx(max(combined))
    assert summary["score"].startswith("relative")
    assert all(results[k]["score"] == -results[k]["metrics"]["proxy/ntk_cond"] for k in ks)


# -- two stages ---------------------------------------------------------------------------------------
def test_two_stage_trains_the_top_k_of_the_proxy_ranking_and_resumes_into_more(tmp_path):
    overrides = ("method=two_stage", "method.num_candidates=5", "method.num_trials=2", "evaluator=synthetic",
                 "proxy=params", "proxy.batch_size=16", *TINY)
    summary = search(compose_config("search", *overrides), tmp_path)
    ranking = journal_results(tmp_path / "ranking")
    order = sorted(ranking, key=lambda k: (-ranking[k]["score"], k))
    asks = TrialLog.replay(Journal(tmp_path).read()).asks
    assert len(ranking) == 5 and summary["trials"] == 2
    assert [asks[k]["tags"]["ranking_trial"] for k in sorted(asks)] == order[:2]
    resumed = search(compose_config("search", *overrides[:2], "method.num_trials=3", *overrides[3:],
                                    "ckpt_path=last"), tmp_path)
    asks = TrialLog.replay(Journal(tmp_path).read()).asks
    assert resumed["trials"] == 3 and [asks[k]["tags"]["rank"] for k in sorted(asks)] == [1, 2, 3]
    assert len(journal_results(tmp_path / "ranking")) == 5  # the ranking was not measured again


def test_two_stage_cannot_train_more_than_it_ranks(tmp_path):
    cfg = compose_config("search", "method=two_stage", "method.num_candidates=2", "method.num_trials=3", *TINY)
    with pytest.raises(ConfigError, match="method.num_trials=3"):
        search(cfg, tmp_path)


# -- the proxy-quality study --------------------------------------------------------------------------
def test_correlation_and_its_bootstrap_interval():
    x = np.arange(10.0)
    assert correlation(x, 2 * x + 1, "kendall_tau") == pytest.approx((1.0, 1.0, 1.0))
    assert correlation(x, -x, "spearman_rho") == pytest.approx((-1.0, -1.0, -1.0))
    rng = np.random.default_rng(0)
    y = x + rng.normal(0, 3, 10)
    tau, low, high = correlation(x, y, "kendall_tau", resamples=500)
    assert tau == pytest.approx(stats.kendalltau(x, y).statistic) and low < tau < high
    assert all(math.isnan(v) for v in correlation([1, 2], [1, 2], "kendall_tau"))


def test_the_study_table_correlates_each_proxy_in_its_preferred_direction():
    accuracy = [0.1, 0.4, 0.3, 0.2, 0.5]
    results = [{"status": "complete", "score": a,
                "metrics": {"init/ntk_cond": 1 / a, "init/naswot": -a, "trained/lga": math.nan if i == 0 else a,
                            "val/top1": a}} for i, a in enumerate(accuracy)]
    results.append({"status": "failed"})
    rows = {r["proxy"]: r for r in study_table(results, resamples=200)}
    assert set(rows) == {"init/ntk_cond", "init/naswot", "trained/lga"}  # val/top1 is no proxy
    assert rows["init/ntk_cond"]["kendall_tau"] == pytest.approx(1.0)
    assert rows["init/naswot"]["kendall_tau"] == pytest.approx(-1.0)
    assert rows["trained/lga"]["n"] == 4 and rows["trained/lga"]["spearman_rho"] == pytest.approx(1.0)


def test_the_proxy_study_measures_trains_and_reports(tmp_path):
    cfg = compose_config("search", "method=proxy_study", "method.num_trials=4", "method.bootstrap.resamples=100",
                         "protocol.epochs=1", "evaluator.measurements.init.batch_size=16",
                         "evaluator.measurements.trained.batch_size=16",
                         "evaluator.measurements.trained.train.steps=2", *TINY)
    summary = search(cfg, tmp_path)
    results = journal_results(tmp_path)
    assert summary["trials"] == 4 and all(r["status"] == "complete" for r in results.values())
    metrics = results[0]["metrics"]
    assert {f"init/{n}" for n in PROXIES.names()} | {"trained/lga", "val/top1"} <= set(metrics)
    assert all(r["score"] == r["metrics"]["val/top1"] for r in results.values())
    table = (tmp_path / "proxy_quality.md").read_text()
    assert "| init/ntk_cond | 4 |" in table and (tmp_path / "proxy_quality.png").stat().st_size > 0
    csv_rows = (tmp_path / "proxy_quality.csv").read_text().splitlines()
    assert csv_rows[0].startswith("proxy,n,kendall_tau") and len(csv_rows) == 1 + len(PROXIES.names()) + 1
    assert write_report(tmp_path, resamples=100) == write_report(tmp_path, resamples=100)  # from the journal alone
    assert json.loads((tmp_path / "search_summary.json").read_text())["evaluator"] == "proxy_study"


# -- every proxy on every space ---------------------------------------------------------------------
def tiny_networks():
    """A small network of each space: (architecture, build settings)."""
    darts = get_space("darts")
    return {
        "darts": (darts.sample(random.Random(0)), {"network": "cifar", "init_channels": 4, "layers": 3}),
        "resnet": (get_space("resnet").architecture(
            {"stem_width": 8, "stem_stride": 2, "stem_pool": True, "blocks": ["basic", "bottleneck", "basic", "basic"],
             "depths": [1, 1, 1, 1], "widths": [8, 8, 16, 16]}), {}),
        "blresnext": (get_space("blresnext").architecture(
            {"depth": 50, "basewidth": 32, "cardinality": 2, "alpha": 2, "beta": 4, "phi": 0.125}), {}),
        "sparse": (SparseSpace({"kind": "conv", "widths": [8, 8, 16, 16]}, sparsity=0.5).sample(random.Random(0)), {}),
        "mbv2_blocks": (get_space("mbv2_blocks").architecture(
            {"activation": "relu", "shape_skip": "bypass",
             "blocks": [{"op": "mb3", "kernel": 3, "skip": "identity", "layers": 1, "width": 0.5}] * 7}), {}),
        "bignas_mbconv": (get_space("bignas_mbconv").architecture(
            {"resolution": 16, "widths": [8, 8, 8, 16, 16, 16, 24, 24, 32], "depths": [1, 2, 1, 1, 1, 1, 1],
             "kernels": [3, 3, 5, 3, 3, 3, 3]}), {}),
    }


@pytest.mark.parametrize("space_name", known_spaces())
def test_every_proxy_runs_on_an_architecture_of_every_space(space_name):
    networks = tiny_networks()
    assert space_name in networks, f"add a tiny network of the {space_name} space to tiny_networks()"
    arch, settings = networks[space_name]
    torch.manual_seed(0)
    net = get_space(space_name).build(arch, 10, (3, 16, 16), **settings)
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8) % 10
    for bn_mode in (True, False):
        net.train(bn_mode)
        values = {name: PROXIES.get(name)(net, x, y) for name in PROXIES.names()}
        assert all(math.isfinite(v) for v in values.values()), values


def test_a_study_too_small_for_correlations_says_why():
    from lsnas.proxies.quality import markdown

    results = [{"status": "complete", "score": s, "metrics": {"init/params": p}} for s, p in ((0.5, 10), (0.6, 20))]
    table = markdown(study_table(results, resamples=50), 0.95, n_trials=2)
    assert "n/a: fewer than 3 architectures" in table and "nan" not in table


def test_lga_after_training_follows_the_official_protocol_whatever_the_budget(tmp_path, caplog):
    cfg = compose_config("search", "method=random", "evaluator=proxy", "budget=full")  # the default proxy
    proxy = cfg.proxy
    assert (proxy.name, proxy.data, proxy.batch_size) == ("lga_trained", "val", 256)
    assert (proxy.train.epochs, proxy.train.batch_size, proxy.train.grad_clip, proxy.train.precision) == (
        1, 1024, None, "32-true")
    assert dict(proxy.train.optimizer) == {"lr": 0.025, "momentum": 0.9, "weight_decay": 3e-4}
    assert compose_config("search", "method=two_stage").proxy.name == "lga_trained"
    small = compose_config("search", "method=random", "evaluator=proxy").proxy  # budget=small cuts it, and says so
    assert (small.batch_size, small.train.limit_batches) == (32, 4) and small.note.startswith("budget=small")
    assert proxy.note is None
    # one whole epoch: budget=small's trainer.limit_train_batches=15 does not cap it (digits: 1,293 / 64 = 21)
    arch = get_space("darts").sample(random.Random(0))
    ctx = TrialContext(k=0, seed=0, trial_dir=str(tmp_path))
    evaluator = proxy_evaluator(tmp_path, "proxy=lga_trained", "proxy.train.batch_size=64", "budget=full",
                                "+trainer.limit_train_batches=15", "protocol.grad_clip=0.001")
    assert evaluator.evaluate(arch, ctx).cost["train_steps"] == 21
    with caplog.at_level("INFO"):  # only proxy.train.limit_batches shortens it, and says so
        shortened = proxy_evaluator(tmp_path, "proxy=lga_trained", "proxy.train.batch_size=64",
                                    "proxy.train.limit_batches=2").evaluate(arch, ctx)
    assert shortened.cost["train_steps"] == 2 and "proxy.train.limit_batches=2" in caplog.text


def test_measuring_on_held_out_images_reads_the_validation_split(tmp_path):
    from lsnas.evaluators.train import datamodule_for

    evaluator = proxy_evaluator(tmp_path, "proxy=lga_trained", "proxy.batch_size=8")
    datamodule = datamodule_for(evaluator.dataset, 64)
    (x, y), = evaluator.proxy.batches(datamodule)
    datamodule.setup("fit")
    held_out = {tuple(datamodule.val_set[i][0].flatten()[:6].tolist()) for i in range(len(datamodule.val_set))}
    assert all(tuple(row.flatten()[:6].tolist()) in held_out for row in x)
    small = proxy_evaluator(tmp_path, "proxy=lga_trained", "proxy.batch_size=4096").proxy  # digits holds out 144
    (x, _), = small.batches(datamodule_for(evaluator.dataset, 64))
    assert len(x) == len(datamodule.val_set) == 144
    with pytest.raises(ConfigError, match="dataset.val_fraction"):
        proxy_evaluator(tmp_path, "proxy=lga_trained", "proxy.num_batches=100").proxy.batches(
            datamodule_for(evaluator.dataset, 64))


def test_progress_lines_name_the_proxy_beside_its_value(tmp_path, caplog):
    cfg = compose_config("search", "method=random", "evaluator=proxy", "proxy=params", "method.num_trials=2",
                         *TINY)
    with caplog.at_level("INFO"):
        summary = search(cfg, tmp_path)
    assert re.search(r"trial 0 \(1/2\) params [0-9.]+ in", caplog.text)
    assert summary["score_name"] == "params"
