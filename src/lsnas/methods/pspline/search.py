"""Polyharmonic-spline search (``method=pspline``): the paper's loop as a strategy, and a Python ask/tell API.

1. The initial design: 2d+3 points (``surrogate.initial_design``), snapped to feasible architectures. The
   centre (``centre``) is, per dim, half of its maximum where that lies inside the box and the box's midpoint
   where it does not (``half_max_inside``: the rule that gives both of the paper's centres, ResNet-18's
   (75, 150, 300, 600, 1200) and BLResNeXt's (alpha, beta, phi) = (4, 4, 1.5), whose phi range [1, 2] has its
   half maximum on the edge); or half of each maximum clipped to the box (``half_max``), or the midpoint
   (``midpoint``).
2. Fit the spline to every measured point (``fit``); a fit that fails its check is reported and not used:
   that turn proposes a random unmeasured architecture instead.
3. Propose the spline's maximum (``surrogate.nested_maximum``), snapped to the space's feasible set
   (``space.decode``), and at least ``min_distance`` (unit-box distance) from every point asked so far;
   the best sampled candidate that qualifies wins. Its predicted score is journaled with it.
4. Stop when a proposal's measured score is within ``epsilon`` of its prediction (``stop_on_epsilon``) or
   the budget (``num_trials``) ends.

``SplineSearch`` is the same logic over points told by hand (results of another cluster, a CSV), so a user
can continue a search anywhere::

    search = SplineSearch(space)
    search.tell_csv("measured.csv")            # columns: the space's dims (c1, g1, ...) and score
    arch, predicted = search.ask()
"""

from __future__ import annotations

import csv
import logging
import random
from dataclasses import dataclass

import numpy as np

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods.multitrial.strategy import DONE, STRATEGIES, Proposal, SearchState, Strategy, Trial
from lsnas.methods.pspline.surrogate import POLYHARMONIC, FitRejected, Spline, fit, initial_design, nested_maximum
from lsnas.spaces.base import SearchSpace

log = logging.getLogger(__name__)
CENTRES = ("half_max_inside", "half_max", "midpoint")


@dataclass
class Suggestion:
    arch: Architecture
    predicted: float | None      # the spline's value at the snapped point (None: not from a fit)
    origin: str                  # design | spline | random (fit rejected, or no candidate far enough)
    note: str = ""


