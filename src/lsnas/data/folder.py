"""Class-folder images (``<split>/<class>/*``) and the generic ``image_folder`` DataModule."""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets import ImageFolder

from lsnas.data.base import ImageClassificationDataModule, describe_dir, missing_data_error
from lsnas.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ImageNetStyleTransforms
from lsnas.errors import ConfigError


def has_class_folders(split_dir: Path) -> bool:
    return split_dir.is_dir() and any(p.is_dir() for p in split_dir.iterdir())


def class_folder_splits(root: Path, name: str, test_names=("test", "val")) -> tuple[ImageFolder, ImageFolder]:
    """The ``train`` and test (first of ``test_names`` present) ImageFolders; their classes must agree."""
    train = ImageFolder(str(root / "train"))
    test_dir = next((root / t for t in test_names if has_class_folders(root / t)), None)
    if test_dir is None:
        raise missing_data_error(name, str(root), [f"{root}/train/<class>/*.jpg and {root}/test/<class>/*.jpg"],
                                 "put the held-out images in test/<class>/ (or val/<class>/)",
                                 found=describe_dir(root))
    test = ImageFolder(str(test_dir))
    if test.classes != train.classes:
        extra = sorted(set(test.classes) ^ set(train.classes))
        raise ConfigError(f"{name}: train/ and {test_dir.name}/ under dataset.root={str(root)!r} have different "
                         f"classes (differing: {extra[:10]})")
    return train, test


class ImageFolderDataModule(ImageNetStyleTransforms, ImageClassificationDataModule):
    """Any ``root/train/<class>/*`` + ``root/test|val/<class>/*`` image set, ImageNet-style augmentation."""

    def __init__(self, root: str, resolution: int = 224, num_classes: int | None = None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs):
        super().__init__(root=root, num_classes=num_classes, resolution=resolution, in_channels=3, **kwargs)
        self.set_imagenet_style(mean, std)

    def load_raw(self):
        root = Path(self.root)
        if not has_class_folders(root / "train"):
            raise missing_data_error("image_folder", self.root,
                                     [f"{root}/train/<class>/<image>, {root}/test/<class>/<image> (or val/)"],
                                     "arrange your images in one folder per class", found=describe_dir(root))
        train, test = class_folder_splits(root, "image_folder")
        if self.num_classes is None:
            self.num_classes = len(train.classes)
        elif self.num_classes != len(train.classes):
            raise ConfigError(f"image_folder: dataset.num_classes={self.num_classes} but {root}/train has "
                             f"{len(train.classes)} class folders; fix dataset.num_classes")
        return train, test
