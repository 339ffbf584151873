"""The multi-trial layer on a cheap synthetic evaluator: strategies, the loop, failures, duplicates, resume."""

import os
import random
import statistics

import pytest

from lsnas.errors import ConfigError
from lsnas.evaluators import Evaluator, Result, SyntheticEvaluator, TrialLost
from lsnas.methods.multitrial import DONE, Proposal, RandomSearch, RegularizedEvolution, SearchState, Strategy
from lsnas.methods.multitrial.executors import InProcessExecutor, ThreadExecutor
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.methods.multitrial.loop import SearchFailedError, SearchLoop, trial_rng
from lsnas.spaces import get_space
from lsnas.spaces.base import SearchSpace

SPACE = get_space("darts")


def run(run_dir, strategy, evaluator, executor=None, seed=0, **kw) -> SearchState:
    with Journal(run_dir) as journal:
        state = SearchState(TrialLog.replay(journal.read()), SPACE)
        SearchLoop(journal, state, strategy, evaluator, executor or InProcessExecutor(), seed, **kw).run()
    return state


def trials_of(state):
    return [(t.k, t.arch.digest, t.status, t.score) for t in state.trials]


def test_random_search_never_repeats_an_architecture(tmp_path):
    state = run(tmp_path, RandomSearch(num_trials=300), SyntheticEvaluator())
    digests = [t.arch.digest for t in state.trials]
    assert len(digests) == 300 and len(set(digests)) == 300
    assert all(t.complete and 0.0 <= t.score <= 1.0 for t in state.trials)


def test_evolution_beats_random_search_at_equal_trials_on_a_known_objective(tmp_path):
    best = {"random": [], "evolution": []}
    for seed in range(3):
        for name, strategy in (("random", RandomSearch(150)),
                               ("evolution", RegularizedEvolution(150, population_size=20, sample_size=5))):
            state = run(tmp_path / f"{name}{seed}", strategy, SyntheticEvaluator(target_seed=seed), seed=seed)
            best[name].append(state.best().score)
    assert all(e > r for e, r in zip(best["evolution"], best["random"])), best
    assert statistics.mean(best["evolution"]) >= statistics.mean(best["random"]) + 0.1, best


def test_evolution_mutates_tournament_winners_and_never_a_failed_parent(tmp_path):
    evaluator = SyntheticEvaluator(fail_every=4, nan_every=5)
    state = run(tmp_path, RegularizedEvolution(60, population_size=8, sample_size=3), evaluator,
                max_failure_rate=0.9)
    statuses = {t.status for t in state.trials}
    assert {"complete", "failed", "nan"} <= statuses and len(state.log.results) == 60
    children = [t for t in state.trials if t.tags.get("origin") == "mutation"]
    assert len(children) == 60 - 8
    for child in children:
        parent = state.trial(child.tags["parent"])
        assert parent.complete and parent.k < child.k
    failed = state.trial(3)
    assert failed.status == "failed" and "injected failure" in failed.result["error"] and failed.score is None
    assert state.trial(4).status == "nan" and "score" not in state.trial(4).result


def test_too_many_failures_stop_the_search_naming_the_setting(tmp_path):
    with pytest.raises(SearchFailedError, match="method.max_failure_rate=0.5"):
        run(tmp_path, RandomSearch(50), SyntheticEvaluator(fail_every=1))
    log = TrialLog.replay(Journal(tmp_path).read())
    assert len(log.results) == 5 and not log.pending()  # every failure is journaled before stopping


def test_a_fresh_strategy_given_the_same_state_proposes_the_same(tmp_path):
    state = run(tmp_path, RegularizedEvolution(30, population_size=6, sample_size=3), SyntheticEvaluator())
    again = RegularizedEvolution(40, population_size=6, sample_size=3)
    first = again.ask(state, trial_rng(0, 30))
    second = RegularizedEvolution(40, population_size=6, sample_size=3).ask(state, trial_rng(0, 30))
    assert first.arch == second.arch and first.tags == second.tags


def test_a_search_resumed_with_a_larger_budget_equals_one_uninterrupted_search(tmp_path):
    evaluator = SyntheticEvaluator(nan_every=7)
    whole = run(tmp_path / "whole", RegularizedEvolution(40, population_size=6, sample_size=3), evaluator)
    run(tmp_path / "parts", RegularizedEvolution(17, population_size=6, sample_size=3), evaluator)
    parts = run(tmp_path / "parts", RegularizedEvolution(40, population_size=6, sample_size=3), evaluator)
    assert trials_of(parts) == trials_of(whole)


class Counting(Evaluator):
    """Counts its evaluations (in process); trial k is lost on its first attempt when k is in ``lose``."""

    def __init__(self, lose=()):
        self.calls, self.lose = [], set(lose)

    def settings(self):
        return {}

    def evaluate(self, arch, ctx):
        self.calls.append((ctx.k, ctx.attempt))
        if ctx.k in self.lose and ctx.attempt == 0:
            raise TrialLost("the node went away")
        return Result(score=float(int(arch.digest, 16) % 1000) / 1000)


class Repeating(Strategy):
    """Proposes the same architectures again and again: 0, 1, 0, 1, ..."""

    def ask(self, state, rng):
        if not self.budget_left(state):
            return DONE
        return Proposal(SPACE.sample(random.Random(state.num_asked % 2)))


@pytest.mark.parametrize("executor", [InProcessExecutor, lambda: ThreadExecutor(workers=2)])
def test_duplicates_are_answered_from_the_journal(tmp_path, executor):
    evaluator = Counting()
    state = run(tmp_path, Repeating(6), evaluator, executor=executor())
    assert sorted(k for k, _ in evaluator.calls) == [0, 1]
    for t in state.trials[2:]:
        assert t.result["duplicate_of"] == t.k % 2 and t.score == state.trial(t.k % 2).score
        assert t.result["cost"] == {"seconds": 0.0}


