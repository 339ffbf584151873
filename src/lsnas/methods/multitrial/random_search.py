"""Random search: ``num_trials`` distinct, uniformly sampled architectures.

In the DARTS space this is the random-sampling baseline of NASTransfer (Panda et al.), which the
transfer study found very competitive. Proposals do not depend on results, so any number of workers
evaluates the same trials.
"""

from __future__ import annotations

import logging
import random

from lsnas.methods.multitrial.strategy import DONE, STRATEGIES, Proposal, SearchState, Strategy

log = logging.getLogger(__name__)


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    requires = ("sample",)

    def ask(self, state: SearchState, rng: random.Random):
        if not self.budget_left(state):
            return DONE
        arch = self.sample_unseen(state, rng)
        if arch is None:
            log.warning("random search: no unseen architecture in 1000 draws after %d trials; the space looks "
                        "exhausted, stopping", state.num_asked)
            return DONE
        return Proposal(arch, {"origin": "random"})
