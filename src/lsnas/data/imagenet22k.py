"""ImageNet-21K/22K (fall 2011 release: 21,841 classes, ~14M images, 1 to ~3,000 images per class),
read from class folders or, without extracting anything, from the per-class tars it is distributed as
(``<root>/<wnid>.tar``). There is no official split: a deterministic per-class held-out set is the
test split. The long tail makes a class-balanced sampler (``dataset.sampler=balanced``) and per-class
accuracy (written by train.py) useful. For many nodes, convert to WebDataset shards with
``python -m lsnas.data.shards`` and train with ``dataset=webdataset``."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset, Sampler

from lsnas.data.base import describe_dir, missing_data_error
from lsnas.data.folder import has_class_folders
from lsnas.data.index import index_class_folders, index_class_tars, per_class_holdout
from lsnas.data.indexed import IndexedImageDataModule, register_source
from lsnas.data.sampling import EpochBalancedSampler, dataset_labels
from lsnas.errors import ConfigError

FORMATS = ("auto", "tars", "folders")
SAMPLERS = ("random", "balanced")


@register_source("imagenet22k")
class ImageNet22kDataModule(IndexedImageDataModule):
    def __init__(self, root: str, format: str = "auto", holdout_per_class: float | int = 50,
                 holdout_seed: int = 0, sampler: str = "random", **kwargs):
        if format not in FORMATS:
            raise ConfigError(f"dataset.format must be one of {FORMATS}, got {format!r}")
        if sampler not in SAMPLERS:
            raise ConfigError(f"dataset.sampler must be one of {SAMPLERS}, got {sampler!r}")
        super().__init__(root=root, **kwargs)
        self.format, self.holdout_per_class, self.holdout_seed, self.sampler = (format, holdout_per_class,
                                                                                holdout_seed, sampler)

    def _detected_format(self) -> str | None:
        root = Path(self.root)
        if self.format != "auto":
            return self.format
        if root.is_dir() and any(p.suffix == ".tar" for p in root.iterdir()):
            return "tars"
        return "folders" if has_class_folders(root) else None

    def check_layout(self) -> None:
        fmt = self._detected_format()
        root = Path(self.root)
        ok = {"tars": lambda: any(p.suffix == ".tar" for p in root.iterdir()),
              "folders": lambda: has_class_folders(root)}
        if fmt is None or not root.is_dir() or not ok[fmt]():
            raise missing_data_error(
                self.name, self.root,
                [f"{root}/<wnid>.tar (one uncompressed tar of JPEGs per class, as distributed; "
                 "dataset.format=tars)", f"{root}/<wnid>/*.JPEG (dataset.format=folders)"],
                "download the ImageNet-21K (fall11_whole) release from image-net.org and extract its outer "
                "tar (the per-class tars can stay packed)", found=describe_dir(root))

    def index_options(self) -> tuple:
        return (self._detected_format(), self.holdout_per_class, self.holdout_seed)

    def build_indexes(self):
        if self._detected_format() == "tars":
            full = index_class_tars(self.root, workers=self.index_workers)
        else:
            full = index_class_folders(self.root, workers=self.index_workers)
        kept, held = per_class_holdout(full, self.holdout_per_class, self.holdout_seed)
        return {"train": full.subset(kept), "test": full.subset(held)}

    def train_sampler(self, dataset: Dataset, stream: int) -> Sampler:
        if self.sampler == "balanced":
            return EpochBalancedSampler(dataset_labels(dataset), self.shuffle_seed + stream, self.batch_size)
        return super().train_sampler(dataset, stream)
