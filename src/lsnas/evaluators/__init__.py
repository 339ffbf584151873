"""Evaluators: how a multi-trial search scores an architecture (train briefly, run train.py as a job, a
training-free proxy, a synthetic objective; inherited supernet weights plug in the same way)."""

from lsnas.evaluators.base import EVALUATORS, Evaluator, InvalidArchitecture, Result, TrialContext, TrialLost, run_trial
from lsnas.evaluators.proxy import ProxyEvaluator, ProxyMeasurement
from lsnas.evaluators.proxy_study import ProxyStudyEvaluator
from lsnas.evaluators.staged import StagedEvaluator
from lsnas.evaluators.supernet import SupernetEvaluator
from lsnas.evaluators.synthetic import SyntheticEvaluator
from lsnas.evaluators.train import TrainEvaluator
from lsnas.evaluators.train_job import TrainJobEvaluator

__all__ = ["EVALUATORS", "Evaluator", "InvalidArchitecture", "ProxyEvaluator", "ProxyMeasurement",
           "ProxyStudyEvaluator", "Result", "StagedEvaluator", "SupernetEvaluator", "SyntheticEvaluator",
           "TrainEvaluator", "TrainJobEvaluator", "TrialContext", "TrialLost", "run_trial"]
