"""File indexes, the indexed families (ImageNet-1K, Tiny-ImageNet, ImageNet-22K) and corrupt-image
handling, on fixtures in the exact on-disk formats."""

from __future__ import annotations

import logging
import shutil
import tarfile

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from torch.utils.data import DataLoader

from lsnas.data.base import DataNotFoundError
from lsnas.data.imagenet import ImageNetDataModule
from lsnas.data.imagenet22k import ImageNet22kDataModule
from lsnas.data.index import cached, index_class_folders, index_class_tars, per_class_holdout, take_count
from lsnas.data.records import CorruptImageCounter, CorruptImageError, IndexedImageDataset
from lsnas.data.sampling import EpochBalancedSampler
from lsnas.data.tiny_imagenet import TinyImageNetDataModule
from tests.data.fixtures import truncate, write_class_tars, write_imagenet, write_tiny_imagenet

WNIDS = ["n01440764", "n01443537", "n01484850"]


def test_take_count_rules():
    assert take_count(None, 40) == 40
    assert take_count(5, 40) == 5 and take_count(50, 40) == 40
    assert take_count(0.1, 40) == 4 and take_count(0.025, 40) == 1 and take_count(1.0, 40) == 40
    assert take_count(0.01, 10) == 1  # a fraction keeps at least one image of a non-empty class
    assert take_count(0, 40) == 0
    with pytest.raises(ValueError, match="fraction"):
        take_count(2.5, 40)


def test_folder_index_is_sorted_and_deterministic(tmp_path):
    write_imagenet(tmp_path, WNIDS[::-1], n_train={WNIDS[0]: 3, WNIDS[1]: 5, WNIDS[2]: 2}, n_val=1)
    a, b = index_class_folders(tmp_path, "train"), index_class_folders(tmp_path, "train", workers=1)
    assert a.classes == tuple(WNIDS)
    assert a.class_counts().tolist() == [3, 5, 2]
    assert a.digest() == b.digest()
    assert all(f.startswith(f"train/{a.classes[lab]}/") for f, lab in zip(a.files, a.labels))


def test_tar_index_reads_member_bytes_in_place(tmp_path):
    write_class_tars(tmp_path, {"n02": 3, "n01": 2})
    index = index_class_tars(tmp_path)
    assert index.classes == ("n01", "n02") and index.in_archives
    assert index.class_counts().tolist() == [2, 3]
    ds = IndexedImageDataset(tmp_path, index)
    with tarfile.open(tmp_path / "n02.tar") as tar:
        first = tar.extractfile(sorted(tar.getnames())[0]).read()
    assert ds.read_bytes(2) == first  # sample 2 is the first (sorted) member of class n02
    image, label = ds[2]
    assert image.size == (16, 16) and label == 1


def test_index_cache_is_built_once_and_rebuilt_on_request(tmp_path):
    write_imagenet(tmp_path / "d", WNIDS[:2], n_train=2, n_val=1)
    builds = []

    def build():
        builds.append(1)
        return {"train": index_class_folders(tmp_path / "d", "train")}

    path = tmp_path / "cache" / "x.npz"
    first = cached(path, build)
    second = cached(path, build)
    assert len(builds) == 1 and first["train"].digest() == second["train"].digest()
    cached(path, build, rebuild=True)
    assert len(builds) == 2
    assert not list(path.parent.glob("*.tmp"))  # nothing half-written left behind


def test_empty_classes_are_reported_at_index_time(tmp_path, caplog):
    write_imagenet(tmp_path, WNIDS, n_train={WNIDS[0]: 2, WNIDS[1]: 0, WNIDS[2]: 1}, n_val=0)
    with caplog.at_level(logging.WARNING):
        index = index_class_folders(tmp_path, "train")
    assert index.class_counts().tolist() == [2, 0, 1]
    assert "1 of 3 classes" in caplog.text and WNIDS[1] in caplog.text


def test_imagenet1k_reads_the_ilsvrc_layout(tmp_path):
    write_imagenet(tmp_path, WNIDS, n_train=4, n_val=2)
    dm = ImageNetDataModule(root=str(tmp_path), num_classes=3, resolution=32, batch_size=4, val_fraction=0.0,
                            name="imagenet1k")
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 12 and len(dm.test_set) == 6 and dm.classes == tuple(WNIDS)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert sorted(dm.test_set[i][1] for i in range(6)) == [0, 0, 1, 1, 2, 2]  # ILSVRC val labels, mixed order
    assert dm.index_path().is_file()


