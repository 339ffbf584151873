"""train.py end to end, as users run it (a subprocess per command)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ["dataset=digits", "protocol=quick", "protocol.model.layers=3", "protocol.model.init_channels=8",
        "dataset.resolution=16", "trainer.enable_model_summary=false"]


def run_train(*overrides, env=None, check=True):
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def test_dry_run_reads_no_data_and_reports_the_paper_count(tmp_path):
    proc = run_train("arch=darts_v2", "dataset=cifar10", f"dataset.root={tmp_path}/absent", "protocol=darts_cifar",
                     "dry_run=true", f"hydra.run.dir={tmp_path}/run")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("params=")]
    assert len(lines) == 1
    params, macs = (int(kv.split("=")[1]) for kv in lines[0].split()[:2])
    assert params == 3_349_342 and round(macs / 1e6) == 528
    assert lines[0].split()[2] == "input=3x32x32"  # the resolution the MACs were counted at
    assert proc.stdout.strip().splitlines()[-1] == f"wrote to {tmp_path}/run: summary.json"  # the run names its files
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["params"] == params and summary["macs"] == macs and summary["arch"]["space"] == "darts"
    assert not (tmp_path / "absent").exists()


@pytest.mark.slow
def test_train_then_resume_on_digits(tmp_path):
    run = tmp_path / "run"
    run_train(*TINY, "arch=gdas", "logger=csv", "protocol.epochs=1", f"hydra.run.dir={run}")
    first = json.loads((run / "metrics.json").read_text())
    assert first["epochs"] == 1 and 0.0 <= first["top1"] <= first["top5"] <= 1.0
    assert first["dataset"] == "digits" and first["protocol"] == "quick"
    assert first["params"] > 0 and first["macs"] > 0 and first["wall_time_s"] > 0
    steps_one_epoch = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]

    proc = run_train(*TINY, "arch=gdas", "logger=csv", "protocol.epochs=3", f"hydra.run.dir={run}", "ckpt_path=last")
    assert "Restoring states from the checkpoint" in proc.stdout + proc.stderr
    resumed = json.loads((run / "metrics.json").read_text())
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epochs"] == 3 and ckpt["global_step"] == 3 * steps_one_epoch
    assert resumed["wall_time_s"] > resumed["wall_time_this_run_s"]  # accumulated across the resume
    # The protocol's DARTS extras ran: cosine schedule reached lr ~ 0 only at the end of 3 epochs.
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 3


@pytest.mark.slow
def test_compiled_run_resumes_eager(tmp_path):
    """compile.enabled=true trains through torch.compile (aot_eager here: no C++ compiler in a test), and its
    checkpoint resumes without it: the network's state dict is the same either way."""
    run = tmp_path / "run"
    run_train(*TINY, "arch=darts_v2", "logger=none", "protocol.epochs=1", "compile.enabled=true",
              "compile.backend=aot_eager", f"hydra.run.dir={run}")
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
    run_train(*TINY, "arch=darts_v2", "logger=none", "protocol.epochs=2", f"hydra.run.dir={run}", "ckpt_path=last")
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["epochs"] == 2 and 0.0 <= resumed["top1"] <= 1.0


@pytest.mark.slow
def test_regularisers_and_auxiliary_head_train(tmp_path):
    run_train(*TINY, "dataset.resolution=32", "protocol.model.auxiliary=true", "protocol.aux_weight=0.4",
              "protocol.cutout=8", "protocol.drop_path_prob=0.2", "protocol.label_smoothing=0.1",
              "protocol.epochs=1", "logger=csv", f"hydra.run.dir={tmp_path}")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == 1
    log = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "train/drop_path_prob" in log and "val/top1" in log


@pytest.mark.slow
def test_wandb_runs_offline_without_a_key_and_never_prompts(tmp_path):
    env = {"HOME": str(tmp_path / "home"), "WANDB_API_KEY": "", "NETRC": str(tmp_path / "none")}
    (tmp_path / "home").mkdir()
    run_train(*TINY, "protocol.epochs=1", "logger=wandb", f"hydra.run.dir={tmp_path}/run", env=env)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


def test_unknown_arch_lists_the_zoo(tmp_path):
    proc = run_train("arch=darts_v9", "dry_run=true", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0
    assert "unknown architecture 'darts_v9'" in proc.stderr and "pc_darts_cifar" in proc.stderr


def test_malformed_arch_file_is_named(tmp_path):
    bad = tmp_path / "arch.json"
    bad.write_text('{"space": "darts", "genotype": {"normal": [["sep_conv_3x3", 0]]}}')
    proc = run_train(f"arch={bad}", "dry_run=true", f"hydra.run.dir={tmp_path}/run", check=False)
    assert proc.returncode != 0 and str(bad) in proc.stderr and "missing 'normal_concat'" in proc.stderr


def test_missing_data_names_the_setting(tmp_path):
    proc = run_train("dataset=cifar10", f"dataset.root={tmp_path}/nothing", "dataset.download=false",
                     "logger=csv", f"hydra.run.dir={tmp_path}/run", check=False)
    assert proc.returncode != 0
    assert "dataset.root=" in proc.stderr and "train/<class>" in proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