class SplineSearch:
    """The spline search over told points: ``tell`` measured architectures, ``ask`` for the next one."""

    def __init__(self, space: SearchSpace, kernel: str = "cubic", degree: int = 1, centre: str = "half_max_inside",
                 min_distance: float = 0.02, mc_samples: int = 2048, mc_rounds: int = 6, mc_shrink: float = 0.5,
                 fit_tolerance: float = 1e-6):
        if kernel not in POLYHARMONIC:
            raise ConfigError(f"method.strategy.kernel must be one of {POLYHARMONIC}, got {kernel!r}")
        if centre not in CENTRES:
            raise ConfigError(f"method.strategy.centre must be one of {CENTRES}, got {centre!r}")
        if not (space.supports("encode") and space.supports("decode")):
            raise ConfigError(f"the spline search needs a space that encodes to a box; {space.name!r} cannot")
        self.space, self.kernel, self.degree, self.centre = space, kernel, int(degree), centre
        self.min_distance, self.fit_tolerance = float(min_distance), float(fit_tolerance)
        self.mc = {"samples": int(mc_samples), "rounds": int(mc_rounds), "shrink": float(mc_shrink)}
        self.dim = len(space.encode(space.sample(random.Random(0))))
        self.measured: dict[str, tuple[Architecture, float]] = {}   # digest -> (arch, score)
        self.asked: dict[str, Architecture] = {}                     # measured or pending

    # -- telling --------------------------------------------------------------------------------
    def tell(self, arch: Architecture, score: float | None) -> None:
        """A measured architecture (``score`` None: asked but failed or pending; it is never proposed again)."""
        self.asked[arch.digest] = arch
        if score is not None and np.isfinite(score):
            self.measured[arch.digest] = (arch, float(score))

    def tell_csv(self, path: str, score_column: str = "score", unit: str = "auto") -> int:
        """Measured points from a CSV whose columns are the space's dims (by name) and the score. Scores are
        fractions (accuracies in [0, 1], the evaluators' unit); ``unit=percent`` divides them by 100, and
        ``auto`` does so when any score exceeds 1."""
        rows = read_points_csv(self.space, path, score_column, unit)
        for arch, score in rows:
            self.tell(arch, score)
        return len(rows)

    # -- the design -----------------------------------------------------------------------------
    def centre_point(self) -> np.ndarray:
        """The design's centre in unit-box coordinates (choices dims always at their middle)."""
        if self.centre == "midpoint" or not hasattr(self.space, "dims"):
            return np.full(self.dim, 0.5)
        centre = []
        for d in self.space.dims:
            half = d.to_unit(d.high / 2) if d.choices is None else 0.5
            inside = 0.0 < half < 1.0
            centre.append(float(np.clip(half, 0, 1)) if inside or self.centre == "half_max" else 0.5)
        return np.array(centre)

    def design_todo(self) -> list[Architecture]:
        """The design points still to ask: those not asked and not within ``min_distance`` of a point asked,
        while fewer points than a full design's 2d+3 are known. Points measured elsewhere (``tell_csv``) or
        before the box was extended count towards the design, so a search continued on an extended box goes
        straight to the spline's proposal, as the paper did."""
        room = 2 * self.dim + 3 - len(self.asked)
        if room <= 0:
            return []
        asked = np.array([self.space.encode(a) for a in self.asked.values()]).reshape(-1, self.dim)
        todo = []
        for arch in self.design():
            near = len(asked) and np.min(np.linalg.norm(asked - self.space.encode(arch), axis=1)) < self.min_distance
            if arch.digest not in self.asked and not near:
                todo.append(arch)
        return todo[:room]

    def design(self) -> list[Architecture]:
        """The initial design's architectures, in order, without repeats (snapping may merge points)."""
        seen, archs = set(), []
        for point in initial_design(self.centre_point()):
            arch = self.space.decode(point)
            if arch.digest not in seen:
                seen.add(arch.digest)
                archs.append(arch)
        return archs

    # -- fitting and asking ---------------------------------------------------------------------
    def points(self) -> tuple[np.ndarray, np.ndarray]:
        archs = list(self.measured.values())
        return (np.array([self.space.encode(a) for a, _ in archs]), np.array([s for _, s in archs]))

    def fit(self) -> Spline:
        x, y = self.points()
        if len(y) < self.dim + 1:  # a linear term in d dimensions needs d + 1 points
            raise FitRejected(f"{len(y)} measured points are too few for a spline in {self.dim} dimensions")
        return fit(x, y, self.kernel, self.degree, self.fit_tolerance)

    def ask(self, rng: random.Random | None = None) -> Suggestion | None:
        """The next architecture to measure: the next design point not yet asked, then the spline's maximum
        (None when nothing unasked can be found)."""
        rng = rng or random.Random(len(self.asked))
        for arch in self.design_todo():
            return Suggestion(arch, None, "design")
        try:
            spline = self.fit()
        except FitRejected as e:
            log.warning("spline fit rejected (%s); proposing a random architecture this turn", e)
            return self._random(rng, f"fit rejected: {e}")
        asked = np.array([self.space.encode(a) for a in self.asked.values()])
        candidates, _ = nested_maximum(spline, asked.shape[1], seed=rng.randrange(2 ** 32), **self.mc)
        tried = set()
        for point in candidates:
            arch = self.space.decode(point)
            if arch.digest in tried or arch.digest in self.asked:
                continue
            tried.add(arch.digest)
            snapped = self.space.encode(arch)
            if np.min(np.linalg.norm(asked - snapped, axis=1)) >= self.min_distance:
                return Suggestion(arch, float(spline(snapped)[0]), "spline")
        return self._random(rng, f"no candidate at least min_distance={self.min_distance} from the asked points")

    def _random(self, rng: random.Random, note: str) -> Suggestion | None:
        for _ in range(1000):
            arch = self.space.sample(rng)
            if arch.digest not in self.asked:
                return Suggestion(arch, None, "random", note)
        return None


