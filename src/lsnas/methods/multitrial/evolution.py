"""Regularised (aging) evolution with tournament selection (Real et al., AAAI 2019).

- The first ``population_size`` trials are distinct random samples.
- Afterwards each proposal mutates a parent chosen by a tournament: ``sample_size`` members drawn
  uniformly from the population, the best of them wins.
- The population is the ``population_size`` most recent complete trials (by trial index k): aging
  removes the oldest, whatever its score. Failed trials (nan, oom, timeout, failed, lost, invalid) never
  join it, so a failed architecture is never a parent.

Asynchronous, as the paper's workers: a proposal needs only the trials finished so far. It waits only at
the start, until every trial of the initial population has finished, so that the first tournament is the
same whatever the number of workers. With one worker the search is fully deterministic given the seed.
"""

from __future__ import annotations

import random

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods.multitrial.strategy import DONE, STRATEGIES, Proposal, SearchState, Strategy


@STRATEGIES.register("evolution")
class RegularizedEvolution(Strategy):
    requires = ("sample", "mutate")

    def __init__(self, num_trials: int, population_size: int = 50, sample_size: int = 10,
                 mutation_tries: int = 20):
        super().__init__(num_trials)
        if not 1 <= sample_size <= population_size:
            raise ConfigError(f"method.strategy.sample_size must be in [1, population_size={population_size}], "
                              f"got {sample_size}")
        self.population_size, self.sample_size = int(population_size), int(sample_size)
        self.mutation_tries = int(mutation_tries)

    def population(self, state: SearchState) -> list:
        return state.completed(last=self.population_size)

    def ask(self, state: SearchState, rng: random.Random):
        if not self.budget_left(state):
            return DONE
        if state.num_asked < self.population_size:
            return self.initial(state, rng)
        if any(t.result is None for t in state.first(self.population_size)):
            return None  # the initial population is still being evaluated
        population = self.population(state)
        if not population:  # every trial so far failed: keep exploring rather than stop
            arch = self.sample_unseen(state, rng)
            return DONE if arch is None else Proposal(arch, {"origin": "random"})
        contenders = rng.sample(population, min(self.sample_size, len(population)))
        parent = max(contenders, key=lambda t: (t.score, -t.k))
        seen = state.seen()
        child = self.offspring(parent.arch, state, rng)
        for _ in range(self.mutation_tries - 1):  # prefer an unseen child; a repeat is answered from the journal
            if child.digest not in seen:
                break
            child = self.offspring(parent.arch, state, rng)
        return Proposal(child, {"origin": "mutation", "parent": parent.k})

    def initial(self, state: SearchState, rng: random.Random):
        """A member of the initial population (distinct random samples here)."""
        arch = self.sample_unseen(state, rng)
        return DONE if arch is None else Proposal(arch, {"origin": "random"})

    def offspring(self, parent: Architecture, state: SearchState, rng: random.Random) -> Architecture:
        """A child of a tournament's winner (a one-decision mutation here)."""
        return state.space.mutate(parent, rng)
