"""Stopped runs resume to what an uninterrupted run gives: train.py, a one-shot search and a multi-trial search,
stopped by SIGTERM (the scheduler's preemption: exit 75, nothing final written) or killed with SIGKILL at
several moments, mid-epoch, mid-trial and during a checkpoint write."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.training.checkpointing import check_checkpoint
from lsnas.utils.preemption import INTERRUPTED_EXIT
from tests.test_multitrial_cli import TINY_TRAIN
from tests.test_search_cli import ROOT, TINY, run

TRAIN = ["dataset=digits", "protocol=quick", "protocol.model.layers=3", "protocol.model.init_channels=8",
         "dataset.resolution=16", "protocol.batch_size=32", "protocol.epochs=2", "protocol.cutout=16",
         "protocol.drop_path_prob=0.2", "arch=darts_v2", "logger=none", "trainer.enable_model_summary=false"]
SLOW_WRITES = str(ROOT / "tests" / "helpers" / "slow_checkpoints.py")
STOP_AT = str(ROOT / "tests" / "helpers" / "stop_at.py")


def start(script, *overrides, wrapper=None):
    command = [sys.executable, *([wrapper] if wrapper else []), str(ROOT / script), *overrides]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def stop_when(proc, ready, sig, timeout=300):
    """Send ``sig`` to ``proc``'s process group once ``ready()`` holds; its exit status and stderr."""
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before the moment to stop it:\n{proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, "the moment to stop the run never came"
        time.sleep(0.02)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def saved(path: Path, times: int):
    """A probe: has ``path`` been seen in ``times`` distinct versions yet?"""
    seen = set()

    def ready() -> bool:
        try:
            seen.add(path.stat().st_mtime_ns)
        except FileNotFoundError:
            pass
        return len(seen) >= times
    return ready


def saved_in_epoch(path: Path, epoch: int):
    """A probe: has ``path`` been saved during epoch ``epoch`` (or later)? Counting versions cannot tell the
    last mid-epoch save of an epoch from the end-of-epoch one when the machine is slow enough to see both."""
    seen = set()

    def ready() -> bool:
        try:
            version = path.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if version in seen:
            return False
        seen.add(version)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)["epoch"] >= epoch
        except (OSError, RuntimeError, EOFError, KeyError):  # replaced while being read: look again
            seen.discard(version)
            return False
    return ready


def interrupted(code, err, run_dir):
    assert code == INTERRUPTED_EXIT, err[-3000:]
    assert "interrupted by SIGTERM: saved" in err and f"ckpt_path=last hydra.run.dir={run_dir}" in err


@pytest.fixture(scope="module")
def whole_training(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole")
    run("train.py", *TRAIN, f"hydra.run.dir={run_dir}")
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_train_stopped_by_sigterm_and_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, whole_training):
    run_dir, every = tmp_path / "run", ["checkpoint.every_n_steps=4"]
    last = run_dir / "checkpoints" / "last.ckpt"
    moments = []
    # SIGKILL after the 3rd save (epoch 0, batch 12), SIGTERM a few saves later (saves after its batch), SIGKILL
    # during the next checkpoint write (the writer stalls half-way), then a resume to the end
    code, _ = stop_when(start("train.py", *TRAIN, *every, f"hydra.run.dir={run_dir}"), saved(last, 3),
                        signal.SIGKILL)
    moments.append(code)
    code, err = stop_when(start("train.py", *TRAIN, *every, f"hydra.run.dir={run_dir}", "ckpt_path=last"),
                          saved(last, 5), signal.SIGTERM)
    interrupted(code, err, run_dir)
    assert not (run_dir / "metrics.json").exists()
    writing = lambda: any(last.parent.glob(".last.ckpt.*.tmp"))  # noqa: E731
    code, _ = stop_when(start("train.py", *TRAIN, *every, f"hydra.run.dir={run_dir}", "ckpt_path=last",
                              wrapper=SLOW_WRITES), writing, signal.SIGKILL)
    moments.append(code)
    assert moments == [-signal.SIGKILL] * 2
    check_checkpoint(last)  # the write that was killed left the previous checkpoint whole
    run("train.py", *TRAIN, *every, f"hydra.run.dir={run_dir}", "ckpt_path=last")
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed["weight_digests"] == whole_training["weight_digests"]
    assert (resumed["top1"], resumed["epochs"]) == (whole_training["top1"], whole_training["epochs"])
    assert not list(last.parent.glob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["last_batch:0", "validation:0", "last_batch:1", "validation:1"])
