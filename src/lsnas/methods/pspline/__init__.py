"""Polyharmonic-spline NAS (Finkler et al., "Large Scale Neural Architecture Search with Polyharmonic
Splines", 2021): a surrogate fitted to very few measured points, each a full training run.

    lsnas.methods.pspline.load(run_dir).predict(arch)     # the fitted surrogate of a finished search
"""

from lsnas.methods.pspline.outputs import Surrogate, load
from lsnas.methods.pspline.search import PolyharmonicSpline, SplineSearch, Suggestion

__all__ = ["PolyharmonicSpline", "SplineSearch", "Suggestion", "Surrogate", "load"]
