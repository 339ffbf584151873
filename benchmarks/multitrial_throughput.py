"""Trials per hour and the overhead per trial of the multi-trial loop: in process, and on Ray with 1 and
2 workers.

    python benchmarks/multitrial_throughput.py [--trials 40] [--seconds 0.5]

Each configuration runs a random search over the DARTS space with the synthetic evaluator, which sleeps
``--seconds`` per trial in place of training, so everything else is the loop's cost: proposing, writing
the journal (one write + fsync per turn), shipping the trial to a worker and its result back.

    overhead per trial = (wall time x workers - trials x seconds) / trials

i.e. the time a worker is not evaluating, per trial. Ray's start-up (once per search) is reported
apart. ``--seconds 0`` measures the bare loop.

    python benchmarks/multitrial_throughput.py --scale 1000 10000 100000

measures how the bare loop scales instead: random search and regularised evolution (P=100, S=25) in process,
with evaluations that take no time, at each number of trials. It prints the loop's cost per trial over the
whole search and over its last 10% (flat when nothing scans all trials per proposal), the journal's size,
and how long replaying the journal and rebuilding the search state take (what a resume does first).
``--relative`` scores the trials by a two-proxy rank combination, as ``proxy.measure=[a,b]`` does.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

from lsnas.evaluators import SyntheticEvaluator
from lsnas.methods.multitrial import RandomSearch, SearchState
from lsnas.methods.multitrial.evolution import RegularizedEvolution
from lsnas.methods.multitrial.executors import make_executor
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.methods.multitrial.loop import SearchLoop
from lsnas.proxies.combine import RankIndex
from lsnas.spaces import get_space


def measure(executor_name: str, workers: int, trials: int, seconds: float) -> dict:
    started = time.perf_counter()
    executor = make_executor(executor_name, workers=workers)
    startup = time.perf_counter() - started
    space = get_space("darts")
    with tempfile.TemporaryDirectory() as run_dir, Journal(run_dir) as journal:
        state = SearchState(TrialLog(), space)
        loop = SearchLoop(journal, state, RandomSearch(trials), SyntheticEvaluator(seconds=seconds), executor, seed=0)
        began = time.perf_counter()
        loop.run()
        wall = time.perf_counter() - began
    executor.close()
    return {"executor": executor_name, "workers": executor.workers, "startup_s": startup, "wall_s": wall,
            "trials_per_hour": trials / wall * 3600,
            "overhead_ms": (wall * executor.workers - trials * seconds) / trials * 1000}


class TwoProxyRanks:
    """A relative objective as a two-proxy search's (``proxy.measure=[lga,naswot]``, equal weights): the rank
    combination of the synthetic score and a second value derived from it (standing in for a second proxy)."""

    def signed(self, result: dict) -> list[float]:
        return [result["score"], (result["score"] * 1e3) % 1.0]

    def index(self) -> RankIndex:
        return RankIndex([1.0, 1.0])


def measure_scale(strategy_name: str, trials: int, relative: bool = False) -> dict:
    """The bare loop at ``trials`` trials: cost per trial overall and over the last 10%, journal size, replay."""
    space = get_space("darts")
    strategy = (RandomSearch(trials) if strategy_name == "random" else
                RegularizedEvolution(trials, population_size=100, sample_size=25))
    tail_start = int(trials * 0.9)
    marks: dict[str, float] = {}

    def on_result(trial) -> None:
        if trial.k == tail_start:
            marks["tail"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as run_dir:
        with Journal(run_dir) as journal:
            state = SearchState(TrialLog(), space, objective=TwoProxyRanks() if relative else None)
            loop = SearchLoop(journal, state, strategy, SyntheticEvaluator(), make_executor("inprocess"), seed=0,
                              on_result=on_result)
            began = time.perf_counter()
            loop.run()
            wall = time.perf_counter() - began
        size = journal.path.stat().st_size
        started = time.perf_counter()  # what a resume does first: the log replayed, the state and its best rebuilt
        replayed = TrialLog.replay(Journal(run_dir).read())
        SearchState(replayed, space, objective=TwoProxyRanks() if relative else None).best()
        replay_s = time.perf_counter() - started
    assert len(replayed.results) == trials
    return {"strategy": strategy_name, "trials": trials, "ms_per_trial": wall / trials * 1000,
            "tail_ms_per_trial": (began + wall - marks["tail"]) / (trials - tail_start) * 1000,
            "journal_mb": size / 2**20, "replay_s": replay_s}


def main_scale(counts: list[int], relative: bool = False) -> None:
    print("the bare loop (synthetic evaluations taking no time), in process, DARTS space"
          + (", scored by a two-proxy rank combination" if relative else ""))
    header = ("strategy", "trials", "ms/trial", "last 10%", "journal", "replay")
    print("{:<10} {:>8} {:>10} {:>10} {:>10} {:>8}".format(*header))
    for name in ("random", "evolution"):
        for count in counts:
            r = measure_scale(name, count, relative)
            print(f"{r['strategy']:<10} {r['trials']:>8} {r['ms_per_trial']:>10.2f} {r['tail_ms_per_trial']:>10.2f} "
                  f"{r['journal_mb']:>7.1f} MB {r['replay_s']:>7.2f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=0.5, help="simulated evaluation time per trial")
    parser.add_argument("--scale", type=int, nargs="+", help="numbers of trials: how the bare loop scales")
    parser.add_argument("--relative", action="store_true",
                        help="with --scale: score the trials by a relative objective (a two-proxy rank combination)")
    args = parser.parse_args()
    if args.scale:
        logging.getLogger("lsnas").setLevel(logging.WARNING)
        main_scale(args.scale, args.relative)
        return
    logging.getLogger("lsnas").setLevel(logging.WARNING)  # no progress line per trial here
    rows = [measure("inprocess", 1, args.trials, args.seconds)]
    try:
        import ray  # noqa: F401
    except ImportError:
        print("ray is not installed (pip install 'lsnas[ray]'); measuring in process only")
    else:
        rows += [measure("ray", 1, args.trials, args.seconds), measure("ray", 2, args.trials, args.seconds)]
    print(f"{args.trials} trials of {args.seconds:.2f} s (synthetic evaluator, random search, DARTS space)")
    header = ("executor", "workers", "start-up s", "wall s", "trials/hour", "overhead/trial")
    print("{:<10} {:>7} {:>10} {:>8} {:>12} {:>15}".format(*header))
    for r in rows:
        print(f"{r['executor']:<10} {r['workers']:>7} {r['startup_s']:>10.2f} {r['wall_s']:>8.2f} "
              f"{r['trials_per_hour']:>12.0f} {r['overhead_ms']:>12.1f} ms")


if __name__ == "__main__":
    main()
