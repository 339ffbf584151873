"""Does elastic transfer pay? EAT-NAS against evolution from a random target population, on pairs of correlated
synthetic objectives over the MobileNetV2 block space.

    python benchmarks/eatnas_transfer.py [--seeds 10] [--source-budget 300] [--target-budget 200]

Each pair of objectives is a smooth bump, exp(-||x - t||^2 / (2 w^2 d)) over the space's encoding, around a
hidden source architecture S (source) and a hidden target architecture T (target). T is S with each of its 35
decisions redrawn uniformly with probability 1 - c (``--correlations``; c = 0: unrelated tasks, c = 1: the
same). The Spearman correlation of the two objectives over random architectures is measured and printed.
EAT-NAS runs its source stage on the source objective (its evaluations are not counted: the point of the
method is that they are cheap), then its target stage; the baseline is the same target-stage
evolution (population, tournament, scale and op moves) started from a random population instead of the seed
and its offspring. Both are the lsnas strategies, asked as the search loop asks them (one worker), on the same
seeds. Printed per correlation: the mean regret (1 - best target score) after k target evaluations, and the
median number of target evaluations needed to reach a regret (``--regret``), with how many seeds reached it.
"""

from __future__ import annotations

import argparse
import logging
import random
import time

import numpy as np
from scipy.stats import spearmanr

from lsnas.methods.eatnas import ElasticTransfer, OffspringGenerator, SourceEvolution, TargetEvolution
from lsnas.methods.multitrial import RegularizedEvolution, SearchState
from lsnas.methods.multitrial.journal import TrialLog
from lsnas.methods.multitrial.loop import trial_rng
from lsnas.methods.multitrial.strategy import DONE
from lsnas.spaces.mbv2 import DECISIONS, MBV2BlockSpace

SPACE = MBV2BlockSpace()


def related(source, c: float, rng: random.Random):
    """``source`` with each decision redrawn uniformly (maybe the same value) with probability 1 - c: c = 0 is an
    unrelated target, c = 1 the same one."""
    blocks = [dict(b) for b in source.genotype["blocks"]]
    for block in blocks:
        for key, values in DECISIONS.items():
            if rng.random() >= c:
                block[key] = rng.choice(values)
    return SPACE.architecture({**source.genotype, "blocks": blocks})


def bump(target, width: float):
    t = SPACE.encode(target)

    def f(arch) -> float:
        return float(np.exp(-np.sum((SPACE.encode(arch) - t) ** 2) / (2 * width ** 2 * len(t))))

    return f


class RandomStart(TargetEvolution):
    """The baseline: the target stage's evolution from a random population."""

    initial = RegularizedEvolution.initial


def run(strategy, objectives: dict, seed: int, target_budget: int) -> list[float]:
    """Best-so-far target scores after each target evaluation (stage-1 evaluations are not counted)."""
    log = TrialLog()
    state = SearchState(log, SPACE)
    best, curve, k = -np.inf, [], 0
    while len(curve) < target_budget:
        proposal = strategy.ask(state, trial_rng(seed, k))
        if proposal is None or proposal is DONE:
            break
        stage = proposal.tags.get("stage", "target")
        tags = {"stage": stage, **proposal.tags}
        log.apply({"event": "ask", "k": k, "arch": proposal.arch.to_dict(), "digest": proposal.arch.digest,
                   "fingerprint": stage, "tags": tags})
        score = objectives[stage](proposal.arch)
        log.apply({"event": "result", "k": k, "status": "complete", "score": score, "time": float(k)})
        if stage == "target":
            best = max(best, score)
            curve.append(best)
        k += 1
    return curve + [best] * (target_budget - len(curve))


def target_stage(args, budget: int, cls=TargetEvolution):
    offspring = OffspringGenerator({key: args.perturb for key in DECISIONS}, max_distance=args.max_distance)
    return cls(budget, args.population, args.tournament, offspring, mutate=["op", "kernel", "skip"],
               scale_prob=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--source-budget", type=int, default=300)
    parser.add_argument("--target-budget", type=int, default=200)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--tournament", type=int, default=5)
    parser.add_argument("--perturb", type=float, default=0.1, help="offspring probability per decision")
    parser.add_argument("--max-distance", type=int, default=5)
    parser.add_argument("--width", type=float, default=0.3, help="the bumps' width")
    parser.add_argument("--correlations", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.95])
    parser.add_argument("--regret", type=float, nargs="+", default=[0.5, 0.3])
    args = parser.parse_args()
    logging.getLogger("lsnas").setLevel(logging.ERROR)
    ks = [k for k in (20, 50, 100, args.target_budget) if k <= args.target_budget]
    print(f"mbv2_blocks, {args.seeds} seeds, source budget {args.source_budget} (not counted), target budget "
          f"{args.target_budget}, population {args.population}, bump width {args.width}\n")
    print(f"| c | Spearman | strategy | {' | '.join(f'regret k={k}' for k in ks)} | "
          f"{' | '.join(f'evals to regret {r}' for r in args.regret)} | seconds |")
    print(f"|---:|---:|---|{'---:|' * len(ks)}{'---:|' * len(args.regret)}---:|")
    for c in args.correlations:
        pairs = []
        for seed in range(args.seeds):
            rng = random.Random(f"pair {seed} {c}")
            source = SPACE.sample(rng)
            pairs.append({"source": bump(source, args.width), "target": bump(related(source, c, rng), args.width)})
        probe = [SPACE.sample(random.Random(f"probe {i}")) for i in range(500)]
        rho = np.mean([spearmanr([p["source"](a) for a in probe], [p["target"](a) for a in probe])[0]
                       for p in pairs])
        strategies = {
            "eatnas (seed + offspring)": lambda: ElasticTransfer(
                SourceEvolution(args.source_budget, args.population, args.tournament, mutate=list(DECISIONS)),
                target_stage(args, args.target_budget)),
            "evolution from random": lambda: target_stage(args, args.target_budget, RandomStart),
        }
        for label, make in strategies.items():
            started = time.perf_counter()
            regrets = np.array([[1.0 - b for b in run(make(), pairs[s], s, args.target_budget)]
                                for s in range(args.seeds)])
            cells = [f"{regrets[:, k - 1].mean():.3f} ± {regrets[:, k - 1].std(ddof=1) / np.sqrt(args.seeds):.3f}"
                     for k in ks]
            for r in args.regret:
                reached = [int(np.argmax(row <= r)) + 1 for row in regrets if (row <= r).any()]
                median = f"{np.median(reached):.0f}" if reached else "-"
                cells.append(f"{median} ({len(reached)}/{args.seeds})")
            print(f"| {c:g} | {rho:.2f} | {label} | {' | '.join(cells)} | {time.perf_counter() - started:.1f} |")


if __name__ == "__main__":
    main()