def test_train_stopped_at_an_epochs_end_stops_after_its_validation_and_resumes_to_the_same_metrics(
        tmp_path, whole_training, moment):
    """A stop at an epoch's last batch or during its validation is acted on when the validation ends: Lightning
    resumes a checkpoint saved after the last batch at the next epoch, skipping that validation, and the final
    epoch's ``val_top1`` (what a multi-trial search scores by) came back as None."""
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, STOP_AT, str(ROOT / "train.py"), *TRAIN, f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "STOP_AT": moment})
    interrupted(proc.returncode, proc.stderr, run_dir)
    assert f"(epoch {moment[-1]}, after its validation)" in proc.stderr
    assert not (run_dir / "metrics.json").exists()
    run("train.py", *TRAIN, f"hydra.run.dir={run_dir}", "ckpt_path=last")
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert whole_training["val_top1"] is not None
    for key in ("val_top1", "top1", "epochs", "weight_digests"):
        assert resumed[key] == whole_training[key], key



@pytest.mark.slow
def test_train_validating_every_second_epoch_reports_its_final_weights_when_stopped_or_not(tmp_path):
    """With ``check_val_every_n_epoch=2`` the third and last epoch runs without a validation. ``val_top1`` is the
    final weights' either way: the uninterrupted run reported epoch 2's, while one stopped at the last epoch's last
    batch and resumed (no epoch left) validated its final weights, and the two disagreed."""
    common = [*TRAIN, "protocol.epochs=3", "+trainer.check_val_every_n_epoch=2"]
    run("train.py", *common, f"hydra.run.dir={tmp_path / 'whole'}")
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, STOP_AT, str(ROOT / "train.py"), *common, f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "STOP_AT": "last_batch:2"})
    interrupted(proc.returncode, proc.stderr, run_dir)
    run("train.py", *common, f"hydra.run.dir={run_dir}", "ckpt_path=last")
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert whole["epochs"] == resumed["epochs"] == 3 and whole["val_top1"] is not None
    for key in ("val_top1", "top1", "weight_digests"):
        assert resumed[key] == whole[key], key


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "says"), [
    ("sanity:0", "stopped before its first training step, so nothing was saved and a resume starts afresh"),
    ("test:0", "stopped outside the training loop; its last checkpoint is")])
def test_train_stopped_during_its_sanity_check_or_test_exits_to_be_resumed_and_says_what_is_saved(
        tmp_path, whole_training, moment, says):
    """Outside the training loop Lightning's own SIGTERM handling stops the run: it still exits 75, and the message
    names what is on disk (nothing before the first step; after the training, the checkpoint the test resumes from)."""
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, STOP_AT, str(ROOT / "train.py"), *TRAIN, f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "STOP_AT": moment})
    assert proc.returncode == INTERRUPTED_EXIT, proc.stderr[-3000:]
    assert f"interrupted by SIGTERM: {says}" in proc.stderr
    assert not (run_dir / "metrics.json").exists()
    run("train.py", *TRAIN, f"hydra.run.dir={run_dir}", "ckpt_path=last")
    resumed = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val_top1", "top1", "epochs", "weight_digests"):
        assert resumed[key] == whole_training[key], key

@pytest.mark.slow
def test_a_one_shot_search_stopped_then_killed_mid_epoch_resumes_to_the_same_alphas(tmp_path):
    common = [*TINY, "method=darts", "method.epochs=2", "trainer.limit_train_batches=20", "logger=none"]
    run("search.py", *common, f"hydra.run.dir={tmp_path / 'whole'}")
    run_dir = tmp_path / "stopped"
    every = "checkpoint.every_n_steps=5"  # saves after batches 5, 10, 15, 20 (the epoch's end), 25, ...
    code, err = stop_when(start("search.py", *common, every, f"hydra.run.dir={run_dir}"),
                          saved_in_epoch(run_dir / "checkpoints" / "last.ckpt", 1), signal.SIGTERM)
    interrupted(code, err, run_dir)
    assert "(epoch 1, batch" in err  # saved inside the second epoch
    assert not (run_dir / "arch.json").exists() and not (run_dir / "search_summary.json").exists()
    code, _ = stop_when(start("search.py", *common, every, f"hydra.run.dir={run_dir}", "ckpt_path=last"),
                        saved(run_dir / "checkpoints" / "last.ckpt", 3), signal.SIGKILL)  # then killed, mid-epoch
    assert code == -signal.SIGKILL
    run("search.py", *common, every, f"hydra.run.dir={run_dir}", "ckpt_path=last")
    whole, resumed = (json.loads((d / "search_summary.json").read_text()) for d in (tmp_path / "whole", run_dir))
    assert (resumed["arch_digest"], resumed["weight_digests"]) == (whole["arch_digest"], whole["weight_digests"])



