"""Downsampled ImageNet (Chrabaszcz, Loshchilov & Hutter, 2017) at 16, 32 or 64 px, and its
ImageNet16-120 subset (the first 120 classes at 16 px) used by NAS-Bench-201 and NATS-Bench.

Format, as distributed on image-net.org: ``train_data_batch_1`` .. ``train_data_batch_10`` and
``val_data``, each a pickled dict with ``data`` (uint8, N x 3*S*S, channel-major) and ``labels``
(1-based); the ``_npz`` variant holds the same arrays in ``<name>.npz`` files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from torchvision.transforms import v2

from lsnas.data.base import (
    ArrayImageDataset,
    ImageClassificationDataModule,
    describe_dir,
    missing_data_error,
    normalize_tail,
)
from lsnas.errors import ConfigError

TRAIN_FILES = [f"train_data_batch_{i}" for i in range(1, 11)]
VAL_FILE = "val_data"
# NAS-Bench-201's statistics of ImageNet16 (x / 255)
MEAN, STD = (0.481, 0.458, 0.408), (0.247, 0.243, 0.262)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 N x 3*S*S, 1-based labels) from a pickled or .npz batch file."""
    if path.suffix == ".npz":
        with np.load(path) as z:
            return z["data"], np.asarray(z["labels"])
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    return np.asarray(batch["data"], dtype=np.uint8), np.asarray(batch["labels"])


class DownsampledImageNetDataModule(ImageClassificationDataModule):
    """``max_class``: keep classes 1..max_class (120 gives ImageNet16-120); labels become 0-based."""

    def __init__(self, root: str, resolution: int = 32, num_classes: int = 1000, max_class: int | None = None,
                 **kwargs):
        super().__init__(root=root, num_classes=num_classes, resolution=resolution, in_channels=3, **kwargs)
        self.max_class = max_class

    def _file(self, name: str) -> Path | None:
        for candidate in (Path(self.root) / name, Path(self.root) / f"{name}.npz"):
            if candidate.is_file():
                return candidate
        return None

    def _read(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        s = self.resolution
        for name in names:
            data, lab = read_batch(self._file(name))
            if data.shape[1] != 3 * s * s:
                side = int(round((data.shape[1] / 3) ** 0.5))
                raise ConfigError(f"{self.name}: {name} holds {side}x{side} images but dataset.resolution={s}; "
                                 f"set dataset.resolution={side}")
            keep = lab <= self.max_class if self.max_class else slice(None)
            images.append(data[keep].reshape(-1, 3, s, s).transpose(0, 2, 3, 1))
            labels.append(lab[keep].astype(np.int64) - 1)
        return np.concatenate(images), np.concatenate(labels)

    def load_raw(self):
        missing = [n for n in [*TRAIN_FILES, VAL_FILE] if self._file(n) is None]
        if missing:
            raise missing_data_error(
                self.name, self.root,
                [f"{self.root}/train_data_batch_1..10 and {self.root}/val_data (pickles, or the same names + .npz)"],
                f"download the Imagenet{self.resolution} (or Imagenet16) train and val archives from "
                "https://image-net.org/download-images (Downsampled ImageNet) and unpack them into one folder",
                found=f"{describe_dir(self.root)} (missing: {', '.join(missing[:4])}"
                      f"{' ...' if len(missing) > 4 else ''})")
        train, test = self._read(TRAIN_FILES), self._read([VAL_FILE])
        found = int(train[1].max()) + 1
        if found != self.num_classes:
            raise ConfigError(f"{self.name}: dataset.num_classes={self.num_classes} but the batches hold labels "
                             f"1..{found}; fix dataset.num_classes (or dataset.max_class)")
        return ArrayImageDataset(*train), ArrayImageDataset(*test)

    def train_transform(self):
        return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomCrop(self.resolution, padding=self.resolution // 8),
                           *normalize_tail(MEAN, STD)])

    def eval_transform(self):
        return v2.Compose(normalize_tail(MEAN, STD))
