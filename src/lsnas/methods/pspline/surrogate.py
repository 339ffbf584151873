"""The polyharmonic-spline surrogate (Finkler et al., 2021): interpolate measured scores over the unit box
of a space's searched dimensions, check the fit, and find its maximum by nested quasi-Monte Carlo.

s(x) = sum_j c_j phi(||x - x_j||) + p(x), phi(r) = r^3 (``kernel="cubic"``) and p linear (``degree=1``), is
scipy's ``RBFInterpolator``; the other polyharmonic kernels (``linear``, ``thin_plate_spline``, ``quintic``)
are selectable. It solves the augmented system by LU, not the paper's pivoting QR; the fit is instead checked
(``check_fit``): an interpolant that does not reproduce its own points to ``tolerance`` (an ill-conditioned
system) is rejected, never used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.stats import qmc

log = logging.getLogger(__name__)
POLYHARMONIC = ("cubic", "linear", "thin_plate_spline", "quintic")


class FitRejected(Exception):
    """The interpolant failed its check (singular or ill-conditioned system)."""


@dataclass
class Spline:
    points: np.ndarray   # n x d, unit box
    values: np.ndarray   # n
    kernel: str = "cubic"
    degree: int = 1

    def __post_init__(self):
        if self.kernel not in POLYHARMONIC:
            raise ValueError(f"kernel must be a polyharmonic one of {POLYHARMONIC}, got {self.kernel!r}")
        self.points = np.atleast_2d(np.asarray(self.points, dtype=np.float64))
        self.values = np.asarray(self.values, dtype=np.float64).reshape(-1)
        try:
            self._rbf = RBFInterpolator(self.points, self.values, kernel=self.kernel, degree=self.degree)
        except (np.linalg.LinAlgError, ValueError) as e:
            raise FitRejected(f"the spline system cannot be solved: {e}") from None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._rbf(np.atleast_2d(np.asarray(x, dtype=np.float64)))

    def residual(self) -> float:
        """The largest |s(x_j) - y_j| over the fitted points (0 for an exact interpolant)."""
        return float(np.max(np.abs(self(self.points) - self.values)))


def fit(points: np.ndarray, values: np.ndarray, kernel: str = "cubic", degree: int = 1,
        tolerance: float = 1e-6) -> Spline:
    """The checked interpolant: ``FitRejected`` when it misses a point by more than ``tolerance`` times the
    spread of the values (or 1, for constant values)."""
    spline = Spline(points, values, kernel, degree)
    scale = float(np.ptp(spline.values)) or 1.0
    residual = spline.residual()
    if not np.isfinite(residual) or residual > tolerance * scale:
        raise FitRejected(f"the spline misses its own points by {residual:.3g} (> {tolerance:g} x {scale:.3g}): "
                          "the system is ill-conditioned")
    return spline


def nested_maximum(fn, dim: int, seed: int, samples: int = 2048, rounds: int = 6,
                   shrink: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Nested Monte Carlo over the unit box with scrambled Halton points: sample the box, shrink it around the
    best point by ``shrink`` per side, repeat. Returns every sampled point and its value, best first."""
    sampler = qmc.Halton(d=dim, scramble=True, seed=seed)
    lo, hi = np.zeros(dim), np.ones(dim)
    xs, ys = [], []
    for _ in range(rounds):
        x = qmc.scale(sampler.random(samples), lo, hi) if np.all(hi > lo) else np.tile(lo, (samples, 1))
        y = fn(x)
        xs.append(x)
        ys.append(y)
        best = x[int(np.argmax(y))]
        half = (hi - lo) * shrink / 2
        lo, hi = np.clip(best - half, 0, 1), np.clip(best + half, 0, 1)
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = np.argsort(-y, kind="stable")
    return x[order], y[order]


def initial_design(centre: np.ndarray) -> list[np.ndarray]:
    """The paper's 2d+3 points in the unit box: all at max, all at min, the centre, d points at min with one
    dimension at max and d points at max with one dimension at min."""
    d = len(centre)
    points = [np.ones(d), np.zeros(d), np.asarray(centre, dtype=np.float64)]
    for i in range(d):
        p = np.zeros(d)
        p[i] = 1.0
        points.append(p)
    for i in range(d):
        p = np.ones(d)
        p[i] = 0.0
        points.append(p)
    return points