def test_a_lost_trial_is_retried_with_the_same_index_then_given_up(tmp_path):
    evaluator = Counting(lose={1})
    state = run(tmp_path, RandomSearch(3), evaluator)
    assert (1, 0) in evaluator.calls and (1, 1) in evaluator.calls and state.trial(1).complete
    assert state.log.retries == {1: 1}

    class AlwaysLost(Counting):
        def evaluate(self, arch, ctx):
            raise TrialLost("gone")

    state = run(tmp_path / "b", RandomSearch(2), AlwaysLost(), max_retries=2, max_failure_rate=1.0)
    assert [t.status for t in state.trials] == ["lost", "lost"] and state.log.retries == {0: 2, 1: 2}


def test_a_strategy_that_needs_what_the_space_lacks_is_refused():
    class SampleOnly(SearchSpace):
        name = "sample_only"

        def canonical_genotype(self, genotype):
            return genotype

        def sample(self, rng):
            raise AssertionError("not called")

        def build(self, arch, num_classes, input_shape, **network):
            raise AssertionError("not called")

    RandomSearch(3).check_space(SampleOnly())
    with pytest.raises(ConfigError, match="mutate.*sample_only.*setting: space or method"):
        RegularizedEvolution(3, population_size=2, sample_size=1).check_space(SampleOnly())
    with pytest.raises(ConfigError, match="sample_size"):
        RegularizedEvolution(10, population_size=2, sample_size=3)


@pytest.mark.slow
def test_ray_with_two_workers_gives_the_same_trials_as_one(tmp_path):
    pytest.importorskip("ray")
    from lsnas.methods.multitrial.executors import RayExecutor

    got = {}
    for workers in (1, 2):
        executor = RayExecutor(workers=workers)
        try:
            state = run(tmp_path / str(workers), RandomSearch(8), SyntheticEvaluator(seconds=0.3), executor=executor)
        finally:
            executor.close()
        got[workers] = state
    assert trials_of(got[1]) == trials_of(got[2]) and len(got[1].trials) == 8
    # two trials at a time really ran in two worker processes, beside the driver
    assert len({t.result["metrics"]["pid"] for t in got[2].trials}) == 2
    assert os.getpid() not in {t.result["metrics"]["pid"] for t in got[1].trials}


def test_a_resume_never_runs_more_trials_at_once_than_workers(tmp_path):
    import threading
    import time

    class Overlap(Evaluator):
        def __init__(self):
            self.running, self.most, self.lock = 0, 0, threading.Lock()

        def settings(self):
            return {}

        def evaluate(self, arch, ctx):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.05)
            with self.lock:
                self.running -= 1
            return Result(score=0.5)

    evaluator = Overlap()
    with Journal(tmp_path) as journal:  # three trials were asked when the last driver died
        journal.append([{"event": "ask", "k": k, "arch": SPACE.sample(random.Random(k)).to_dict(),
                         "digest": SPACE.sample(random.Random(k)).digest, "fingerprint": evaluator.fingerprint(),
                         "tags": {}} for k in range(3)])
    state = run(tmp_path, RandomSearch(4), evaluator, executor=ThreadExecutor(workers=1))
    assert evaluator.most == 1 and len(state.log.results) == 4


def test_a_duplicate_of_a_failed_trial_is_evaluated_again(tmp_path):
    class FailsOnce(Counting):
        def evaluate(self, arch, ctx):
            self.calls.append((ctx.k, ctx.attempt))
            if ctx.k == 0:
                raise MemoryError("no room this time")
            return Result(score=0.25)

    evaluator = FailsOnce()
    state = run(tmp_path, Repeating(4), evaluator, max_failure_rate=1.0)
    assert state.trial(0).status == "oom" and state.trial(2).complete and "duplicate_of" not in state.trial(2).result
    assert state.trial(3).result["duplicate_of"] == 1 and [k for k, _ in evaluator.calls] == [0, 1, 2]


def test_what_an_evaluator_returns_is_made_fit_for_the_journal(tmp_path):
    import numpy as np

    from lsnas.evaluators import TrialContext, run_trial
    from lsnas.methods.multitrial.journal import encode_event

    class Sloppy(Evaluator):
        def __init__(self, status="complete"):
            self.status = status

        def evaluate(self, arch, ctx):
            return Result(status=self.status, score=np.float32(0.5),
                          metrics={"loss": float("nan"), "curve": [1.0, float("inf")], "n": np.int64(3),
                                   "nested": {"x": float("nan"), "y": 2.0}})

    ctx = TrialContext(k=0, seed=0, trial_dir=str(tmp_path))
    result = run_trial(Sloppy(), SPACE.sample(random.Random(0)).to_dict(), ctx)
    assert result["score"] == 0.5 and type(result["score"]) is float
    assert result["metrics"] == {"curve": [1.0, None], "n": 3, "nested": {"y": 2.0}}
    encode_event({"event": "result", "k": 0, **result})  # would raise on NaN or numpy values
    unknown = run_trial(Sloppy(status="great"), SPACE.sample(random.Random(0)).to_dict(), ctx)
    assert unknown["status"] == "failed" and "unknown status 'great'" in unknown["error"]


def test_a_search_that_used_its_budget_ends_even_if_its_last_trials_failed(tmp_path):
    class FailsLate(Counting):
        def evaluate(self, arch, ctx):
            if ctx.k >= 2:
                raise RuntimeError("late failure")
            return Result(score=0.5)

    state = run(tmp_path, RandomSearch(5), FailsLate())  # 3 of 5 failed, but nothing is left to ask
    assert [t.status for t in state.trials] == ["complete"] * 2 + ["failed"] * 3
