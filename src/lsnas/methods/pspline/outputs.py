"""What a spline search leaves in its run dir besides the journal: the surrogate (``surrogate.json``: the
space's settings, the measured points and the spline's settings, refitted exactly on ``load``), the trace of
predicted against measured scores, and 2-D slices of the fitted surface through the best point.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lsnas.arch import ARCH_FILENAME, Architecture
from lsnas.methods.multitrial import runner
from lsnas.methods.multitrial.strategy import SearchState
from lsnas.methods.pspline.search import PolyharmonicSpline, read_points_csv
from lsnas.methods.pspline.surrogate import Spline
from lsnas.spaces import space_from_config
from lsnas.utils.io import atomic_write_json

SURROGATE_FILENAME = "surrogate.json"
log = logging.getLogger(__name__)


class Surrogate:
    """The fitted spline over a space: ``predict(arch)`` for any architecture of the space."""

    def __init__(self, space_settings: dict, points: list[dict], kernel: str = "cubic", degree: int = 1):
        self.space_settings, self.kernel, self.degree = space_settings, kernel, degree
        self.space = space_from_config(space_settings)
        self.archs = [Architecture.from_dict(p["arch"]) for p in points]
        self.scores = np.array([p["score"] for p in points], dtype=np.float64)
        self.spline = Spline(np.array([self.space.encode(a) for a in self.archs]), self.scores, kernel, degree)

    def predict(self, arch: Architecture | list[Architecture]) -> float | np.ndarray:
        archs = [arch] if isinstance(arch, Architecture) else list(arch)
        values = self.spline(np.array([self.space.encode(a) for a in archs]))
        return float(values[0]) if isinstance(arch, Architecture) else values

    def to_dict(self) -> dict:
        return {"space": self.space_settings, "kernel": self.kernel, "degree": self.degree,
                "points": [{"arch": a.to_dict(), "score": float(s)} for a, s in zip(self.archs, self.scores)]}


def load(run_dir: str | Path) -> Surrogate:
    data = json.loads((Path(run_dir) / SURROGATE_FILENAME).read_text())
    return Surrogate(data["space"], data["points"], data["kernel"], data["degree"])


def write(cfg: DictConfig, run_dir: Path, state: SearchState) -> Surrogate | None:
    """The surrogate and the plots over every measured point: this run's trials and ``points_csv``'s. When a
    point measured elsewhere beats every trial, it is the search's answer: arch.json and the summary's best
    say so (``best_from: points_csv``)."""
    from lsnas.methods.pspline.plots import plot_spline_slices, plot_spline_trace

    settings = cfg.method.strategy
    space_settings = OmegaConf.to_container(cfg.space, resolve=True)
    space = space_from_config(space_settings)
    external = (read_points_csv(space, settings.points_csv, unit=settings.get("points_unit", "auto"))
                if settings.get("points_csv") else [])
    measured = [(t.arch, t.score) for t in state.completed()]
    if len(measured) + len(external) < 2:
        return None
    try:
        surrogate = Surrogate(space_settings, [{"arch": a.to_dict(), "score": s} for a, s in measured + external],
                              settings.get("kernel", "cubic"), settings.get("degree", 1))
    except Exception as e:  # noqa: BLE001  (the search's results stand without a surrogate)
        log.warning("no surrogate written: %s", e)
        return None
    atomic_write_json(run_dir / SURROGATE_FILENAME, surrogate.to_dict())
    stop = None
    summary_path = run_dir / "search_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if (summary.get("stop_reason") or "").startswith("epsilon"):
        last = PolyharmonicSpline(1, epsilon=settings.epsilon).converged(state)
        stop = {"k": last.k, "epsilon": settings.epsilon} if last else None
    plot_spline_trace(state.trials, run_dir / "spline_trace.png", stop=stop)
    best_arch, best_score = max(measured + external, key=lambda p: p[1])
    trial_best = state.best()
    if external and (trial_best is None or best_score > trial_best.score):
        best_arch.save(run_dir / ARCH_FILENAME)
        summary.update({"best_score": best_score, "best_trial": None, "best_from": "points_csv",
                        "arch_digest": best_arch.digest, "genotype": best_arch.genotype})
        atomic_write_json(summary_path, summary)
        log.info("the best point was measured elsewhere (%s, score %.4f): %s holds it", settings.points_csv,
                 best_score, run_dir / ARCH_FILENAME)
    plot_spline_slices(surrogate.spline, space, best_arch, run_dir / "spline_slices.png",
                       measured=[a for a, _ in measured], external=[a for a, _ in external])
    return surrogate


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    """``method=pspline``: the multi-trial search, then the surrogate and its plots."""
    state = runner.run_configured(cfg, run_dir)
    write(cfg, Path(run_dir), state)
    return json.loads((Path(run_dir) / "search_summary.json").read_text())
