"""Tiny-ImageNet-200 in its official layout (cs231n): 200 classes of 64x64 images,
``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` labelled by ``val/val_annotations.txt``,
``wnids.txt``. The official test images carry no labels, so the validation set is the test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lsnas.data.base import describe_dir, missing_data_error
from lsnas.data.index import ImageIndex, index_class_folders
from lsnas.data.indexed import IndexedImageDataModule, register_source
from lsnas.errors import ConfigError

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


@register_source("tiny_imagenet")
class TinyImageNetDataModule(IndexedImageDataModule):
    def __init__(self, root: str, resolution: int = 64, min_scale: float = 0.35, crop_fraction: float = 1.0,
                 **kwargs):
        root = str(Path(root) / FOLDER) if (Path(root) / FOLDER / "wnids.txt").is_file() else root
        super().__init__(root=root, resolution=resolution, min_scale=min_scale, crop_fraction=crop_fraction,
                         **kwargs)

    def check_layout(self) -> None:
        root = Path(self.root)
        needed = [root / "wnids.txt", root / "train", root / "val" / "val_annotations.txt"]
        if not all(p.exists() for p in needed):
            missing = ", ".join(str(p.relative_to(root)) for p in needed if not p.exists())
            raise missing_data_error(
                self.name, self.root,
                [f"{root}/wnids.txt, {root}/train/<wnid>/images/*.JPEG, {root}/val/images/*.JPEG with "
                 f"{root}/val/val_annotations.txt (or their parent folder holding {FOLDER}/)"],
                f"download and unzip {URL}", found=f"{describe_dir(root)} (missing: {missing})")

    def build_indexes(self):
        root = Path(self.root)
        classes = (root / "wnids.txt").read_text().split()
        train = index_class_folders(root, "train", classes=sorted(classes), inner="images",
                                    workers=self.index_workers)
        label_of = {c: i for i, c in enumerate(train.classes)}
        rows = [line.split("\t")[:2] for line in (root / "val" / "val_annotations.txt").read_text().splitlines()
                if line.strip()]
        rows.sort()
        unknown = sorted({wnid for _, wnid in rows} - set(label_of))
        if unknown:
            raise ConfigError(f"{self.name}: val_annotations.txt names classes missing from wnids.txt: {unknown[:10]}")
        test = ImageIndex(train.classes, tuple(f"val/images/{name}" for name, _ in rows),
                          np.arange(len(rows), dtype=np.int64),
                          np.array([label_of[wnid] for _, wnid in rows], dtype=np.int32))
        return {"train": train, "test": test}
