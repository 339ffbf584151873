"""Polyharmonic-spline search: the spline, the design, snapping, rejection, the search, its outputs."""

import csv
import random

import numpy as np
import pytest

from lsnas.errors import ConfigError
from lsnas.methods import search
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.methods.pspline import SplineSearch, load
from lsnas.methods.pspline.surrogate import FitRejected, fit, initial_design, nested_maximum
from lsnas.spaces import space_from_config
from lsnas.spaces.resnet import ResNetSpace
from tests.helpers.config import compose_config

SPLINE_SPACE = compose_config("search", "method=pspline").space


def grid_space(n=11):
    """A 2-D grid of n x n feasible points (two stage widths from 1 to n)."""
    return ResNetSpace(dims={"a": {"path": "widths.0", "range": [1, n]}, "b": {"path": "widths.1", "range": [1, n]}})


def test_the_spline_interpolates_its_points_exactly():
    rng = np.random.default_rng(0)
    x, y = rng.random((15, 3)), rng.random(15)
    spline = fit(x, y)
    np.testing.assert_allclose(spline(x), y, atol=1e-9)
    # phi(r) = r^3 and a linear term: a linear function is reproduced everywhere
    z = rng.random((50, 3))
    linear = fit(x, x @ [1.0, -2.0, 0.5] + 3)
    np.testing.assert_allclose(linear(z), z @ [1.0, -2.0, 0.5] + 3, atol=1e-8)


def test_the_initial_design_has_2d_plus_3_points():
    points = np.array(initial_design(np.full(3, 0.25)))
    assert len(points) == 2 * 3 + 3
    np.testing.assert_array_equal(points[:3], [[1, 1, 1], [0, 0, 0], [0.25, 0.25, 0.25]])
    np.testing.assert_array_equal(points[3:6], np.eye(3))       # at min, one dimension at max
    np.testing.assert_array_equal(points[6:], 1 - np.eye(3))    # at max, one dimension at min


def test_the_default_design_centre_is_both_paper_tables_centre():
    resnet = space_from_config(SPLINE_SPACE)
    centre = SplineSearch(resnet).design()[2].genotype  # Table 1: half of each maximum
    assert centre["stem_width"] == 75 and centre["widths"] == [150, 300, 600, 1200]
    blresnext = space_from_config(compose_config("search", "method=pspline", "space=blresnext").space)
    centre = SplineSearch(blresnext).design()[2]  # Table 2: (alpha, beta, phi) = (4, 4, 1.5)
    assert centre == blresnext.with_values({"alpha": 4, "beta": 4, "phi": 1.5})
    assert (centre.genotype["alpha"], centre.genotype["phi"]) == (4, 1.5)
    # the other rules: half of the maximum clipped (phi's is the box's edge, 1.0), and the midpoint
    assert SplineSearch(blresnext, centre="half_max").design()[2].genotype["phi"] == 1.0
    mid = SplineSearch(resnet, centre="midpoint").design()[2].genotype
    assert mid["stem_width"] == 91 and mid["widths"] == [166, 316, 616, 1216]
    assert len(SplineSearch(resnet).design()) == 13
    with pytest.raises(ConfigError, match="method.strategy.centre must be one of"):
        SplineSearch(resnet, centre="middle")


def test_an_unstable_fit_is_rejected_and_the_turn_explores_instead():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5 + 1e-15]])
    with pytest.raises(FitRejected):
        fit(x, np.array([0.0, 1.0, 1.0, 0.2, 0.9]))
    space = grid_space()
    search_ = SplineSearch(space)
    for arch in search_.design():
        search_.tell(arch, 0.5)
    search_.fit_tolerance = -1.0  # every fit fails its check
    suggestion = search_.ask(random.Random(0))
    assert suggestion.origin == "random" and "fit rejected" in suggestion.note
    assert suggestion.arch.digest not in search_.asked


