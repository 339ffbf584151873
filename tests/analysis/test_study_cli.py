"""The study command end to end on digits with tiny budgets: two searching methods, the random-sampling
baseline and a method that fails, two sources, two seeds, one target (the source itself) under two recipes;
killed in stage 2 and resumed without rerunning finished runs; failed runs listed and not rerun unasked."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
def quoted(*items):  # a list value on Hydra's command line: elements holding '=' are quoted
    return "[" + ",".join(f'"{item}"' for item in items) + "]"


OVERRIDES = ["study=digits_demo",
             "study.search.common=" + quoted("logger=csv", "trainer.limit_train_batches=2",
                                             "trainer.limit_val_batches=1", "trainer.enable_model_summary=false"),
             "study.search.methods.darts=" + quoted("method=darts", "method.epochs=1", "method.batch_size=16",
                                                    "space.init_channels=4", "space.layers=3"),
             "+study.search.methods.broken=" + quoted("method=darts", "space=resnet")]


def study(tmp_path, *args, **kwargs):
    env = {**os.environ, "LSNAS_OUTPUT_DIR": str(tmp_path)}
    return subprocess.Popen([sys.executable, "-m", "lsnas.analysis", *args, *OVERRIDES], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            **kwargs)


@pytest.mark.slow
def test_study_runs_is_killed_in_stage_two_and_resumes(tmp_path):
    study_dir = tmp_path / "study" / "digits_demo"
    first = study(tmp_path, "run")
    deadline = time.time() + 600
    while not list((study_dir / "transfer").rglob("metrics.json")):  # the first transfer run has finished
        assert first.poll() is None and time.time() < deadline, first.communicate()[0][-4000:]
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its sweep, mid stage 2
    first.wait()
    finished = {p: p.stat().st_mtime_ns for p in (study_dir / "transfer").rglob("metrics.json")}
    assert 1 <= len(finished) < 20

    plan = study(tmp_path, "plan")
    out = plan.communicate(timeout=300)[0]
    assert "stage 1 search: 14 runs: 10 complete, 4 failed" in out and "failed: search/broken/" in out
    assert f"stage 2 transfer: 20 runs: {len(finished)} complete" in out

    second = study(tmp_path, "run")
    out = second.communicate(timeout=900)[0]
    assert second.returncode == 0, out[-4000:]
    assert "search: all 14 runs done or failed (nothing to run)" in out  # failed searches are not rerun unasked
    assert f"transfer: running {20 - len(finished)} of 20 runs" in out
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # finished runs untouched

    table = pd.read_csv(study_dir / "table.csv")
    assert len(table) == 28  # 10 architectures x 2 recipes + 4 failed searches x 2 recipes, listed
    done = table[table["status"] == "complete"]
    assert len(done) == 20 and done["target_top1"].between(0, 100).all() and done["arch_digest"].notna().all()
    failed = table[table["status"] == "failed"]
    assert set(failed["method"]) == {"broken"} and failed["reason"].str.contains("cannot search").all()
    assert set(done["source"]) == {"digits", "digits_8px", "none"}
    assert done.loc[done["source"] == "digits", "source_top1"].notna().all()  # the target is that source
    for name in ("report.md", "report.html", "table.parquet", "accuracy_bars.png"):
        assert (study_dir / name).is_file()
    assert "## (iii) Is random sampling competitive" in (study_dir / "report.md").read_text()
    # every run dir carries its axes, and a transfer run its source run
    metrics = next((study_dir / "transfer" / "darts" / "digits").rglob("metrics.json"))
    config = (metrics.parent / ".hydra" / "config.yaml").read_text()
    assert "job_type: transfer" in config and "method: darts" in config and "group: digits_demo" in config


@pytest.mark.slow
def test_a_stage_runs_in_parallel_through_the_joblib_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    env = {**os.environ, "LSNAS_OUTPUT_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "lsnas.analysis", "search", "study=digits_demo",
                           "~study.search.methods.darts", "~study.search.methods.random", "study.launcher=joblib",
                           'study.launcher_overrides=["hydra.launcher.n_jobs=2"]'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "hydra/launcher=joblib" in proc.stdout and "search: 2 complete" in proc.stdout
    for seed in (0, 1):  # each job ended in a worker process, and said so
        run_dir = tmp_path / "study" / "digits_demo" / "search" / "random_sample" / "none" / "small" / f"seed{seed}"
        assert (run_dir / "arch.json").is_file() and '"complete"' in (run_dir / "study_status.json").read_text()
