"""search.py end to end: each method on tiny data, DDP with two CPU processes, exact resume."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lsnas.arch import Architecture

ROOT = Path(__file__).resolve().parents[1]
TINY = ["dataset=digits", "dataset.resolution=8", "space.init_channels=4", "space.layers=3",
        "method.batch_size=16", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
        "trainer.enable_model_summary=false", "logger=csv"]


def run(script, *overrides, check=True):
    proc = subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("method", ["darts", "darts_order2", "pcdarts", "gdas"])
def test_smoke_search_writes_a_trainable_architecture(tmp_path, method):
    extra = ["method=darts", "method.module.order=2"] if method == "darts_order2" else [f"method={method}"]
    proc = run("search.py", *TINY, *extra, "method.epochs=2", f"hydra.run.dir={tmp_path}")
    arch = Architecture.load(tmp_path / "arch.json")
    summary = json.loads((tmp_path / "search_summary.json").read_text())
    assert summary["genotype"] == arch.genotype and summary["epochs"] == 2 and summary["completed"]
    assert summary["peak_memory_bytes"] > 0 and summary["wall_time_s"] > 0
    for name in ("cell_normal.png", "cell_reduce.png", "alphas.png"):
        assert (tmp_path / name).stat().st_size > 1000
    trace = [json.loads(line) for line in (tmp_path / "genotypes.jsonl").read_text().splitlines()]
    assert [t["epoch"] for t in trace] == [0, 1]
    log = (tmp_path / "csv" / "metrics.csv").read_text()
    for key in ("train/loss", "val/top1", "alpha/normal_entropy", "genotype/normal_skip_connects",
                "alpha/normal/edge00_sep_conv_3x3"):
        assert key in log
    assert f"python train.py arch={tmp_path / 'arch.json'}" in proc.stdout
    dry = run("train.py", f"arch={tmp_path / 'arch.json'}", "dry_run=true", f"hydra.run.dir={tmp_path / 'train'}")
    assert "params=" in dry.stdout


@pytest.mark.slow
def test_ddp_two_processes_hold_identical_alphas_and_one_writer(tmp_path):
    run("search.py", *TINY, "method=darts", "method.epochs=2", "trainer=ddp", "trainer.accelerator=cpu",
        "trainer.devices=2", f"hydra.run.dir={tmp_path}")
    summary = json.loads((tmp_path / "search_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_consistent"] is True
    trace = [json.loads(line)["epoch"] for line in (tmp_path / "genotypes.jsonl").read_text().splitlines()]
    assert trace == [0, 1]  # rank 0 alone writes
    Architecture.load(tmp_path / "arch.json")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["darts", "gdas"])
def test_resumed_search_matches_uninterrupted(tmp_path, method):
    common = [*TINY, f"method={method}", "method.epochs=3"]
    run("search.py", *common, f"hydra.run.dir={tmp_path / 'straight'}")
    run("search.py", *common, "stop_after_epochs=1", f"hydra.run.dir={tmp_path / 'resumed'}")
    first = json.loads((tmp_path / "resumed" / "search_summary.json").read_text())
    assert first["epochs"] == 1 and not first["completed"]
    proc = run("search.py", *common, "ckpt_path=last", f"hydra.run.dir={tmp_path / 'resumed'}")
    assert "Restoring states from the checkpoint" in proc.stdout + proc.stderr
    straight = json.loads((tmp_path / "straight" / "alphas.json").read_text())
    resumed = json.loads((tmp_path / "resumed" / "alphas.json").read_text())
    assert resumed == straight  # bit-identical architecture weights, hence the same genotype
    assert Architecture.load(tmp_path / "resumed") == Architecture.load(tmp_path / "straight")
    trace = [json.loads(line)["epoch"] for line in (tmp_path / "resumed" / "genotypes.jsonl").read_text().splitlines()]
    assert trace == [0, 1, 2]
