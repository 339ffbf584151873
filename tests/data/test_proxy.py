"""Proxy sets: rule counts, determinism, the materialised index and its re-use, named variants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from lsnas.data.proxy import ImageNetProxyDataModule, ProxyRules
from tests.data.fixtures import write_imagenet, write_tiny_imagenet

CONF = str(Path(__file__).resolve().parents[2] / "conf")
WNIDS = [f"n{i:08d}" for i in range(6)]


@pytest.fixture
def imagenet(tmp_path):
    return write_imagenet(tmp_path / "in1k", WNIDS, n_train={c: 20 + 4 * i for i, c in enumerate(WNIDS)}, n_val=3)


def proxy(root, tmp_path, **rules):
    return ImageNetProxyDataModule(root=str(root), source="imagenet1k", index_dir=str(tmp_path / "idx"),
                                   resolution=16, batch_size=4, name="imagenet_proxy", **rules)


def test_pcdarts_fractions_per_class_with_disjoint_val(imagenet, tmp_path):
    dm = proxy(imagenet, tmp_path, train_per_class=0.1, val_per_class=0.25)
    idx = dm.indexes()
    sizes = [20 + 4 * i for i in range(6)]
    assert idx["train"].class_counts().tolist() == [round(0.1 * n) for n in sizes]
    assert idx["val"].class_counts().tolist() == [round(0.25 * n) for n in sizes]
    assert idx["test"].class_counts().tolist() == [3] * 6
    train_files = {idx["train"].files[i] for i in idx["train"].file_ids}
    val_files = {idx["val"].files[i] for i in idx["val"].file_ids}
    assert not train_files & val_files
    assert dm.resolve_num_classes() == 6


def test_class_rules_first_and_random(imagenet, tmp_path):
    first = proxy(imagenet, tmp_path, classes="first", num_classes=2, train_per_class=3).indexes()
    assert first["train"].classes == tuple(WNIDS[:2]) and sorted(set(first["train"].labels.tolist())) == [0, 1]
    assert first["test"].classes == tuple(WNIDS[:2]) and len(first["test"]) == 6
    r0 = proxy(imagenet, tmp_path, classes="random", num_classes=3, class_seed=0).indexes()["train"].classes
    r0b = proxy(imagenet, tmp_path, classes="random", num_classes=3, class_seed=0).indexes()["train"].classes
    picks = {proxy(imagenet, tmp_path, classes="random", num_classes=3, class_seed=s).indexes()["train"].classes
             for s in range(6)}
    assert r0 == r0b and len(picks) > 1 and all(set(p) <= set(WNIDS) for p in picks)


def test_selection_is_deterministic_and_nested_across_class_choices(imagenet, tmp_path):
    a = proxy(imagenet, tmp_path / "a", train_per_class=5, val_per_class=2, image_seed=7).indexes()
    b = proxy(imagenet, tmp_path / "b", train_per_class=5, val_per_class=2, image_seed=7).indexes()
    assert all(a[s].digest() == b[s].digest() for s in a)
    # a class's images do not depend on which other classes were chosen
    first = proxy(imagenet, tmp_path / "c", classes="first", num_classes=2, train_per_class=5, val_per_class=2,
                  image_seed=7).indexes()["train"]
    names = lambda index, lab: sorted(index.files[index.file_ids[i]] for i in np.flatnonzero(index.labels == lab))
    assert names(first, 1) == names(a["train"], 1)
    other = proxy(imagenet, tmp_path / "d", train_per_class=5, val_per_class=2, image_seed=8).indexes()
    assert other["train"].digest() != a["train"].digest()


def test_index_is_materialised_once_and_reused(imagenet, tmp_path, monkeypatch):
    dm = proxy(imagenet, tmp_path, train_per_class=4, val_per_class=1)
    dm.prepare_data()
    files = sorted(p.name for p in (tmp_path / "idx").iterdir())
    proxy_files = [f for f in files if f.startswith("proxy-imagenet1k-")]
    assert len(proxy_files) == 2  # the .npz index and its .json description
    described = json.loads((tmp_path / "idx" / [f for f in proxy_files if f.endswith(".json")][0]).read_text())
    assert described["train_per_class"] == 4 and described["train_images"] == 24 and described["val_images"] == 6

    def must_not_run(*args, **kwargs):
        raise AssertionError("the proxy index was selected again instead of being read from its file")

    monkeypatch.setattr(ProxyRules, "select", must_not_run)
    again = proxy(imagenet, tmp_path, train_per_class=4, val_per_class=1)
    assert again.indexes()["train"].digest() == dm.indexes()["train"].digest()
    with pytest.raises(AssertionError, match="selected again"):  # other rules, another index
        proxy(imagenet, tmp_path, train_per_class=5, val_per_class=1).indexes()


def test_search_uses_the_proxy_split_and_training_its_val(imagenet, tmp_path):
    dm = proxy(imagenet, tmp_path, train_per_class=3, val_per_class=2)
    weights, arch, arch_eval = dm.search_halves(train_portion=0.5, seed=0)
    assert (len(weights), len(arch), len(arch_eval)) == (18, 12, 12)
    assert weights[0][0].shape == (3, 16, 16)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (18, 12, 18)
    no_val = proxy(imagenet, tmp_path, train_per_class=4, val_per_class=0)
    w, a, _ = no_val.search_halves(train_portion=0.5, seed=0)
    assert len(w) == len(a) == 12


def test_rule_errors_name_the_setting(imagenet, tmp_path):
    with pytest.raises(ValueError, match="dataset.num_classes"):
        proxy(imagenet, tmp_path, classes="random")
    with pytest.raises(ValueError, match="only 6 classes"):
        proxy(imagenet, tmp_path, classes="first", num_classes=10).indexes()
    with pytest.raises(ValueError, match=r"proxy source 'imagenet2k' \(setting: dataset.source\); known: imagenet1k"):
        ImageNetProxyDataModule(root=str(imagenet), source="imagenet2k")


def test_tiny_imagenet_source(tmp_path):
    write_tiny_imagenet(tmp_path, WNIDS[:4], n_train=8, n_val_per_class=2)
    dm = ImageNetProxyDataModule(root=str(tmp_path), source="tiny_imagenet", train_per_class=0.5,
                                 val_per_class=0.25, resolution=32, index_dir=str(tmp_path / "idx"))
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (16, 8, 8)
    assert dm.train_set[0][0].shape == (3, 32, 32)


@pytest.mark.parametrize("name, expected", [
    ("imagenet_proxy", {"classes": "all", "train_per_class": 0.1, "val_per_class": 0.025, "resolution": 224}),
    ("imagenet_proxy_fewer_classes", {"classes": "random", "num_classes": 100, "train_per_class": None}),
    ("imagenet_proxy_fewer_images", {"classes": "all", "train_per_class": 0.05, "val_per_class": 0.05}),
    ("imagenet_proxy_low_res", {"resolution": 32, "train_per_class": 0.05}),
])
def test_named_proxy_variants(name, expected):
    with initialize_config_dir(config_dir=CONF, version_base=None):
        cfg = compose("search", overrides=[f"dataset={name}", "dataset.source=tiny_imagenet"])
    assert cfg.dataset.name == name and cfg.dataset.root.endswith("tiny_imagenet")
    assert {k: cfg.dataset[k] for k in expected} == expected
