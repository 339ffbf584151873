"""scikit-learn's real 8x8 handwritten digits (1,797 images), shipped inside lsnas: the embedded default.

The file is scikit-learn's ``digits.csv.gz`` (UCI Optical Recognition of Handwritten Digits,
CC BY 4.0): 64 pixel values in 0..16 then the label, one image per row.
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np
from torchvision.transforms import v2

from lsnas.data.base import ArrayImageDataset, ImageClassificationDataModule, normalize_tail, split_indices

MEAN, STD = (0.3054,), (0.3770,)  # of the 0..1-scaled pixels


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 8, 8) scaled to 0..255, labels int64 (N,))."""
    with resources.files("lsnas.data.assets").joinpath("digits.csv.gz").open("rb") as raw, gzip.open(raw) as f:
        table = np.loadtxt(f, delimiter=",")
    images = np.round(table[:, :64] * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 8, 8)
    return images, table[:, 64].astype(np.int64)


class DigitsDataModule(ImageClassificationDataModule):
    """Digits upsampled to ``resolution`` (one channel); a fixed 20% of the images is the test split."""

    def __init__(self, resolution: int = 32, test_fraction: float = 0.2, **kwargs):
        kwargs.setdefault("root", "<embedded>")
        super().__init__(num_classes=10, resolution=resolution, in_channels=1, **kwargs)
        self.test_fraction = test_fraction

    def load_raw(self):
        images, labels = load_digits()
        train_idx, test_idx = split_indices(len(labels), self.test_fraction, seed=0)
        return (ArrayImageDataset(images[train_idx], labels[train_idx]),
                ArrayImageDataset(images[test_idx], labels[test_idx]))

    def train_transform(self):
        r = self.resolution
        # No flips: a mirrored digit is another symbol. Small shifts and rotations only.
        return v2.Compose([v2.Resize(r, antialias=True),
                           v2.RandomAffine(degrees=10, translate=(0.1, 0.1)), *normalize_tail(MEAN, STD)])

    def eval_transform(self):
        return v2.Compose([v2.Resize(self.resolution, antialias=True), *normalize_tail(MEAN, STD)])
