"""The standard ImageNet-style pipelines, parameterised by resolution (224 for ImageNet, 64 for
Tiny-ImageNet, 32 for a low-resolution proxy)."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.transforms import v2

from lsnas.data.base import normalize_tail

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def imagenet_train_transform(resolution: int, mean: Sequence[float] = IMAGENET_MEAN,
                             std: Sequence[float] = IMAGENET_STD, min_scale: float = 0.08) -> v2.Compose:
    """RandomResizedCrop (scale ``(min_scale, 1)``) and horizontal flip."""
    return v2.Compose([v2.RandomResizedCrop(resolution, scale=(min_scale, 1.0), antialias=True),
                       v2.RandomHorizontalFlip(), *normalize_tail(mean, std)])


def imagenet_eval_transform(resolution: int, mean: Sequence[float] = IMAGENET_MEAN,
                            std: Sequence[float] = IMAGENET_STD, crop_fraction: float = 0.875) -> v2.Compose:
    """Resize the short side to ``resolution / crop_fraction`` (256 for 224), then center-crop."""
    return v2.Compose([v2.Resize(int(round(resolution / crop_fraction)), antialias=True),
                       v2.CenterCrop(resolution), *normalize_tail(mean, std)])


class ImageNetStyleTransforms:
    """Mixin for DataModules: the two pipelines above from ``resolution``, ``mean``, ``std``,
    ``min_scale`` and ``crop_fraction`` (set by ``set_imagenet_style``)."""

    def set_imagenet_style(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, min_scale: float = 0.08,
                           crop_fraction: float = 0.875) -> None:
        self.mean, self.std, self.min_scale, self.crop_fraction = tuple(mean), tuple(std), min_scale, crop_fraction

    def train_transform(self) -> v2.Compose:
        return imagenet_train_transform(self.resolution, self.mean, self.std, self.min_scale)

    def eval_transform(self) -> v2.Compose:
        return imagenet_eval_transform(self.resolution, self.mean, self.std, self.crop_fraction)
