"""WebDataset shards: the converter, the reader, disjoint shards per rank, corrupt samples."""

from __future__ import annotations

import io
import json

import pytest

from lsnas.data.base import DataNotFoundError
from lsnas.data.imagenet22k import ImageNet22kDataModule
from lsnas.data.shards import WebDatasetDataModule, main, write_shards
from tests.data.fixtures import write_class_tars, write_tiny_imagenet

COUNTS = {"n01": 9, "n02": 5, "n03": 14}


@pytest.fixture
def source(tmp_path):
    write_class_tars(tmp_path / "in22k", COUNTS)
    return ImageNet22kDataModule(root=str(tmp_path / "in22k"), holdout_per_class=2, name="imagenet22k",
                                 index_dir=str(tmp_path / "idx"))


def labels_of(loader) -> list[int]:
    return [int(y) for _, ys in loader for y in ys]


def test_converter_writes_every_image_once(source, tmp_path):
    meta = write_shards(source, tmp_path / "shards", shard_size=4)
    assert not (tmp_path / "shards.partial").exists()
    assert meta["splits"]["train"]["images"] == 22 and meta["splits"]["test"]["images"] == 6
    assert meta["splits"]["train"]["counts"] == [4, 4, 4, 4, 4, 2]
    assert json.loads((tmp_path / "shards" / "meta.json").read_text())["classes"] == list(COUNTS)
    dm = WebDatasetDataModule(root=str(tmp_path / "shards"), resolution=16, batch_size=4, name="webdataset")
    assert dm.resolve_num_classes() == 3 and dm.classes == tuple(COUNTS)
    dm.setup()
    test = labels_of(dm.test_dataloader())
    assert sorted(test) == sorted(source.indexes()["test"].labels.tolist())
    with pytest.raises(FileExistsError, match="out="):
        write_shards(source, tmp_path / "shards")


def test_ranks_get_disjoint_shards_and_equal_steps(source, tmp_path):
    write_shards(source, tmp_path / "shards", shard_size=3)
    dm = WebDatasetDataModule(root=str(tmp_path / "shards"), resolution=16, batch_size=2, name="webdataset")
    n_shards = len(dm.meta["splits"]["train"]["shards"])
    parts = [dm.shards_of_rank("train", r, 3) for r in range(3)]
    urls = [u for p, _ in parts for u in p]
    assert len(urls) == len(set(urls)) == n_shards
    assert sum(n for _, n in parts) == 22
    loader = dm.train_dataloader()
    assert len(loader) == 22 // 2
    batches = list(loader)
    assert len(batches) == 11 and all(x.shape == (2, 3, 16, 16) for x, _ in batches)
    with pytest.raises(ValueError, match="smaller shard_size"):
        dm.shards_of_rank("train", 0, n_shards + 1)


def test_eval_split_with_fewer_shards_than_ranks_is_split_by_sample(source, tmp_path):
    write_shards(source, tmp_path / "shards", shard_size=100)  # one test shard of 6 images
    dm = WebDatasetDataModule(root=str(tmp_path / "shards"), resolution=16, eval_batch_size=2, name="webdataset")
    parts = [labels_of(dm._pipeline("test", train=False, rank=r, world=4)) for r in range(4)]
    assert [len(p) for p in parts] == [2, 2, 1, 1]
    assert sorted(sum(parts, [])) == sorted(source.indexes()["test"].labels.tolist())


def test_workers_split_shards_without_duplicates(source, tmp_path):
    write_shards(source, tmp_path / "shards", shard_size=2)
    dm = WebDatasetDataModule(root=str(tmp_path / "shards"), resolution=16, batch_size=2, eval_batch_size=2,
                              num_workers=2, name="webdataset")
    assert sorted(labels_of(dm.test_dataloader())) == sorted(source.indexes()["test"].labels.tolist())


def test_unreadable_images_are_left_out_of_shards(tmp_path):
    top = write_tiny_imagenet(tmp_path, ["n01", "n02"], n_train=4, n_val_per_class=1)
    (top / "train" / "n02" / "images" / "n02_1.JPEG").write_bytes(b"\xff\xd8 not really a jpeg")
    meta = main(["dataset=tiny_imagenet", f"dataset.root={tmp_path}", f"dataset.index_dir={tmp_path / 'idx'}",
                 "dataset.num_classes=2", f"out={tmp_path / 'shards'}", "shard_size=3"])
    assert meta["splits"]["train"] == {"shards": ["train-000000.tar", "train-000001.tar", "train-000002.tar"],
                                       "counts": [3, 3, 1], "images": 7, "skipped": 1}


def test_corrupt_sample_in_a_shard_is_skipped_or_fatal(source, tmp_path):
    import tarfile

    write_shards(source, tmp_path / "shards", shard_size=100)
    shard = tmp_path / "shards" / "test-000000.tar"
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    first_image = next(m.name for m, _ in members if m.name.endswith(".jpg"))
    with tarfile.open(shard, "w") as tar:
        for m, data in members:
            if m.name == first_image:
                data = data[:50]
                m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    dm = WebDatasetDataModule(root=str(tmp_path / "shards"), resolution=16, batch_size=4, name="webdataset")
    assert len(labels_of(dm.test_dataloader())) == 5 and dm.corrupt.take() == 1
    strict = WebDatasetDataModule(root=str(tmp_path / "shards"), resolution=16, on_corrupt="error")
    with pytest.raises(Exception, match="on_corrupt=skip"):
        labels_of(strict.test_dataloader())


def test_missing_or_unfinished_shards_explain_the_converter(tmp_path):
    (tmp_path / "shards.partial").mkdir()
    with pytest.raises(DataNotFoundError, match=r"(?s)did not finish.*python -m lsnas.data.shards"):
        WebDatasetDataModule(root=str(tmp_path / "shards")).setup()
