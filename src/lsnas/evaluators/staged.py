"""A staged search's evaluators: one per stage, chosen by each trial's ``stage`` tag.

EAT-NAS scores stage 1 on the source dataset and stage 2 on the target, in one journal. The loop asks
``route(tags)`` for the evaluator of each trial, so each stage keeps its own fingerprint (the same
architecture in both stages is evaluated twice, never answered across stages) and ships as a plain
evaluator to a worker or a job.
"""

from __future__ import annotations

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.evaluators.base import Evaluator, Result, TrialContext
from lsnas.spaces.base import SearchSpace


class StagedEvaluator(Evaluator):
    def __init__(self, stages: dict[str, Evaluator], key: str = "stage"):
        self.stages, self.key = dict(stages), key

    @property
    def reads_data(self) -> bool:  # a search scored by synthetic objectives in every stage claims no dataset
        return any(evaluator.reads_data for evaluator in self.stages.values())

    def route(self, tags: dict) -> Evaluator:
        stage = tags.get(self.key)
        if stage not in self.stages:
            raise ValueError(f"a trial tagged {self.key}={stage!r}; this search's stages are {list(self.stages)}")
        return self.stages[stage]

    def settings(self) -> dict:
        return {name: evaluator.fingerprint() for name, evaluator in self.stages.items()}

    def check(self, space: SearchSpace) -> None:
        for name, evaluator in self.stages.items():
            evaluator.check(space)
            if evaluator.relative_objective() is not None:
                raise ConfigError(f"the {name} stage's evaluator scores candidates relative to each other (a rank "
                                  "combination); a staged search needs each trial's own score (setting: proxy)")

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        raise RuntimeError("a staged evaluator scores nothing itself; the loop routes each trial to its stage's")