def test_proposals_are_snapped_and_kept_away_from_asked_points():
    space = grid_space()
    search_ = SplineSearch(space, min_distance=0.15)
    for arch in search_.design():
        x = space.encode(arch)
        search_.tell(arch, float(-np.sum((x - 0.4) ** 2)))
    suggestion = search_.ask(random.Random(0))
    x = space.encode(suggestion.arch)
    assert suggestion.origin == "spline" and np.allclose(x * 10, np.round(x * 10))  # on the grid
    asked = np.array([space.encode(a) for a in search_.asked.values()])
    assert np.linalg.norm(asked - x, axis=1).min() >= 0.15
    assert suggestion.predicted == pytest.approx(float(search_.fit()(x)[0]))
    far = SplineSearch(space, min_distance=5.0)
    far.measured, far.asked = search_.measured, search_.asked
    assert far.ask(random.Random(0)).origin == "random"  # no candidate is that far: explore


def test_nested_monte_carlo_finds_a_peak():
    x, y = nested_maximum(lambda p: -np.sum((p - 0.3) ** 2, axis=1), 3, seed=0, samples=256, rounds=8)
    assert np.allclose(x[0], 0.3, atol=1e-3) and y[0] == y.max()


def test_on_a_smooth_function_over_a_grid_the_search_finds_the_optimum_within_its_budget():
    space = grid_space(11)  # 121 points
    optimum = np.array([0.3, 0.7])

    def objective(arch):
        x = space.encode(arch)
        return float(np.exp(-np.sum((x - optimum) ** 2) / 0.18) + 0.1 * np.sin(3 * x[0]))

    best = max(objective(space.decode(np.array([i, j]) / 10)) for i in range(11) for j in range(11))
    search_ = SplineSearch(space)
    rng = random.Random(0)
    for _ in range(20):  # the 7-point design and 13 proposals
        suggestion = search_.ask(rng)
        search_.tell(suggestion.arch, objective(suggestion.arch))
    assert max(score for _, score in search_.measured.values()) == pytest.approx(best)


def test_results_measured_elsewhere_continue_a_search(tmp_path):
    space = space_from_config(SPLINE_SPACE)
    path = tmp_path / "measured.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*space.dim_names, "score"])
        for arch in SplineSearch(space).design():
            g = arch.genotype
            writer.writerow([g["stem_width"], *g["widths"], g["widths"][3] / 2400])
    search_ = SplineSearch(space)
    assert search_.tell_csv(str(path)) == 13
    suggestion = search_.ask(random.Random(0))
    assert suggestion.origin == "spline" and suggestion.predicted is not None


def run(tmp_path, *overrides):
    cfg = compose_config("search", "method=pspline", "evaluator=synthetic", "evaluator.objective=smooth",
                         "logger=none", *overrides)
    return search(cfg, tmp_path)


def test_a_spline_search_writes_its_surrogate_and_plots_and_resumes(tmp_path):
    summary = run(tmp_path, "method.num_trials=15", "method.strategy.stop_on_epsilon=false")
    log = TrialLog.replay(Journal(tmp_path).read())
    origins = [log.asks[k]["tags"]["origin"] for k in sorted(log.asks)]
    assert origins == ["design"] * 13 + ["spline"] * 2 and summary["trials"] == 15
    assert all("predicted" in log.asks[k]["tags"] for k in (13, 14))
    for name in ("surrogate.json", "spline_trace.png", "spline_slices.png", "arch.json"):
        assert (tmp_path / name).stat().st_size > 0
    surrogate = load(tmp_path)
    space = space_from_config(SPLINE_SPACE)
    archs = [space.decode(space.encode(space.sample(random.Random(0))))]
    from lsnas.arch import Architecture

    measured = [(Architecture.from_dict(log.asks[k]["arch"]), log.results[k]["score"]) for k in sorted(log.results)]
    np.testing.assert_allclose(surrogate.predict([a for a, _ in measured]), [s for _, s in measured], atol=1e-8)
    assert isinstance(surrogate.predict(archs[0]), float)
    resumed = run(tmp_path, "method.num_trials=17", "method.strategy.stop_on_epsilon=false", "ckpt_path=last")
    assert resumed["trials"] == 17


