"""Two nodes on one machine: two processes started as nodes 0 and 1 of a Lightning DDP run (the way srun or a
cluster scheduler starts them: NODE_RANK, MASTER_ADDR, MASTER_PORT), for a search and for a final training.
Lightning sets the ranks from that environment; there is no launcher of ours."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from lsnas.arch import Architecture
from lsnas.training.trainer import tensor_digest
from tests.test_search_cli import ROOT, TINY
from tests.test_train_cli import TINY as TRAIN_TINY

TWO_NODES = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2", "logger=csv"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_nodes(script: str, run_dir, *overrides, node1_wrapper: str | None = None) -> list[str]:
    """``node1_wrapper``: a script that runs node 1's entry point (tests/helpers/other_alphas.py)."""
    port = free_port()
    procs = []
    for node in (0, 1):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(node),
               "LOCAL_RANK": "0", "OMP_NUM_THREADS": "1"}
        wrapper = [node1_wrapper] if node == 1 and node1_wrapper else []
        procs.append(subprocess.Popen([sys.executable, *wrapper, str(ROOT / script), *overrides, *TWO_NODES,
                                       f"hydra.run.dir={run_dir}"], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=600)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    for node, (proc, out) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"node {node} failed:\n{out[-4000:]}"
    return outputs


@pytest.mark.slow
def test_search_on_two_nodes_writes_one_architecture_from_identical_alphas(tmp_path):
    # node 1 initialises other alphas: the method broadcasts rank 0's at fit start (DDP ignores the alphas, so it does
    # not), or the ranks would search from different architectures
    outputs = run_two_nodes("search.py", tmp_path, *TINY, "method=pcdarts", "method.module.partial_channels=2",
                            "method.module.warmup_fraction=0", "method.epochs=2",
                            node1_wrapper=str(ROOT / "tests" / "helpers" / "other_alphas.py"))
    summary = json.loads((tmp_path / "search_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_consistent"]
    arch_digests, weight_digests = summary["arch_digests"], summary["weight_digests"]
    assert len(arch_digests) == 2 and arch_digests[0] == arch_digests[1]
    assert len(weight_digests) == 2 and weight_digests[0] == weight_digests[1]
    alphas = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert tensor_digest(alphas[f"supernet.{n}"] for n in ("alpha_normal", "alpha_reduce", "beta_normal",
                                                            "beta_reduce")) == arch_digests[0]
    Architecture.load(tmp_path / "arch.json")
    assert sum("architecture written to" in out for out in outputs) == 1  # one writer
    assert (tmp_path / "search.log").exists() and (tmp_path / "search_node1_rank0.log").exists()
    assert not any("Grad strides do not match" in out for out in outputs)  # gradients in the buckets' layout


@pytest.mark.slow
def test_training_on_two_nodes_ends_with_identical_weights(tmp_path):
    run_two_nodes("train.py", tmp_path, *TRAIN_TINY, "arch=darts_v2", "protocol.epochs=1",
                  "protocol.trainer.limit_train_batches=4")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["ranks_consistent"]
    digests = metrics["weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert tensor_digest(v for k, v in state.items() if not k.endswith(buffers)) == digests[0]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4


@pytest.mark.slow
def test_bignas_supernet_trains_on_two_nodes_with_identical_weights(tmp_path):
    outputs = run_two_nodes("search.py", tmp_path, "method=bignas", "method.epochs=1", "method.batch_size=8",
                  "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "method.selection.targets=[]")
    summary = json.loads((tmp_path / "search_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_consistent"]
    assert summary["weight_digests"][0] == summary["weight_digests"][1]
    assert "selection" not in summary
    assert not any("Grad strides do not match" in out for out in outputs)
