"""Regret of the spline search against evolution and random search on synthetic objectives over a box space.

    python benchmarks/surrogate_regret.py [--seeds 10] [--budget 50] [--space resnet18_spline]

Each objective is a known function of a candidate's unit-box coordinates, with its maximum at a feasible
architecture drawn per seed, so the optimum f* is known and the regret after k evaluations is
f* - (best score among the first k). The strategies are the lsnas ones (``PolyharmonicSpline``,
``RegularizedEvolution``, ``RandomSearch``), asked exactly as the search loop asks them (one worker), on
the same seeds. Objectives:

- ``bump``: exp(-||x - t||^2 / (2 * 0.3^2 * d)), one smooth peak;
- ``ridge``: a peak plus a sinusoidal ripple, 0.85 * bump + 0.15 * prod_i cos(2 pi (x_i - t_i)), smooth but
  not unimodal.

It prints the mean (and standard error) of the regret at several k per objective and strategy, then the
factor the issue asks for: how many evaluations random search needs, on average over seeds, to reach the
spline search's mean regret at k = 2d + 3 + 5.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from pathlib import Path

import numpy as np
import yaml

from lsnas.methods.multitrial import RandomSearch, RegularizedEvolution, SearchState
from lsnas.methods.multitrial.journal import TrialLog
from lsnas.methods.multitrial.loop import trial_rng
from lsnas.methods.multitrial.strategy import DONE
from lsnas.methods.pspline import PolyharmonicSpline
from lsnas.spaces import space_from_config

ROOT = Path(__file__).resolve().parents[1]


def objectives(space, seed: int) -> dict:
    target = space.encode(space.sample(random.Random(f"target {seed}")))
    d = len(target)

    def bump(x):
        return float(np.exp(-np.sum((x - target) ** 2) / (2 * 0.3 ** 2 * d)))

    def ridge(x):
        return 0.85 * bump(x) + 0.15 * float(np.prod(np.cos(2 * np.pi * (x - target))))

    return {"bump": bump, "ridge": ridge}


def run(strategy, space, fn, seed: int, budget: int) -> list[float]:
    """Best-so-far scores after each evaluation, the strategy asked as the loop asks it (one worker)."""
    log = TrialLog()
    state = SearchState(log, space)
    best, curve = -np.inf, []
    for k in range(budget):
        proposal = strategy.ask(state, trial_rng(seed, k))
        if proposal is None or proposal is DONE:
            break
        arch = proposal.arch
        log.apply({"event": "ask", "k": k, "arch": arch.to_dict(), "digest": arch.digest, "fingerprint": "f",
                   "tags": proposal.tags})
        score = fn(space.encode(arch))
        log.apply({"event": "result", "k": k, "status": "complete", "score": score, "time": float(k)})
        best = max(best, score)
        curve.append(best)
    return curve + [best] * (budget - len(curve))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--random-budget", type=int, default=1000, help="evaluations random search may use to "
                        "reach the spline's regret")
    parser.add_argument("--space", default="resnet18_spline")
    args = parser.parse_args()
    logging.getLogger("lsnas").setLevel(logging.ERROR)
    space = space_from_config(yaml.safe_load((ROOT / "conf" / "space" / f"{args.space}.yaml").read_text()))
    d = len(space.dims)
    k_ref = 2 * d + 3 + 5
    ks = sorted({2 * d + 3, k_ref, 25, args.budget} & set(range(1, args.budget + 1)))
    strategies = {
        "pspline": lambda n: PolyharmonicSpline(n, stop_on_epsilon=False),
        "evolution": lambda n: RegularizedEvolution(n, population_size=10, sample_size=3),
        "random": lambda n: RandomSearch(n),
    }
    print(f"space {args.space} (d={d}), {args.seeds} seeds, regret = f* - best of the first k (f* = 1)\n")
    print(f"| objective | strategy | {' | '.join(f'k={k}' for k in ks)} | seconds |")
    print(f"|---|---|{'---:|' * len(ks)}---:|")
    for name in ("bump", "ridge"):
        curves, spline_ref = {}, None
        for label, make in strategies.items():
            started = time.perf_counter()
            budget = args.random_budget if label == "random" else args.budget
            regrets = np.array([[1.0 - b for b in run(make(budget), space, objectives(space, s)[name], s, budget)]
                                for s in range(args.seeds)])
            curves[label] = regrets
            cells = [f"{regrets[:, k - 1].mean():.4f} ± {regrets[:, k - 1].std(ddof=1) / np.sqrt(args.seeds):.4f}"
                     for k in ks]
            print(f"| {name} | {label} | {' | '.join(cells)} | {time.perf_counter() - started:.1f} |")
        spline_ref = curves["pspline"][:, k_ref - 1].mean()
        reached = np.nonzero(curves["random"].mean(axis=0) <= spline_ref)[0]
        needed = f"{reached[0] + 1}" if reached.size else f"> {args.random_budget}"
        factor = f"{(reached[0] + 1) / k_ref:.1f}x" if reached.size else f"> {args.random_budget / k_ref:.0f}x"
        print(f"|  | random needs {needed} evaluations to reach pspline's mean regret at k={k_ref} "
              f"({spline_ref:.4f}): {factor} |")


if __name__ == "__main__":
    main()
