"""EAT-NAS's search (Fang et al., 2019) as one strategy over two stages of one journal.

- **Stage 1, source**: regularised evolution (``RegularizedEvolution``: a random initial population, tournament
  selection, aging) whose children move one decision of one block (``source.mutate``: which kinds).
- **Seed**: when every stage-1 trial has finished, its best architecture.
- **Offspring generator**: the stage-2 initial population is the seed and perturbations of it
  (``OffspringGenerator``: each decision of each block moves with its probability, at most ``max_distance``
  decisions in all), so the target search starts around the seed instead of at random.
- **Stage 2, target**: evolution goes on from that population on the target data, with the architecture scale
  search: a child's move is, with probability ``scale_prob``, a width factor or layer count of one block moved
  one step (elastic), otherwise an op, kernel or skip.

The paper states neither the population size nor the mutation operators nor the selection: these are the
choices, each a setting (``conf/method/eatnas.yaml``). Trials are tagged ``stage`` (source | target) and
``generation`` (their place in the stage divided by the population size), and everything is derived from the
journal: a fresh strategy given the same state proposes the same thing, so the run resumes in either stage.
Stage 1 ends early when the population quality (the mean score of the population after each generation) has
converged: it rose by less than ``source.converge_tol`` over a generation. The paper uses the population quality
to judge when the source search has converged; its official code (JaminFong/EAT-NAS) holds only the evaluation,
not the search loop, so the tolerance is ours (0.002: a fifth of an accuracy point per generation; null turns the
stop off and the budget decides). The stop is logged and recorded in the summary (``stages.source.stop``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods.multitrial.evolution import RegularizedEvolution
from lsnas.methods.multitrial.loop import SearchFailedError
from lsnas.methods.multitrial.strategy import DONE, Proposal, SearchState, Strategy
from lsnas.spaces.mbv2 import DECISIONS, SCALE, MBV2BlockSpace

log = logging.getLogger(__name__)

STAGES = ("source", "target")


def block_distance(a: Architecture, b: Architecture) -> int:
    """How many block decisions differ between two architectures of the block space."""
    return sum(x[key] != y[key] for x, y in zip(a.genotype["blocks"], b.genotype["blocks"]) for key in DECISIONS)


class OffspringGenerator:
    """The transformation function of EAT-NAS's offspring architecture generator: each decision of each block
    of the seed moves with ``probabilities[decision]`` (ordinal ones by at most ``step`` places, the others to
    any other choice), keeping at most ``max_distance`` of the moves (a random subset) and at least one."""

    def __init__(self, probabilities: dict[str, float], max_distance: int = 5, step: int | None = 1):
        unknown = set(probabilities) - set(DECISIONS)
        if unknown or not all(0 <= p <= 1 for p in probabilities.values()) or not any(probabilities.values()):
            raise ConfigError(f"method.target.offspring.probabilities maps decisions {list(DECISIONS)} to "
                              f"probabilities in [0, 1], not all zero; got {dict(probabilities)}")
        if max_distance < 1:
            raise ConfigError(f"method.target.offspring.max_distance must be at least 1, got {max_distance}")
        self.probabilities, self.max_distance, self.step = dict(probabilities), int(max_distance), step

    def __call__(self, seed: Architecture, space: MBV2BlockSpace, rng: random.Random) -> Architecture:
        blocks = [dict(b) for b in seed.genotype["blocks"]]
        moves = []
        for i, block in enumerate(blocks):
            for key, p in self.probabilities.items():
                options = space.moves(block[key], key, self.step)
                if options and rng.random() < p:
                    moves.append((i, key, rng.choice(options)))
        if not moves:  # an offspring differs from its seed: force one move, drawn as the probabilities weigh them
            candidates = [(i, key) for i, block in enumerate(blocks) for key, p in self.probabilities.items()
                          if p > 0 and space.moves(block[key], key, self.step)]
            i, key = rng.choices(candidates, weights=[self.probabilities[key] for _, key in candidates])[0]
            moves = [(i, key, rng.choice(space.moves(blocks[i][key], key, self.step)))]
        for i, key, value in rng.sample(moves, min(len(moves), self.max_distance)):
            blocks[i][key] = value
        return space.architecture({**seed.genotype, "blocks": blocks})


class SourceEvolution(RegularizedEvolution):
    """Stage 1: regularised evolution whose children move one decision among ``mutate``."""

    def __init__(self, num_trials: int, population_size: int, sample_size: int, mutate: list[str],
                 mutation_tries: int = 20):
        super().__init__(num_trials, population_size, sample_size, mutation_tries)
        self.decisions = _decisions(mutate, "method.source.mutate")

    def offspring(self, parent: Architecture, state: SearchState, rng: random.Random) -> Architecture:
        return state.space.mutate(parent, rng, decisions=self.decisions)


class TargetEvolution(RegularizedEvolution):
    """Stage 2: the initial population is the seed (``include_seed``) and its offspring; children move a
    scale decision one step with probability ``scale_prob``, else one of ``mutate``."""

    def __init__(self, num_trials: int, population_size: int, sample_size: int, offspring: OffspringGenerator,
                 mutate: list[str], scale_prob: float = 0.5, include_seed: bool = True, mutation_tries: int = 20):
        super().__init__(num_trials, population_size, sample_size, mutation_tries)
        if not 0 <= scale_prob <= 1:
            raise ConfigError(f"method.target.scale_prob is a probability, got {scale_prob}")
        self.generator, self.scale_prob, self.include_seed = offspring, float(scale_prob), bool(include_seed)
        self.decisions = _decisions(mutate, "method.target.mutate")
        self.seed: Architecture | None = None  # set by ElasticTransfer from the state before each ask

    def initial(self, state: SearchState, rng: random.Random):
        if self.include_seed and self.seed.digest not in state.seen():
            return Proposal(self.seed, {"origin": "seed"})
        seen = state.seen()
        for _ in range(1000):
            child = self.generator(self.seed, state.space, rng)
            if child.digest not in seen:
                return Proposal(child, {"origin": "offspring", "distance": block_distance(child, self.seed)})
        return DONE

    def offspring(self, parent: Architecture, state: SearchState, rng: random.Random) -> Architecture:
        if rng.random() < self.scale_prob:
            return state.space.mutate(parent, rng, decisions=SCALE, step=1)
        return state.space.mutate(parent, rng, decisions=self.decisions)


def _decisions(names, setting: str) -> tuple[str, ...]:
    names = tuple(names)
    if not names or any(n not in DECISIONS for n in names):
        raise ConfigError(f"{setting} lists decisions among {list(DECISIONS)}, got {list(names)}")
    return names


@dataclass(frozen=True)
class Generation:
    """The population quality after one generation of a stage: its members' scores' mean and spread."""

    stage: str
    index: int
    size: int
    mean: float
    var: float
    std: float
    best: float
    complete: bool  # False: the stage's last generation, cut short by its budget


def population_quality(state: SearchState, population_size: int, stage: str) -> list[Generation]:
    """Per generation of a stage (each ``population_size`` of its trials), the population after it: the last
    ``population_size`` complete trials among the generation's and earlier ones (aging), as the evolution holds
    it. Failed trials never join; generations with no finished trial are left out."""
    trials = state.trials
    quality = []
    for index in range(0, (len(trials) + population_size - 1) // population_size):
        upto = trials[: (index + 1) * population_size]
        if any(t.result is None for t in upto[index * population_size:]):
            break
        scores = np.array([t.score for t in upto if t.complete][-population_size:], dtype=np.float64)
        if not len(scores):
            continue
        quality.append(Generation(stage, index, len(scores), float(scores.mean()), float(scores.var()),
                                  float(scores.std()), float(scores.max()), len(upto) == (index + 1) * population_size))
    return quality


def converged(quality: list[Generation], tol: float | None) -> bool:
    """The population has converged: its mean rose by less than ``tol`` over the last complete generation."""
    done = [g for g in quality if g.complete]
    return tol is not None and len(done) >= 2 and done[-1].mean - done[-2].mean < tol


class ElasticTransfer(Strategy):
    """The two stages in one journal (module docstring)."""

    requires = ("sample", "mutate")

    def __init__(self, source: SourceEvolution, target: TargetEvolution, converge_tol: float | None = None):
        super().__init__(source.num_trials + target.num_trials)
        self.source, self.target, self.converge_tol = source, target, converge_tol
        self._stop_logged = False

    def check_space(self, space) -> None:
        if not isinstance(space, MBV2BlockSpace):
            raise ConfigError(f"method=eatnas searches the MobileNetV2 block space (space=mbv2_blocks), not the "
                              f"{space.name!r} space")
        super().check_space(space)

    def seed(self, state: SearchState):
        """The best complete stage-1 trial (None while stage 1 runs or when none completed)."""
        return state.where(stage="source").best()

    def source_done(self, state: SearchState) -> bool:
        """Stage 1 proposes nothing more: its budget is asked, its population converged, or stage 2 began."""
        source = state.where(stage="source")
        if state.where(stage="target").num_asked or not self.source.budget_left(source):
            return True
        stop = self.source_stop(state)
        if stop and not self._stop_logged:
            log.info("stage 1 (source) stops after %d trials: %s", source.num_asked, stop)
            self._stop_logged = True
        return stop is not None

    def source_stop(self, state: SearchState) -> str | None:
        """Why stage 1 ended before its budget (its population converged), from the journal alone."""
        quality = population_quality(state.where(stage="source"), self.source.population_size, "source")
        if not converged(quality, self.converge_tol):
            return None
        done = [g for g in quality if g.complete]
        return (f"converged: the population's mean rose by {done[-1].mean - done[-2].mean:+.4f} over generation "
                f"{done[-1].index} (< method.source.converge_tol={self.converge_tol:g})")

    def ask(self, state: SearchState, rng: random.Random):
        source = state.where(stage="source")
        if not self.source_done(state):
            proposal = self.source.ask(source, rng)
            if proposal is not DONE:  # (DONE: the space has no unseen architecture left for stage 1)
                return self._tagged(proposal, "source", source.num_asked, self.source)
        if source.num_pending:
            return None  # the seed needs every stage-1 result
        seed = source.best()
        if seed is None:
            raise SearchFailedError("no stage-1 (source) trial completed, so there is no seed for the target "
                                    "search; see trials.jsonl for the errors")
        self.target.seed = seed.arch
        target = state.where(stage="target")
        return self._tagged(self.target.ask(target, rng), "target", target.num_asked, self.target)

    @staticmethod
    def _tagged(proposal, stage: str, index: int, evolution: RegularizedEvolution):
        if not isinstance(proposal, Proposal):
            return proposal
        return Proposal(proposal.arch, {"stage": stage, "generation": index // evolution.population_size,
                                        **proposal.tags})
