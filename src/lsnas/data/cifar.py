"""CIFAR-10 / CIFAR-100 in either on-disk format, auto-detected:

- the official python pickles (``cifar-10-batches-py/`` / ``cifar-100-python/``), downloaded by
  torchvision when ``dataset.download=true`` and the internet is reachable;
- class folders ``train/<class>/*``, ``test/<class>/*`` (e.g. the JPEG export in ../shared/data).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from torchvision.transforms import v2

from lsnas.data.base import (
    ArrayImageDataset,
    DataNotFoundError,
    ImageClassificationDataModule,
    describe_dir,
    missing_data_error,
    normalize_tail,
)
from lsnas.data.folder import class_folder_splits, has_class_folders
from lsnas.errors import ConfigError

_PICKLES = {
    10: dict(folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
             label_key="labels", mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    100: dict(folder="cifar-100-python", train=["train"], test=["test"], label_key="fine_labels",
              mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
}


def _read_pickles(folder: Path, names: list[str], label_key: str) -> ArrayImageDataset:
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.extend(batch[label_key])
    return ArrayImageDataset(np.concatenate(images), np.asarray(labels))


class CIFARDataModule(ImageClassificationDataModule):
    def __init__(self, root: str, num_classes: int = 10, resolution: int = 32, download: bool = True, **kwargs):
        if num_classes not in _PICKLES:
            raise ConfigError(f"CIFAR has 10 or 100 classes, got dataset.num_classes={num_classes}")
        kwargs.setdefault("name", f"cifar{num_classes}")
        super().__init__(root=root, num_classes=num_classes, resolution=resolution, in_channels=3, **kwargs)
        self.download = download
        self.spec = _PICKLES[num_classes]

    def _pickle_dir(self) -> Path | None:
        root = Path(self.root)
        for folder in (root / self.spec["folder"], root):
            if all((folder / n).is_file() for n in self.spec["train"] + self.spec["test"]):
                return folder
        return None

    def detect_format(self) -> str | None:
        if self._pickle_dir() is not None:
            return "pickle"
        if has_class_folders(Path(self.root) / "train"):
            return "folder"
        return None

    def _not_found(self, reason: str | None = None) -> DataNotFoundError:
        root = self.root
        return missing_data_error(
            self.name, root,
            [f"{root}/{self.spec['folder']}/ (the official python version, as torchvision downloads it)",
             f"{root}/train/<class>/*.png|jpg and {root}/test/<class>/*.png|jpg (class folders)"],
            "set dataset.download=true on a machine with internet (torchvision fetches the python version), "
            "or unpack an archive of either layout there",
            found=describe_dir(root), reason=reason)

    def prepare_data(self) -> None:
        if self.detect_format() is not None or not self.download:
            return
        from torchvision import datasets

        cls = datasets.CIFAR10 if self.num_classes == 10 else datasets.CIFAR100
        self.download_or_explain(lambda: cls(self.root, train=True, download=True),
                                 lambda reason: self._not_found(reason=reason))

    def load_raw(self):
        fmt = self.detect_format()
        if fmt == "pickle":
            folder = self._pickle_dir()
            key = self.spec["label_key"]
            return _read_pickles(folder, self.spec["train"], key), _read_pickles(folder, self.spec["test"], key)
        if fmt == "folder":
            train, test = class_folder_splits(Path(self.root), self.name)
            if len(train.classes) != self.num_classes:
                raise ConfigError(f"{self.name}: {self.root}/train has {len(train.classes)} class folders, "
                                 f"expected {self.num_classes}; check dataset.root")
            return train, test
        raise self._not_found()

    def train_transform(self):
        r = self.resolution
        steps = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
        if r != 32:
            steps.append(v2.Resize(r, antialias=True))
        return v2.Compose([*steps, *normalize_tail(self.spec["mean"], self.spec["std"])])

    def eval_transform(self):
        steps = [] if self.resolution == 32 else [v2.Resize(self.resolution, antialias=True)]
        return v2.Compose([*steps, *normalize_tail(self.spec["mean"], self.spec["std"])])
