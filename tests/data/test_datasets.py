import numpy as np
import pytest
import torch

from lsnas.data import DataNotFoundError, split_indices
from lsnas.data.cifar import CIFARDataModule
from lsnas.data.digits import DigitsDataModule, load_digits
from lsnas.data.fashion_mnist import FashionMNISTDataModule, read_idx
from lsnas.data.folder import ImageFolderDataModule
from tests.data.fixtures import write_cifar_pickles, write_class_folders, write_fashion_mnist


def test_split_indices_are_deterministic_disjoint_and_complete():
    a_keep, a_out = split_indices(100, 0.25, seed=3)
    b_keep, b_out = split_indices(100, 0.25, seed=3)
    assert np.array_equal(a_keep, b_keep) and np.array_equal(a_out, b_out)
    assert len(a_out) == 25 and not set(a_keep) & set(a_out) and len(set(a_keep) | set(a_out)) == 100
    assert not np.array_equal(split_indices(100, 0.25, seed=4)[1], a_out)
    # the held-out part is in mixed order (capped validation batches must not see only the first classes)
    assert np.all(np.diff(a_keep) > 0) and not np.all(np.diff(a_out) > 0)


def test_digits_is_the_real_embedded_set():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 255
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    dm = DigitsDataModule(resolution=16, val_fraction=0.1)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) + len(dm.test_set) == 1797
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 1, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert dm.input_shape == (1, 16, 16) and dm.num_classes == 10


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_pickle_format(tmp_path, num_classes):
    _, train, test = write_cifar_pickles(tmp_path, num_classes)
    dm = CIFARDataModule(str(tmp_path), num_classes=num_classes, download=False, val_fraction=0.0)
    assert dm.detect_format() == "pickle"
    dm.setup()
    n_train = sum(len(labels) for _, labels in train)
    assert len(dm.train_set) == n_train and len(dm.test_set) == len(test[1])
    # The first test image comes back with its pixels (CHW in the file -> HWC) and label.
    raw_train, raw_test = dm.load_raw()
    image, label = raw_test[0]
    assert label == test[1][0]
    assert np.array_equal(np.asarray(image), test[0][0].reshape(3, 32, 32).transpose(1, 2, 0))
    x, _ = dm.train_set[0]
    assert x.shape == (3, 32, 32)


def test_cifar_class_folder_format(tmp_path):
    classes = [f"class{i}" for i in range(10)]
    write_class_folders(tmp_path, classes, {"train": 2, "test": 1})
    dm = CIFARDataModule(str(tmp_path), download=False, val_fraction=0.5)
    assert dm.detect_format() == "folder"
    dm.setup()
    assert len(dm.train_set) == 10 and len(dm.val_set) == 10 and len(dm.test_set) == 10
    assert dm.test_set[3][0].shape == (3, 32, 32) and dm.load_raw()[1][3][1] == 3  # class i's folder: label i
    # read in a fixed mixed order, so capped test batches see every class, not the first classes' folders
    labels = [int(dm.test_set[i][1]) for i in range(10)]
    assert sorted(labels) == list(range(10)) and labels != list(range(10))


def test_cifar_folder_with_wrong_class_count_is_an_error(tmp_path):
    write_class_folders(tmp_path, ["a", "b"], {"train": 1, "test": 1})
    with pytest.raises(ValueError, match="2 class folders, expected 10"):
        CIFARDataModule(str(tmp_path), download=False).setup()


def test_cifar_missing_data_names_root_layout_and_fix(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        CIFARDataModule(str(tmp_path / "nowhere"), download=False).setup()
    msg = str(err.value)
    assert "dataset.root=" in msg and str(tmp_path / "nowhere") in msg
    assert "cifar-10-batches-py" in msg and "train/<class>" in msg and "dataset.download=true" in msg


def test_cifar_failed_download_is_the_same_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvd, "CIFAR10", offline)
    with pytest.raises(DataNotFoundError, match="Download failed: OSError: network is unreachable"):
        CIFARDataModule(str(tmp_path), download=True).prepare_data()


@pytest.mark.parametrize("layout, gz", [("flat", True), ("flat", False), ("torchvision", True)])
def test_fashion_mnist_idx_layouts(tmp_path, layout, gz):
    folder = tmp_path if layout == "flat" else tmp_path / "FashionMNIST" / "raw"
    arrays = write_fashion_mnist(folder, gz=gz)
    dm = FashionMNISTDataModule(str(tmp_path), download=False, val_fraction=0.0)
    dm.setup()
    assert len(dm.train_set) == 12 and len(dm.test_set) == 6
    image, label = dm.load_raw()[1][5]
    assert label == 5 and np.array_equal(np.asarray(image), arrays["t10k"][0][5])
    assert dm.train_set[0][0].shape == (1, 28, 28)


def test_idx_reader_rejects_garbage_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"\x00" * 3)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


def test_fashion_mnist_missing_mentions_debian_package(tmp_path):
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNISTDataModule(str(tmp_path), download=False).setup()


def test_image_folder_discovers_classes_and_accepts_val_split(tmp_path):
    write_class_folders(tmp_path, ["cat", "dog", "emu"], {"train": 3, "val": 2}, size=(40, 30), ext="png")
    dm = ImageFolderDataModule(str(tmp_path), resolution=24, val_fraction=0.0, batch_size=4)
    dm.setup()
    assert dm.num_classes == 3 and len(dm.test_set) == 6
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 24, 24)


def test_image_folder_mismatched_classes(tmp_path):
    write_class_folders(tmp_path, ["cat", "dog"], {"train": 1}, ext="png")
    write_class_folders(tmp_path, ["cat", "cow"], {"test": 1}, ext="png")
    with pytest.raises(ValueError, match="different classes"):
        ImageFolderDataModule(str(tmp_path)).setup()


def test_image_folder_missing(tmp_path):
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(DataNotFoundError, match=r"Found instead: stuff.txt"):
        ImageFolderDataModule(str(tmp_path)).setup()


def test_split_indices_with_labels_hold_out_each_class_share():
    labels = np.repeat([0, 1, 2], [50, 30, 21])  # class-sorted, as an image folder is
    keep, out = split_indices(len(labels), 0.5, seed=1, labels=labels)
    assert sorted(np.concatenate([keep, out]).tolist()) == list(range(len(labels)))
    assert np.bincount(labels[out]).tolist() == [25, 15, 10]  # round(101 * 0.5) = 50 in all
    assert np.bincount(labels[keep]).tolist() == [25, 15, 11]
    assert not np.all(np.diff(labels[out]) >= 0)  # the held-out part is not class-sorted
    assert np.array_equal(split_indices(len(labels), 0.5, seed=1, labels=labels)[1], out)
    assert not np.array_equal(split_indices(len(labels), 0.5, seed=2, labels=labels)[1], out)
    # the remainder goes to the class whose share is largest: 9 x 0.1 beats 1 x 0.1
    small = np.array([0] * 9 + [1])
    _, out = split_indices(10, 0.1, seed=0, labels=small)
    assert small[out].tolist() == [0]


def test_validation_splits_are_stratified(tmp_path):
    write_class_folders(tmp_path, ["a", "b", "c", "d"], {"train": 10, "test": 1}, size=(8, 8))
    dm = ImageFolderDataModule(root=str(tmp_path), resolution=8, val_fraction=0.2)
    dm.setup()
    labels = [dm.val_set[i][1] for i in range(len(dm.val_set))]
    assert np.bincount(labels).tolist() == [2, 2, 2, 2]
