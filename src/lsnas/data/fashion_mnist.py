"""Fashion-MNIST from its IDX files (gzipped or not), in torchvision's layout
(``root/FashionMNIST/raw/``) or flat, as Debian's ``dataset-fashion-mnist`` installs it
(``/usr/share/datasets/fashion-mnist/``)."""

from __future__ import annotations

import gzip
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

MEAN, STD = (0.2860,), (0.3530,)
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (magic: two zero bytes, dtype code, number of dimensions; big-endian sizes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=_IDX_DTYPES[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {array.size} values (truncated?)")
    return array.reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    return next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)


class FashionMNISTDataModule(ImageClassificationDataModule):
    def __init__(self, root: str, resolution: int = 28, download: bool = True, **kwargs):
        super().__init__(root=root, num_classes=10, resolution=resolution, in_channels=1, **kwargs)
        self.download = download

    def _folder(self) -> Path | None:
        root = Path(self.root)
        for folder in (root, root / "FashionMNIST" / "raw"):
            if all(_find(folder, s) for pair in FILES.values() for s in pair):
                return folder
        return None

    def _not_found(self, reason: str | None = None) -> DataNotFoundError:
        root = self.root
        return missing_data_error(
            "fashion_mnist", root,
            [f"{root}/train-images-idx3-ubyte[.gz] (+ train-labels, t10k-images, t10k-labels), flat",
             f"{root}/FashionMNIST/raw/<the same four files> (torchvision's layout)"],
            "`apt-get install dataset-fashion-mnist` (then dataset.root=/usr/share/datasets/fashion-mnist), "
            "or dataset.download=true on a machine with internet",
            found=describe_dir(root), reason=reason)

    def prepare_data(self) -> None:
        if self._folder() is not None or not self.download:
            return
        from torchvision.datasets import FashionMNIST

        self.download_or_explain(lambda: FashionMNIST(self.root, train=True, download=True),
                                 lambda reason: self._not_found(reason=reason))

    def load_raw(self):
        folder = self._folder()
        if folder is None:
            raise self._not_found()
        splits = []
        for images_stem, labels_stem in FILES.values():
            images, labels = read_idx(_find(folder, images_stem)), read_idx(_find(folder, labels_stem))
            splits.append(ArrayImageDataset(images, labels))
        return tuple(splits)

    def train_transform(self):
        r = self.resolution
        return v2.Compose([v2.Resize(r, antialias=True), v2.RandomCrop(r, padding=r // 7),
                           v2.RandomHorizontalFlip(), *normalize_tail(MEAN, STD)])

    def eval_transform(self):
        return v2.Compose([v2.Resize(self.resolution, antialias=True), *normalize_tail(MEAN, STD)])
