"""trainer.precision=bf16-mixed on CPU: every one-shot method, BigNAS and train.py train with finite losses, keep
their weights and architecture parameters in fp32, and resume from their checkpoints."""

import json
import math

import pytest
import torch

from lsnas.methods import search
from lsnas.training.runner import train
from tests.helpers.config import compose_config
from tests.test_search_cli import run

SEARCH = ["dataset=digits", "dataset.resolution=8", "logger=csv", "method.epochs=2", "trainer.limit_train_batches=3",
          "trainer.limit_val_batches=1", "method.batch_size=16", "trainer.enable_model_summary=false",
          "trainer.precision=bf16-mixed", "trainer.log_every_n_steps=1"]
SMALL_SUPERNET = ["space.init_channels=4", "space.layers=3"]


def train_losses(run_dir) -> list[float]:
    rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    column = next(i for i, name in enumerate(header) if name.startswith("train/loss"))
    return [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]


def floating_tensors(run_dir) -> dict:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return {k: v for k, v in checkpoint["state_dict"].items() if v.is_floating_point()}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["darts", "pcdarts", "gdas", "bignas"])
def test_a_bf16_search_has_finite_losses_fp32_parameters_and_resumes(tmp_path, method):
    overrides = [*SEARCH, f"method={method}", *([] if method == "bignas" else SMALL_SUPERNET)]
    if method == "bignas":  # on the command line: BigNAS's selection reads the run's .hydra config
        run("search.py", *overrides, "stop_after_epochs=1", f"hydra.run.dir={tmp_path}")
        run("search.py", *overrides, "ckpt_path=last", f"hydra.run.dir={tmp_path}")
    else:
        overrides.append(f"logger.csv.save_dir={tmp_path}")
        search(compose_config("search", *overrides, "stop_after_epochs=1"), tmp_path)
        search(compose_config("search", *overrides, "ckpt_path=last"), tmp_path)
    summary = json.loads((tmp_path / "search_summary.json").read_text())
    assert summary["precision"] == "bf16-mixed" and summary["epochs"] == 2
    losses = train_losses(tmp_path)
    assert losses and all(math.isfinite(v) for v in losses)
    tensors = floating_tensors(tmp_path)
    assert {v.dtype for v in tensors.values()} == {torch.float32}  # master weights and alphas stay fp32
    assert all(torch.isfinite(v).all() for v in tensors.values())
    if method != "bignas":
        assert any("alpha" in k for k in tensors)
        alphas = json.loads((tmp_path / "alphas.json").read_text())
        assert all(math.isfinite(x) for rows in alphas.values() for row in rows for x in row)


@pytest.mark.slow
def test_train_py_in_bf16_has_a_finite_loss_and_resumes(tmp_path):
    overrides = ["arch=darts_v2", "dataset=digits", "dataset.resolution=16", "protocol=quick", "protocol.epochs=2",
                 "protocol.model.layers=3", "protocol.model.init_channels=8", "logger=csv",
                 f"logger.csv.save_dir={tmp_path}", "trainer.enable_model_summary=false",
                 "trainer.precision=bf16-mixed", "trainer.log_every_n_steps=1"]
    train(compose_config("train", *overrides, "stop_after_epochs=1"), tmp_path)
    metrics = train(compose_config("train", *overrides, "ckpt_path=last"), tmp_path)
    assert metrics["precision"] == "bf16-mixed" and metrics["epochs"] == 2 and math.isfinite(metrics["test_loss"])
    assert all(math.isfinite(v) for v in train_losses(tmp_path))
    assert {v.dtype for v in floating_tensors(tmp_path).values()} == {torch.float32}