@STRATEGIES.register("pspline")
class PolyharmonicSpline(Strategy):
    """``SplineSearch`` as a multi-trial strategy: its points are the journal's trials (and, optionally,
    ``points_csv``: results measured elsewhere)."""

    requires = ("sample", "encode", "decode")

    def __init__(self, num_trials: int, epsilon: float = 0.005, stop_on_epsilon: bool = True,
                 points_csv: str | None = None, points_unit: str = "auto", **settings):
        super().__init__(num_trials)
        self.epsilon, self.stop_on_epsilon, self.points_csv = float(epsilon), bool(stop_on_epsilon), points_csv
        self.points_unit = points_unit
        self.settings = settings
        self._external: list | None = None  # points_csv's points, read once (a cache: the file is the state)

    def external_points(self, space: SearchSpace) -> list[tuple[Architecture, float]]:
        """``points_csv``'s (architecture, score) pairs, scores as fractions."""
        if self._external is None:
            self._external = read_points_csv(space, self.points_csv, unit=self.points_unit) if self.points_csv else []
            if self._external:
                log.info("%d points measured elsewhere read from %s; they count towards the design (scores as "
                         "fractions; epsilon=%g is %g percentage points)", len(self._external), self.points_csv,
                         self.epsilon, 100 * self.epsilon)
        return self._external

    def search_from(self, state: SearchState) -> SplineSearch:
        search = SplineSearch(state.space, **self.settings)
        for arch, score in self.external_points(state.space):
            search.tell(arch, score)
        for trial in state.trials:
            search.tell(trial.arch, trial.score)
        return search

    def converged(self, state: SearchState) -> Trial | None:
        """The last finished spline proposal, when it was predicted within ``epsilon``."""
        finished = [t for t in state.trials if t.result is not None and t.tags.get("origin") == "spline"]
        last = max(finished, key=lambda t: t.result.get("time", 0.0), default=None)
        if last and last.complete and abs(last.score - last.tags["predicted"]) <= self.epsilon:
            return last
        return None

    def ask(self, state: SearchState, rng: random.Random):
        if not self.budget_left(state):
            return DONE
        if self.stop_on_epsilon and (last := self.converged(state)) is not None:
            self.stop_reason = (f"epsilon: trial {last.k} measured {last.score:.4f}, predicted "
                                f"{last.tags['predicted']:.4f} (within method.strategy.epsilon={self.epsilon:g})")
            return DONE
        search = self.search_from(state)
        if not search.design_todo() and any(t.result is None and t.tags.get("origin") == "design"
                                            for t in state.trials):
            return None  # the first fit waits for the whole design
        suggestion = search.ask(rng)
        if suggestion is None:
            return DONE
        tags = {"origin": suggestion.origin}
        if suggestion.predicted is not None:
            tags["predicted"] = suggestion.predicted
        if suggestion.note:
            tags["note"] = suggestion.note
        return Proposal(suggestion.arch, tags)



SCORE_UNITS = ("auto", "fraction", "percent")


def read_points_csv(space: SearchSpace, path: str, score_column: str = "score",
                    unit: str = "auto") -> list[tuple[Architecture, float]]:
    """(architecture, score) pairs from a CSV of measured points: the space's dims by name (a range's value
    snapped to its feasible set) and the score, returned as a fraction. ``unit``: fraction | percent | auto
    (percent when any score exceeds 1: accuracies are at most 1 as fractions)."""
    if unit not in SCORE_UNITS:
        raise ConfigError(f"method.strategy.points_unit must be one of {SCORE_UNITS}, got {unit!r}")
    names = getattr(space, "dim_names", None)
    if names is None:
        raise ConfigError(f"the {space.name!r} space has no named dims to read a CSV by")
    rows = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            missing = [n for n in (*names, score_column) if n not in row]
            if missing:
                raise ConfigError(f"{path}: missing column(s) {missing}; expected {names + [score_column]}")
            try:
                values = {d.name: row[d.name] if d.choices else d.from_unit(d.to_unit(float(row[d.name])))
                          for d in space.dims}
                score = float(row[score_column])
            except ValueError as e:
                raise ConfigError(f"{path}, line {line}: {e}") from None
            rows.append((space.with_values(values), score))
    percent = unit == "percent" or (unit == "auto" and any(s > 1 for _, s in rows))
    if percent:
        log.info("%s: scores read as percentages (divided by 100 to match the evaluators' fractions)", path)
    return [(arch, score / 100 if percent else score) for arch, score in rows]
