"""A run writes into its run dir and nowhere else: not the working directory, not beside the run dir (W&B's own
caches under $HOME aside)."""

import os
import subprocess
import sys

import pytest

from tests.test_search_cli import ROOT

RUNS = {
    "search": ["search.py", "method=random", "evaluator=synthetic", "method.num_trials=3", "logger=wandb"],
    "train": ["train.py", "arch=darts_v2", "dataset=digits", "dataset.resolution=16", "protocol=quick",
              "protocol.epochs=1", "protocol.model.layers=3", "protocol.model.init_channels=8", "logger=wandb",
              "protocol.trainer.limit_train_batches=2", "checkpoint.every_n_steps=1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(RUNS))
def test_a_run_writes_only_inside_its_run_dir(tmp_path, kind):
    script, *overrides = RUNS[kind]
    cwd, home, run_dir = tmp_path / "cwd", tmp_path / "home", tmp_path / "run"
    cwd.mkdir()
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "WANDB_MODE": "offline", "LSNAS_OUTPUT_DIR": str(tmp_path / "elsewhere")}
    env.pop("WANDB_API_KEY", None)
    proc = subprocess.run([sys.executable, str(ROOT / script), *overrides, f"hydra.run.dir={run_dir}"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "home", "run"]
    assert list(cwd.iterdir()) == [], "the run wrote into the working directory"
    assert (run_dir / ("arch.json" if kind == "search" else "metrics.json")).is_file()
    assert any(run_dir.glob("wandb/offline-run-*")), "W&B's offline run belongs in the run dir"