def test_imagenet1k_errors_name_the_layout_and_the_setting(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"(?s)dataset.root=.*train/<wnid>/\*\.JPEG.*image-net.org"):
        ImageNetDataModule(root=str(tmp_path / "nowhere"), name="imagenet1k").prepare_data()
    write_imagenet(tmp_path, WNIDS, n_train=1, n_val=0)
    shutil.rmtree(tmp_path / "val")
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"x")  # val as downloaded: flat
    with pytest.raises(DataNotFoundError, match="sorted into one folder per class"):
        ImageNetDataModule(root=str(tmp_path), name="imagenet1k").prepare_data()


def test_num_classes_mismatch_names_the_setting(tmp_path):
    write_imagenet(tmp_path, WNIDS, n_train=1, n_val=1)
    with pytest.raises(ValueError, match="dataset.num_classes=1000"):
        ImageNetDataModule(root=str(tmp_path), num_classes=1000, name="imagenet1k").setup()


def test_tiny_imagenet_official_layout(tmp_path):
    write_tiny_imagenet(tmp_path, WNIDS, n_train=4, n_val_per_class=2)
    dm = TinyImageNetDataModule(root=str(tmp_path), num_classes=3, batch_size=2, name="tiny_imagenet")
    assert dm.root.endswith("tiny-imagenet-200")  # the parent folder is accepted
    raw_train, raw_test = dm.raw()
    assert len(raw_train) == 12 and len(raw_test) == 6
    rows = (tmp_path / "tiny-imagenet-200/val/val_annotations.txt").read_text().splitlines()
    truth = {r.split("\t")[0]: WNIDS.index(r.split("\t")[1]) for r in rows}
    for i in range(len(raw_test)):
        name = raw_test.index.files[raw_test.index.file_ids[i]].split("/")[-1]
        assert int(raw_test.index.labels[i]) == truth[name]
    dm.setup()
    assert dm.test_set[0][0].shape == (3, 64, 64)


def test_tiny_imagenet_missing_pieces_are_listed(tmp_path):
    top = write_tiny_imagenet(tmp_path, WNIDS)
    (top / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataNotFoundError, match=r"(?s)missing: val/val_annotations.txt.*tiny-imagenet-200.zip"):
        TinyImageNetDataModule(root=str(tmp_path), name="tiny_imagenet").prepare_data()


def test_imagenet22k_tars_and_folders_agree_with_per_class_holdout(tmp_path):
    counts = {"n00000001": 7, "n00000002": 2, "n00000003": 1, "n00000004": 12}
    write_class_tars(tmp_path / "tars", counts)
    for wnid in counts:  # the same data extracted into class folders
        (tmp_path / "folders" / wnid).mkdir(parents=True)
        with tarfile.open(tmp_path / "tars" / f"{wnid}.tar") as tar:
            tar.extractall(tmp_path / "folders" / wnid, filter="data")
    make = lambda sub: ImageNet22kDataModule(root=str(tmp_path / sub), holdout_per_class=2, num_classes=None,
                                             name="imagenet22k")
    tars, folders = make("tars").indexes(), make("folders").indexes()
    assert tars["train"].classes == folders["train"].classes
    for split in ("train", "test"):
        assert tars[split].labels.tolist() == folders[split].labels.tolist()
    # 2 held out per class, never a whole class: the 1-image class stays in train only
    assert tars["test"].class_counts().tolist() == [2, 1, 0, 2]
    assert tars["train"].class_counts().tolist() == [5, 1, 1, 10]
    ds_t, ds_f = IndexedImageDataset(tmp_path / "tars", tars["test"]), IndexedImageDataset(tmp_path / "folders",
                                                                                          folders["test"])
    assert all(ds_t.read_bytes(i) == ds_f.read_bytes(i) for i in range(len(ds_t)))


def test_per_class_holdout_is_deterministic_and_disjoint(tmp_path):
    write_class_tars(tmp_path, {f"n{i}": 10 + i for i in range(5)})
    index = index_class_tars(tmp_path)
    kept, held = per_class_holdout(index, 0.2, seed=3)
    kept2, held2 = per_class_holdout(index, 0.2, seed=3)
    assert np.array_equal(held, held2) and not set(kept) & set(held)
    assert sorted([*kept, *held]) == list(range(len(index)))
    assert np.bincount(index.labels[held]).tolist() == [2, 2, 2, 3, 3]


