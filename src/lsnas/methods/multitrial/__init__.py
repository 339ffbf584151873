"""Multi-trial search: strategies propose architectures, evaluators score them, the journal remembers.

See ``loop.py`` for the one ask/tell loop and ``runner.py`` for what ``search.py`` does with it."""

from lsnas.methods.multitrial.evolution import RegularizedEvolution
from lsnas.methods.multitrial.random_search import RandomSearch
from lsnas.methods.multitrial.strategy import DONE, STRATEGIES, Proposal, SearchState, Strategy, Trial

__all__ = ["DONE", "STRATEGIES", "Proposal", "RandomSearch", "RegularizedEvolution", "SearchState", "Strategy",
           "Trial"]
