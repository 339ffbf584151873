"""The training evaluators on tiny digits: in process, and train.py as a local job."""

import json

import pytest
from omegaconf import OmegaConf

from lsnas.arch import from_zoo
from lsnas.evaluators import TrainEvaluator, TrainJobEvaluator, TrialContext, run_trial
from tests.helpers.config import compose_config

TINY = ["method=random", "dataset.resolution=8", "protocol.model.layers=3", "protocol.model.init_channels=4",
        "protocol.epochs=1", "protocol.batch_size=32", "protocol.trainer.limit_train_batches=4",
        "protocol.trainer.limit_val_batches=2"]
ARCH = from_zoo("darts_v2").to_dict()


def train_evaluator(*overrides, **kw) -> TrainEvaluator:
    cfg = compose_config("search", *TINY, *overrides)
    plain = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("dataset", "protocol", "trainer")}
    return TrainEvaluator(**plain, **kw)


def test_in_process_training_is_scored_on_the_validation_split_with_its_cost(tmp_path):
    evaluator = train_evaluator()
    result = run_trial(evaluator, ARCH, TrialContext(k=0, seed=0, trial_dir=str(tmp_path)))
    assert result["status"] == "complete", result.get("error")
    assert result["score"] == result["metrics"]["val/top1"] and 0.0 <= result["score"] <= 1.0
    assert not any(k.startswith("test/") for k in result["metrics"])
    cost = result["cost"]
    assert (cost["epochs"], cost["steps"]) == (1, 4)
    assert cost["params"] > 0 and cost["macs"] > 0 and cost["seconds"] > 0
    again = run_trial(evaluator, ARCH, TrialContext(k=5, seed=0, trial_dir=str(tmp_path)))
    assert again["score"] == result["score"]  # the same seed, the same training


def test_a_trial_whose_last_epochs_ran_without_validation_is_scored_on_its_final_weights(tmp_path):
    """``check_val_every_n_epoch=2``: with 1 epoch no validation ran during the fit (the trial had no score); the
    final weights are validated as train.py validates them. With 3 epochs the curve shows the epochs' own
    validations only (it repeated the second epoch's value for the third)."""
    every_second = "+protocol.trainer.check_val_every_n_epoch=2"
    one = run_trial(train_evaluator(every_second), ARCH, TrialContext(k=0, seed=0, trial_dir=str(tmp_path / "a")))
    assert one["status"] == "complete", one.get("error")
    assert one["score"] == one["metrics"]["val/top1"] and 0.0 <= one["score"] <= 1.0
    three = run_trial(train_evaluator(every_second, "protocol.epochs=3"), ARCH,
                      TrialContext(k=1, seed=0, trial_dir=str(tmp_path / "b")))
    curve = three["metrics"]["curve"]
    assert curve[0] is None and curve[1] is not None and curve[2] is None


def test_the_fingerprint_is_what_the_score_means():
    base = train_evaluator()
    assert base.fingerprint() == train_evaluator().fingerprint()
    assert base.fingerprint() != train_evaluator("protocol.epochs=2").fingerprint()
    assert base.fingerprint() != train_evaluator(epochs=3).fingerprint()
    assert base.fingerprint() == train_evaluator(timeout_s=60).fingerprint()  # how long we wait is not meaning


def test_a_diverging_training_is_a_nan_trial_and_an_oversized_candidate_is_invalid(tmp_path):
    ctx = TrialContext(k=0, seed=0, trial_dir=str(tmp_path))
    diverged = run_trial(train_evaluator("protocol.optimizer.lr=1e12", "protocol.grad_clip=0"), ARCH, ctx)
    assert diverged["status"] == "nan" and "score" not in diverged and "loss" in diverged["error"]
    too_big = run_trial(train_evaluator(max_params=1000), ARCH, ctx)
    assert too_big["status"] == "invalid" and "evaluator.max_params=1000" in too_big["error"]


@pytest.mark.slow
def test_train_job_runs_train_py_as_a_subprocess_and_reads_its_validation_top1(tmp_path):
    overrides = [o for o in TINY if o.startswith("protocol.") or o.startswith("dataset.")]
    evaluator = TrainJobEvaluator(dataset="digits", protocol="quick", overrides=overrides)
    result = run_trial(evaluator, ARCH, TrialContext(k=0, seed=0, trial_dir=str(tmp_path)))
    assert result["status"] == "complete", result.get("error")
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert result["score"] == metrics["val_top1"] and result["cost"]["epochs"] == 1
    assert result["cost"]["params"] == metrics["params"] and result["artifacts"]["run_dir"] == str(tmp_path / "train")
    # a re-dispatched trial whose job already finished reads it back without training again
    stamp = (tmp_path / "train" / "metrics.json").stat().st_mtime_ns
    assert run_trial(evaluator, ARCH, TrialContext(k=0, seed=0, trial_dir=str(tmp_path)))["score"] == result["score"]
    assert (tmp_path / "train" / "metrics.json").stat().st_mtime_ns == stamp

    broken = TrainJobEvaluator(dataset="digits", protocol="quick", overrides=[*overrides, "protocol.model.layers=1"])
    failed = run_trial(broken, ARCH, TrialContext(k=1, seed=0, trial_dir=str(tmp_path / "b")))
    assert failed["status"] == "failed" and "protocol.model.layers" in failed["error"]


@pytest.mark.slow
def test_train_job_through_submitit_runs_the_job_and_keeps_its_id(tmp_path):
    pytest.importorskip("submitit")
    overrides = [o for o in TINY if o.startswith("protocol.") or o.startswith("dataset.")]
    # cluster=local: submitit's own local executor, the same code path as SLURM short of sbatch
    evaluator = TrainJobEvaluator(dataset="digits", protocol="quick", overrides=overrides, launcher="submitit",
                                  submitit={"cluster": "local", "timeout_min": 10, "tasks_per_node": 1})
    result = run_trial(evaluator, ARCH, TrialContext(k=0, seed=0, trial_dir=str(tmp_path)))
    assert result["status"] == "complete", result.get("error")
    assert result["score"] == json.loads((tmp_path / "train" / "metrics.json").read_text())["val_top1"]
    assert (tmp_path / "job_id").read_text().strip()


def test_a_stopping_driver_passes_the_stop_to_its_train_py_and_the_trial_is_lost_not_failed(tmp_path):
    import sys
    import threading
    import time

    from lsnas.evaluators.base import TrialLost
    from lsnas.utils import preemption

    job = tmp_path / "job.py"  # a train.py stand-in: saves and exits 75 on SIGTERM, as train.py does
    job.write_text("import signal, sys, time\n"
                   "signal.signal(signal.SIGTERM, lambda *a: sys.exit(75))\n"
                   "print('training', flush=True)\ntime.sleep(60)\n")
    evaluator = object.__new__(TrainJobEvaluator)
    evaluator.timeout_s = None
    timer = threading.Timer(1.0, preemption.request)  # the driver's own stop signal arrives meanwhile
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(TrialLost, match="interrupted \\(exit 75\\)"):
            evaluator._run_local([sys.executable, str(job)], tmp_path / "train.log")
    finally:
        timer.cancel()
        preemption.uninstall()
    assert time.monotonic() - started < 20 and "training" in (tmp_path / "train.log").read_text()
