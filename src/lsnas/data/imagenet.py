"""ImageNet-1K (ILSVRC-2012) in its standard folder layout: ``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``."""

from __future__ import annotations

from pathlib import Path

from lsnas.data.base import describe_dir, missing_data_error
from lsnas.data.folder import has_class_folders
from lsnas.data.index import index_class_folders, list_class_dirs
from lsnas.data.indexed import IndexedImageDataModule, register_source
from lsnas.errors import ConfigError

HOW_TO_GET = ("download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from image-net.org, extract the "
              "train tar's per-class tars into train/<wnid>/, and sort val/ into val/<wnid>/ (e.g. with the "
              "valprep.sh script of the PyTorch ImageNet example)")


@register_source("imagenet1k")
class ImageNetDataModule(IndexedImageDataModule):
    """The official validation set is the test split (labels of the ImageNet test set are not public);
    ``dataset.val_fraction`` holds out part of train for model selection."""

    LAYOUT = "{root}/train/<wnid>/*.JPEG and {root}/val/<wnid>/*.JPEG"

    def check_layout(self) -> None:
        root = Path(self.root)
        layout = [self.LAYOUT.format(root=root)]
        if not has_class_folders(root / "train"):
            raise missing_data_error(self.name, self.root, layout, HOW_TO_GET, found=describe_dir(root))
        if not has_class_folders(root / "val"):
            found = describe_dir(root / "val")
            raise missing_data_error(self.name, self.root, layout, HOW_TO_GET,
                                     found=f"val/: {found} (val/ must be sorted into one folder per class)")

    def build_indexes(self):
        root = Path(self.root)
        train = index_class_folders(root, "train", workers=self.index_workers)
        extra = sorted(set(list_class_dirs(root / "val")) - set(train.classes))
        if extra:
            raise ConfigError(f"{self.name}: val/ under dataset.root={self.root!r} has classes that train/ lacks: "
                             f"{extra[:10]}")
        return {"train": train, "test": index_class_folders(root, "val", classes=train.classes,
                                                            workers=self.index_workers)}
