"""search.py and train.py on an ImageNet proxy set built from a Tiny-ImageNet fixture, end to end."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from lsnas.arch import Architecture
from tests.data.fixtures import truncate, write_tiny_imagenet
from tests.test_search_cli import run

WNIDS = [f"n{i:08d}" for i in range(5)]


@pytest.mark.slow
def test_pcdarts_search_on_a_proxy_then_train_with_per_class_accuracy(tmp_path):
    top = write_tiny_imagenet(tmp_path / "data", WNIDS, n_train=10, n_val_per_class=2)
    for wnid in WNIDS:  # one unreadable image per class; the proxy below uses every training image
        truncate(top / "train" / wnid / "images" / f"{wnid}_3.JPEG")
    proxy = ["dataset=imagenet_proxy", "dataset.source=tiny_imagenet", f"dataset.root={tmp_path / 'data'}",
             f"dataset.index_dir={tmp_path / 'idx'}", "dataset.resolution=32", "dataset.num_workers=0",
             "dataset.train_per_class=0.6", "dataset.val_per_class=0.4"]
    run("search.py", "method=pcdarts", *proxy, "space.network=imagenet", "space.init_channels=4", "space.layers=3",
        "method.batch_size=8", "method.epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.enable_model_summary=false", "logger=csv", f"hydra.run.dir={tmp_path / 'search'}")
    summary = json.loads((tmp_path / "search" / "search_summary.json").read_text())
    assert summary["data"]["source"] == "tiny_imagenet" and summary["data"]["train_per_class"] == 0.6
    assert (summary["data"]["train_images"], summary["data"]["val_images"]) == (30, 20)
    Architecture.load(tmp_path / "search" / "arch.json")

    run("train.py", f"arch={tmp_path / 'search' / 'arch.json'}", *proxy, "protocol=quick", "protocol.epochs=1",
        "protocol.model.layers=3", "protocol.model.init_channels=8", "protocol.trainer.limit_train_batches=3",
        "trainer.enable_model_summary=false", "+trainer.num_sanity_val_steps=0", "logger=csv",
        f"hydra.run.dir={tmp_path / 'train'}")
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    per_class = json.loads((tmp_path / "train" / "per_class_accuracy.json").read_text())
    assert sorted(r["class"] for r in per_class) == WNIDS and sum(r["support"] for r in per_class) == 10
    assert [r["top1"] for r in per_class] == sorted(r["top1"] for r in per_class)  # worst first
    mean = sum(r["top1"] for r in per_class) / len(per_class)
    assert metrics["top1_class_mean"] == pytest.approx(mean) and metrics["data"]["test_images"] == 10
    # one epoch reads the train part once and the val part once: each unreadable image skipped once
    rows = list(csv.DictReader(open(tmp_path / "train" / "csv" / "metrics.csv")))
    skipped = [float(r["data/corrupt_skipped"]) for r in rows if r.get("data/corrupt_skipped")]
    assert skipped == [5.0]


@pytest.mark.slow
def test_convert_to_shards_then_train_from_them(tmp_path):
    write_tiny_imagenet(tmp_path / "data", WNIDS, n_train=8, n_val_per_class=2)
    converted = subprocess.run(
        [sys.executable, "-m", "lsnas.data.shards", "dataset=tiny_imagenet", f"dataset.root={tmp_path / 'data'}",
         f"dataset.index_dir={tmp_path / 'idx'}", "dataset.num_classes=5", f"out={tmp_path / 'shards'}",
         "shard_size=8"], capture_output=True, text=True, timeout=300)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert "train: 40 images in 5 shards (0 unreadable skipped)" in converted.stdout
    run("train.py", "arch=darts_v2", "dataset=webdataset", f"dataset.root={tmp_path / 'shards'}",
        "dataset.resolution=32", "dataset.num_workers=2", "dataset.shuffle_buffer=16", "protocol=quick",
        "protocol.batch_size=8", "protocol.epochs=1", "protocol.model.layers=3", "protocol.model.init_channels=8",
        "trainer.enable_model_summary=false", "logger=csv", f"hydra.run.dir={tmp_path / 'train'}")
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["num_classes"] == 5 and metrics["epochs"] == 1
    steps = torch.load(tmp_path / "train" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert steps == 40 // 8  # one pass over the 40 training images
    per_class = json.loads((tmp_path / "train" / "per_class_accuracy.json").read_text())
    assert sum(r["support"] for r in per_class) == 10


@pytest.mark.slow
def test_shards_under_ddp_two_ranks(tmp_path):
    """Two CPU ranks: disjoint train shards with equal steps; the one test shard is split by sample."""
    write_tiny_imagenet(tmp_path / "data", WNIDS, n_train=8, n_val_per_class=2)
    from lsnas.data.shards import main

    meta = main(["dataset=tiny_imagenet", f"dataset.root={tmp_path / 'data'}", f"dataset.index_dir={tmp_path}/idx",
                 "dataset.num_classes=5", f"out={tmp_path / 'shards'}", "shard_size=10"])
    assert len(meta["splits"]["train"]["shards"]) == 4 and len(meta["splits"]["test"]["shards"]) == 1
    run("train.py", "arch=darts_v2", "dataset=webdataset", f"dataset.root={tmp_path / 'shards'}",
        "dataset.resolution=32", "dataset.num_workers=1", "dataset.shuffle_buffer=16", "protocol=quick",
        "protocol.batch_size=4", "protocol.epochs=2", "protocol.model.layers=3", "protocol.model.init_channels=8",
        "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.enable_model_summary=false",
        "logger=csv", f"hydra.run.dir={tmp_path / 'train'}")
    steps = torch.load(tmp_path / "train" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert steps == 2 * (40 // (2 * 4))  # each rank: 20 images of its own shards per epoch, batch 4
    per_class = json.loads((tmp_path / "train" / "per_class_accuracy.json").read_text())
    assert sum(r["support"] for r in per_class) == 10  # every test image once, across the two ranks