def test_the_search_stops_once_a_prediction_is_within_epsilon(tmp_path, caplog):
    with caplog.at_level("INFO"):
        summary = run(tmp_path, "method.num_trials=40", "method.strategy.epsilon=0.5")
    log = TrialLog.replay(Journal(tmp_path).read())
    assert summary["trials"] == 14  # the design, then one proposal predicted within 0.5 of its measurement
    assert summary["completed"] is True and summary["stop_reason"].startswith("epsilon: trial 13 measured")
    assert "the search stops: epsilon: trial 13" in caplog.text
    last = log.asks[13]["tags"]
    assert abs(log.results[13]["score"] - last["predicted"]) <= 0.5



def test_csv_points_keep_float_dims_and_snap_to_the_feasible_set(tmp_path):
    space = space_from_config(compose_config("search", "method=pspline", "space=blresnext").space)
    path = tmp_path / "measured.csv"
    path.write_text("alpha,beta,phi,score\n2,4,1.5,0.7\n3,5,1.47,0.6\n")
    search_ = SplineSearch(space)
    assert search_.tell_csv(str(path)) == 2
    assert sorted(a.genotype["phi"] for a, _ in search_.measured.values()) == [1.5, 1.5]


def write_points(path, space, archs, score, header_score="score"):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*space.dim_names, header_score])
        for arch in archs:
            g = arch.genotype
            writer.writerow([g["stem_width"], *g["widths"], score(arch)])


def test_csv_scores_in_percent_are_read_as_fractions(tmp_path):
    space = space_from_config(SPLINE_SPACE)
    path = tmp_path / "measured.csv"
    archs = SplineSearch(space).design()[:3]
    write_points(path, space, archs, lambda a: 100 * a.genotype["widths"][3] / 2400)
    search_ = SplineSearch(space)
    search_.tell_csv(str(path))
    assert max(s for _, s in search_.measured.values()) == pytest.approx(1.0)
    as_given = SplineSearch(space)
    as_given.tell_csv(str(path), unit="fraction")
    assert max(s for _, s in as_given.measured.values()) == pytest.approx(100.0)


def test_points_measured_elsewhere_count_towards_the_design_and_can_be_the_answer(tmp_path):
    space = space_from_config(SPLINE_SPACE)
    path = tmp_path / "measured.csv"
    # four points measured elsewhere: the run asks only the 9 design points a full 13-point design still needs
    elsewhere = [space.sample(random.Random(i)) for i in range(4)]
    write_points(path, space, elsewhere, lambda a: 0.99 if a == elsewhere[0] else 0.0)
    summary = run(tmp_path, "method.num_trials=11", "method.strategy.stop_on_epsilon=false",
                  f"method.strategy.points_csv={path}")
    log = TrialLog.replay(Journal(tmp_path).read())
    origins = [log.asks[k]["tags"]["origin"] for k in sorted(log.asks)]
    assert origins == ["design"] * 9 + ["spline"] * 2
    # the smooth objective stays below 0.99: the CSV's point is the answer, with the plots and the surrogate
    assert summary["best_from"] == "points_csv" and summary["best_score"] == 0.99
    from lsnas.arch import Architecture

    assert Architecture.load(tmp_path / "arch.json") == elsewhere[0]
    assert len(load(tmp_path).archs) == 11 + 4


def test_a_search_goes_on_over_a_grown_box_and_refuses_a_shrunk_one(tmp_path, caplog):
    base = ("space=blresnext", "method.strategy.stop_on_epsilon=false")
    run(tmp_path, *base, "method.num_trials=10")
    with caplog.at_level("INFO"):
        summary = run(tmp_path, *base, "method.num_trials=12", "space.dims.phi.range=[1.0,3.0]", "ckpt_path=last")
    assert "the box grows: space.dims.phi.range" in caplog.text
    log = TrialLog.replay(Journal(tmp_path).read())
    assert [log.asks[k]["tags"]["origin"] for k in (10, 11)] == ["spline", "spline"]  # no new design
    assert summary["trials"] == 12
    with pytest.raises(ConfigError, match="space.dims.alpha.range"):
        run(tmp_path, *base, "method.num_trials=13", "space.dims.phi.range=[1.0,3.0]",
            "space.dims.alpha.range=[3,8]", "ckpt_path=last")
