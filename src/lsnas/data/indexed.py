"""DataModules of image sets too large to list on every run: read through cached file indexes.

A family (ImageNet-1K, ImageNet-22K, Tiny-ImageNet, ...) says how to check its layout and how to
index its train and test splits; the base caches the indexes (built on one process per node in
``prepare_data``; deterministic, so identical on every node), reads images with corrupt-file
handling and applies the ImageNet-style transforms. Families register under the name that
``dataset.source`` of the proxy sets (``lsnas.data.proxy``) uses.
"""

from __future__ import annotations

import abc
import logging
import os
from pathlib import Path

from lsnas.data.base import ImageClassificationDataModule
from lsnas.data.index import ImageIndex, cache_key, cached
from lsnas.data.records import IndexedImageDataset
from lsnas.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ImageNetStyleTransforms
from lsnas.errors import ConfigError
from lsnas.registry import Registry

log = logging.getLogger(__name__)

SOURCES: Registry[type[IndexedImageDataModule]] = Registry("proxy source", setting="dataset.source")


def register_source(name: str):
    """Class decorator: make a family usable as ``dataset.source=<name>`` of a proxy set."""
    return SOURCES.register(name)


def source_family(name: str) -> type[IndexedImageDataModule]:
    return SOURCES.get(name)


class IndexedImageDataModule(ImageNetStyleTransforms, ImageClassificationDataModule):
    def __init__(self, root: str, num_classes: int | None = None, resolution: int = 224,
                 index_dir: str | None = None, rebuild_index: bool = False, on_corrupt: str = "skip",
                 index_workers: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 min_scale: float = 0.08, crop_fraction: float = 0.875, **kwargs):
        super().__init__(root=root, num_classes=num_classes, resolution=resolution, in_channels=3, **kwargs)
        self.index_dir = Path(index_dir) if index_dir else Path(root) / ".lsnas_index"
        self.rebuild_index, self.on_corrupt, self.index_workers = bool(rebuild_index), on_corrupt, index_workers
        self.set_imagenet_style(mean, std, min_scale, crop_fraction)
        self._indexes: dict[str, ImageIndex] | None = None

    # -- what a family provides --------------------------------------------------------------
    @abc.abstractmethod
    def check_layout(self) -> None:
        """Raise DataNotFoundError (what was expected, what was found) unless the root looks right.
        Cheap: it runs before a cached index is trusted."""

    @abc.abstractmethod
    def build_indexes(self) -> dict[str, ImageIndex]:
        """``{"train": ..., "test": ...}`` with the same classes."""

    def index_options(self) -> tuple:
        """Settings that change the index (they key its cache file)."""
        return ()

    # -- shared ------------------------------------------------------------------------------
    def index_path(self) -> Path:
        key = cache_key(type(self).__qualname__, os.path.abspath(self.root), self.index_options())
        return self.index_dir / f"{self.name}-{key}.npz"

    def indexes(self) -> dict[str, ImageIndex]:
        if self._indexes is None:
            self.check_layout()
            self._indexes = cached(self.index_path(), self.build_indexes, rebuild=self.rebuild_index,
                                   what=f"{self.name} index")
            self.rebuild_index = False  # once per run, not on every rank's setup after prepare_data
        return self._indexes

    @property
    def classes(self) -> tuple[str, ...]:
        return self.indexes()["train"].classes

    def prepare_data(self) -> None:
        self.indexes()  # Lightning runs this on one process per node, before setup on every rank

    def check_num_classes(self, found: int, where: str) -> None:
        if self.num_classes is None:
            self.num_classes = found
        elif self.num_classes != found:
            raise ConfigError(f"{self.name}: dataset.num_classes={self.num_classes} but {where} has {found} "
                             "classes; fix dataset.num_classes (or the data)")

    def load_raw(self):
        indexes = self.indexes()
        self.check_num_classes(len(indexes["train"].classes), self.root)
        return tuple(IndexedImageDataset(self.root, indexes[split], self.on_corrupt, self.corrupt)
                     for split in ("train", "test"))
