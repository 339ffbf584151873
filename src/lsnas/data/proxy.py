"""Proxy sets of ImageNet-like data, built by explicit rules, for searching where full ImageNet is
too expensive (PC-DARTS: 10% / 2.5% of each class; NASTransfer: fewer classes, fewer images per
class, lower resolution).

The rules pick classes (all, the first N, or N at random with a seed) and, within each class, a
search-train part, a search-validation part (disjoint; the architecture half of a one-shot search)
and test images from the source's test split, each a count or a fraction of the class. The chosen
files are materialised once into an index file keyed by the rules and the source's index, so later
runs and every rank and node read the same list.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

# the families register themselves as sources on import
import lsnas.data.imagenet  # noqa: F401
import lsnas.data.imagenet22k  # noqa: F401
import lsnas.data.tiny_imagenet  # noqa: F401
from lsnas.data.base import TransformSubset, evaluation_order
from lsnas.data.index import ImageIndex, cache_key, take_count
from lsnas.data.indexed import IndexedImageDataModule, source_family
from lsnas.data.records import IndexedImageDataset
from lsnas.errors import ConfigError
from lsnas.utils.io import atomic_write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyRules:
    classes: Literal["all", "first", "random"] = "all"
    num_classes: int | None = None      # for first/random: how many classes
    class_seed: int = 0
    train_per_class: float | int | None = None   # None: every image of the class not in val
    val_per_class: float | int | None = 0        # taken first, so val is the same whatever train asks
    test_per_class: float | int | None = None    # from the source's test split
    image_seed: int = 0

    def __post_init__(self):
        if self.classes not in ("all", "first", "random"):
            raise ConfigError(f"dataset.classes must be all, first or random; got {self.classes!r}")
        if self.classes != "all" and not self.num_classes:
            raise ConfigError(f"dataset.classes={self.classes} needs dataset.num_classes (how many classes)")

    def chosen_classes(self, available: int) -> np.ndarray:
        if self.classes == "all":
            if self.num_classes is not None and self.num_classes != available:
                raise ConfigError(f"dataset.classes=all but dataset.num_classes={self.num_classes} while the source "
                                 f"has {available} classes; set dataset.num_classes=null or choose "
                                 "dataset.classes=first|random")
            return np.arange(available)
        if self.num_classes > available:
            raise ConfigError(f"dataset.num_classes={self.num_classes} but the source has only {available} classes")
        if self.classes == "first":
            return np.arange(self.num_classes)
        return np.sort(np.random.default_rng(self.class_seed).choice(available, self.num_classes, replace=False))

    def select(self, train: ImageIndex, test: ImageIndex) -> dict[str, ImageIndex]:
        classes = self.chosen_classes(len(train.classes))
        train_members, test_members = train.per_class(), test.per_class()
        parts = {"train": [], "val": [], "test": []}
        for c in classes:
            # one generator per (seed, class): a class's images do not depend on which others were chosen
            perm = np.random.default_rng([self.image_seed, int(c)]).permutation(train_members[c])
            n_val = take_count(self.val_per_class, len(perm))
            n_train = min(take_count(self.train_per_class, len(perm)), len(perm) - n_val)
            parts["val"].append(perm[:n_val])
            parts["train"].append(perm[n_val:n_val + n_train])
            test_perm = np.random.default_rng([self.image_seed, int(c), 1]).permutation(test_members[c])
            parts["test"].append(test_perm[:take_count(self.test_per_class, len(test_perm))])
        source = {"train": train, "val": train, "test": test}
        return {split: source[split].subset(np.sort(np.concatenate(idx)) if idx else [], classes=classes)
                for split, idx in parts.items()}


class ImageNetProxyDataModule(IndexedImageDataModule):
    """A proxy set of ``source`` (a registered indexed family: imagenet1k, imagenet22k, tiny_imagenet):
    an indexed family whose index is selected from the source's by the rules."""

    def __init__(self, root: str, source: str = "imagenet1k", source_options: dict | None = None,
                 classes: str = "all", num_classes: int | None = None, class_seed: int = 0,
                 train_per_class: float | int | None = None, val_per_class: float | int | None = 0,
                 test_per_class: float | int | None = None, image_seed: int = 0, index_dir: str | None = None,
                 rebuild_index: bool = False, on_corrupt: str = "skip", index_workers: int | None = None, **kwargs):
        self.rules = ProxyRules(classes, num_classes, class_seed, train_per_class, val_per_class,
                                test_per_class, image_seed)
        self.source = source_family(source)(root=root, name=source, index_dir=index_dir,
                                            rebuild_index=rebuild_index, on_corrupt=on_corrupt,
                                            index_workers=index_workers, **(source_options or {}))
        # the source may resolve its root (e.g. into tiny-imagenet-200/); the index paths are relative to it
        super().__init__(root=self.source.root, num_classes=num_classes, index_dir=str(self.source.index_dir),
                         rebuild_index=rebuild_index, on_corrupt=on_corrupt, index_workers=index_workers, **kwargs)
        self.source_name = source
        self._index_path: Path | None = None

    def check_layout(self) -> None:
        self.source.check_layout()

    def index_path(self) -> Path:
        if self._index_path is None:  # once: the digests hash the whole source index
            src = self.source.indexes()
            key = cache_key(src["train"].digest(), src["test"].digest(), asdict(self.rules))
            self._index_path = self.index_dir / f"proxy-{self.source_name}-{key}.npz"
        return self._index_path

    def build_indexes(self) -> dict[str, ImageIndex]:
        src = self.source.indexes()
        return self.rules.select(src["train"], src["test"])

    def indexes(self) -> dict[str, ImageIndex]:
        first = self._indexes is None
        indexes = super().indexes()
        if first:
            atomic_write_json(self.index_path().with_suffix(".json"), self.describe())
            log.info("%s: %s", self.name, self.describe())
        return indexes

    def describe(self) -> dict:
        """The rules and the resulting sizes (also written next to the index file and into summaries)."""
        sizes = {f"{split}_images": len(index) for split, index in (self._indexes or {}).items()}
        return {"name": self.name, "source": self.source_name, "source_root": str(Path(self.root).resolve()),
                "resolution": self.resolution, **asdict(self.rules), **sizes,
                "classes_kept": len(self._indexes["train"].classes) if self._indexes else None}

    def _dataset(self, split: str) -> IndexedImageDataset:
        return IndexedImageDataset(self.root, self.indexes()[split], self.on_corrupt, self.corrupt)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train, test = self.raw()
        self.train_set = TransformSubset(train, None, self.train_transform())
        val = self._dataset("val")  # class-sorted: mixed, so capped validation batches see every class
        self.val_set = TransformSubset(val, evaluation_order(len(val), self.split_seed), self.eval_transform())
        self.test_set = TransformSubset(test, evaluation_order(len(test), self.split_seed), self.eval_transform())

    def search_halves(self, train_portion: float, seed: int):
        """The rules' train part trains the weights and their val part the architecture (PC-DARTS's
        10% / 2.5%); without a val part, the train part is split by ``method.train_portion``."""
        train, _ = self.raw()
        val = self._dataset("val")
        if len(val) == 0:
            return super().search_halves(train_portion, seed)
        log.info("%s: searching with the proxy's own split (%d weight images, %d architecture images); "
                 "method.train_portion is not used", self.name, len(train), len(val))
        return (TransformSubset(train, None, self.train_transform()),
                TransformSubset(val, None, self.train_transform()),
                TransformSubset(val, evaluation_order(len(val), seed), self.eval_transform()))