def test_balanced_sampler_equalises_classes():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    sampler = EpochBalancedSampler(labels, seed=0)
    sampler.set_epoch(0)
    drawn = np.bincount(labels[list(sampler)], minlength=3)
    assert drawn.sum() == 1000 and drawn.min() > 250  # about 333 each, against 10 of class 2 in the data
    sampler.set_epoch(0)
    again = np.bincount(labels[list(sampler)], minlength=3)
    assert drawn.tolist() == again.tolist()


def test_imagenet22k_balanced_sampler_is_used(tmp_path):
    write_class_tars(tmp_path, {"n1": 20, "n2": 3})
    dm = ImageNet22kDataModule(root=str(tmp_path), holdout_per_class=1, sampler="balanced", batch_size=4,
                               name="imagenet22k")
    dm.setup()
    assert isinstance(dm.train_dataloader().sampler, EpochBalancedSampler)
    with pytest.raises(ValueError, match="dataset.sampler"):
        ImageNet22kDataModule(root=str(tmp_path), sampler="uniform")


def test_imagenet22k_missing_data_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataNotFoundError, match=r"(?s)Found instead: readme.txt.*<wnid>\.tar"):
        ImageNet22kDataModule(root=str(tmp_path), name="imagenet22k").prepare_data()


def test_corrupt_images_are_skipped_counted_or_fatal(tmp_path):
    write_imagenet(tmp_path, WNIDS[:2], n_train=3, n_val=0)
    index = index_class_folders(tmp_path, "train")
    truncate(tmp_path / index.files[1])
    counter = CorruptImageCounter()
    ds = IndexedImageDataset(tmp_path, index, counter=counter)
    image, label = ds[1]  # replaced by the next readable image (same batch size)
    assert label == int(index.labels[2]) and counter.take() == 1 and counter.take() == 0
    with pytest.raises(CorruptImageError, match=r"(?s)" + index.files[1].replace("/", ".") + ".*on_corrupt=skip"):
        IndexedImageDataset(tmp_path, index, on_corrupt="error")[1]
    with pytest.raises(ValueError, match="dataset.on_corrupt"):
        IndexedImageDataset(tmp_path, index, on_corrupt="ignore")


def test_corrupt_counts_from_loader_workers_reach_the_trainer(tmp_path):
    write_imagenet(tmp_path, WNIDS, n_train=4, n_val=1)
    dm = ImageNetDataModule(root=str(tmp_path), resolution=16, batch_size=3, num_workers=2, val_fraction=0.0,
                            name="imagenet1k")
    dm.setup()
    for k in (0, 5, 9):
        truncate(tmp_path / dm.train_set.base.index.files[dm.train_set.base.index.file_ids[k]])
    seen = sum(len(y) for _, y in dm.train_dataloader())
    assert seen == 12 and dm.corrupt.take() == 3


def test_corrupt_counter_copies_outside_process_start_are_independent():
    import copy
    import pickle

    counter = CorruptImageCounter()
    counter.add(2)
    for clone in (copy.deepcopy(counter), pickle.loads(pickle.dumps(counter))):
        clone.add(5)
        assert clone.take() == 5
    assert counter.take() == 2


def test_missing_file_asks_for_an_index_rebuild(tmp_path):
    write_imagenet(tmp_path, WNIDS, n_train=2, n_val=1)
    dm = ImageNetDataModule(root=str(tmp_path), resolution=16, name="imagenet1k")
    dm.setup()
    (tmp_path / dm.train_set.base.index.files[0]).unlink()
    with pytest.raises(FileNotFoundError, match="dataset.rebuild_index=true"):
        dm.train_set.base[0]


def test_ddp_ranks_see_disjoint_shards_of_each_epoch(tmp_path):
    """What Lightning does under DDP: wrap the DataModule's sampler per rank."""
    write_imagenet(tmp_path, WNIDS, n_train=6, n_val=1)
    dm = ImageNetDataModule(root=str(tmp_path), resolution=16, batch_size=2, val_fraction=0.0, name="imagenet1k")
    dm.setup()
    sampler = dm.train_dataloader().sampler
    epochs = []
    for epoch in (0, 1):
        shards = []
        for rank in (0, 1):
            wrapped = DistributedSamplerWrapper(sampler, num_replicas=2, rank=rank, shuffle=False)
            wrapped.set_epoch(epoch)
            shards.append(list(wrapped))
        assert len(shards[0]) == len(shards[1]) == 9 and not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == list(range(18))
        epochs.append(shards[0])
    assert epochs[0] != epochs[1]  # a new order every epoch
    loader = DataLoader(dm.train_set, batch_size=2, sampler=wrapped)
    assert sum(len(y) for _, y in loader) == 9