@pytest.mark.slow
def test_a_one_shot_search_stopped_at_its_last_batch_validates_again_when_resumed(tmp_path):
    """Stopped during the final epoch's last batch, the search saves there and stops after that epoch's validation;
    the resumed run has no epoch left to train, so its summary's ``val_top1`` comes from validating the final
    supernet again, equal to the uninterrupted run's."""
    common = [*TINY, "method=darts", "method.epochs=2", "trainer.limit_train_batches=6", "trainer.limit_val_batches=4",
              "logger=none"]
    run("search.py", *common, f"hydra.run.dir={tmp_path / 'whole'}")
    run_dir = tmp_path / "stopped"
    proc = subprocess.run([sys.executable, STOP_AT, str(ROOT / "search.py"), *common, f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "STOP_AT": "last_batch:1"})
    interrupted(proc.returncode, proc.stderr, run_dir)
    assert "(epoch 1, after its validation)" in proc.stderr
    assert not (run_dir / "search_summary.json").exists()
    run("search.py", *common, f"hydra.run.dir={run_dir}", "ckpt_path=last")
    whole, resumed = (json.loads((d / "search_summary.json").read_text()) for d in (tmp_path / "whole", run_dir))
    assert whole["val_top1"] > 0  # 64 validation images: a value to compare, not a degenerate 0
    for key in ("val_top1", "arch_digest", "weight_digests"):
        assert resumed[key] == whole[key], key

def trials(run_dir):
    log = TrialLog.replay(Journal(run_dir).read())
    return log, {k: (log.results[k]["status"], log.results[k].get("score")) for k in sorted(log.results)}


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inprocess", "threads", "ray"])
def test_a_multi_trial_search_stopped_mid_trial_leaves_it_pending_and_resumes_to_the_same_scores(tmp_path, executor):
    """Whichever executor runs the trial (the driver's process, a thread, a Ray worker process), the trial that was
    running is left pending, not recorded as failed or lost, and the resumed search scores what the uninterrupted
    one did."""
    if executor == "ray":
        pytest.importorskip("ray")
    common = ["method=random", "method.num_trials=3", *TINY_TRAIN, "protocol.trainer.limit_train_batches=40",
              "logger=none", f"evaluator.executor={executor}"]
    run("search.py", *common, f"hydra.run.dir={tmp_path / 'whole'}")
    run_dir = tmp_path / "stopped"
    journal = run_dir / "trials.jsonl"

    def second_trial_training() -> bool:  # trial 1 is asked when trial 0's result is journaled, and starts at once
        lines = journal.read_text().splitlines() if journal.exists() else []
        return any('"event":"ask"' in line and '"k":1,' in line for line in lines)
    code, err = stop_when(start("search.py", *common, f"hydra.run.dir={run_dir}"), second_trial_training,
                          signal.SIGTERM)
    interrupted(code, err, run_dir)
    log, finished = trials(run_dir)
    assert 1 in log.pending() and all(status == "complete" for status, _ in finished.values())
    assert not (run_dir / "arch.json").exists() and "train it with" not in err
    summary = json.loads((run_dir / "search_summary.json").read_text())  # progress, marked unfinished
    assert not summary["completed"] and summary["stop_reason"].startswith("interrupted by SIGTERM")
    run("search.py", *common, f"hydra.run.dir={run_dir}", "ckpt_path=last")
    log, resumed = trials(run_dir)
    assert resumed == trials(tmp_path / "whole")[1]
    results = [e["k"] for e in Journal(run_dir).read() if e["event"] == "result"]
    assert sorted(results) == [0, 1, 2]  # none evaluated twice
