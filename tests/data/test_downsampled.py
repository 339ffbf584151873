"""Downsampled ImageNet (pickled or .npz batches) and ImageNet16-120."""

from __future__ import annotations

import numpy as np
import pytest

from lsnas.data.base import DataNotFoundError
from lsnas.data.downsampled import DownsampledImageNetDataModule
from tests.data.fixtures import write_downsampled_imagenet


@pytest.mark.parametrize("npz", [False, True])
def test_batches_are_read_in_channel_major_order(tmp_path, npz):
    root = write_downsampled_imagenet(tmp_path, size=16, num_classes=130, per_batch=26, n_val=40, npz=npz)
    dm = DownsampledImageNetDataModule(root=str(root), resolution=16, num_classes=130, name="downsampled")
    train, test = dm.raw()
    assert len(train) == 260 and len(test) == 40
    import pickle

    if npz:
        with np.load(root / "train_data_batch_1.npz") as z:
            row, label = z["data"][3], int(z["labels"][3])
    else:
        with open(root / "train_data_batch_1", "rb") as f:
            batch = pickle.load(f)
        row, label = batch["data"][3], batch["labels"][3]
    image, y = train[3]
    assert y == label - 1  # labels are 1-based on disk
    assert np.array_equal(np.asarray(image), row.reshape(3, 16, 16).transpose(1, 2, 0))


def test_imagenet16_120_keeps_the_first_120_classes(tmp_path):
    root = write_downsampled_imagenet(tmp_path, size=16, num_classes=130, per_batch=26, n_val=40)
    dm = DownsampledImageNetDataModule(root=str(root), resolution=16, num_classes=120, max_class=120,
                                       batch_size=8, name="imagenet16_120")
    train, test = dm.raw()
    assert train.labels.max() == 119 and train.labels.min() == 0
    assert len(train) == sum(1 + (j * 26 + i) % 130 <= 120 for j in range(10) for i in range(26))
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 16, 16)


def test_errors_name_files_and_settings(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"(?s)missing: train_data_batch_1.*Downsampled ImageNet"):
        DownsampledImageNetDataModule(root=str(tmp_path), name="downsampled").raw()
    root = write_downsampled_imagenet(tmp_path / "d", size=16, num_classes=130)
    with pytest.raises(ValueError, match="16x16 images but dataset.resolution=32"):
        DownsampledImageNetDataModule(root=str(root), resolution=32, num_classes=130).raw()
    with pytest.raises(ValueError, match="dataset.num_classes=1000"):
        DownsampledImageNetDataModule(root=str(root), resolution=16, num_classes=1000).raw()
