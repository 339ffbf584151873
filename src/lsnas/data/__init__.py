"""One LightningDataModule per dataset family, each instantiated from ``conf/dataset/<name>.yaml``."""

from lsnas.data.base import DataNotFoundError, ImageClassificationDataModule, split_indices

__all__ = ["DataNotFoundError", "ImageClassificationDataModule", "split_indices"]
