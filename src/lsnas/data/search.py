"""The data of a one-shot search: paired batches from the two halves of a dataset's training set."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import CombinedLoader

from lsnas.data.base import ImageClassificationDataModule
from lsnas.errors import ConfigError


class SearchDataModule(L.LightningDataModule):
    """Each training batch is ``{"weights": (x, y), "arch": (x, y)}``; validation runs on the
    architecture half with evaluation transforms. Under DDP, Lightning gives every rank a disjoint
    shard of each half."""

    def __init__(self, base: ImageClassificationDataModule, train_portion: float = 0.5, seed: int = 0):
        super().__init__()
        if not 0.0 < train_portion < 1.0:
            raise ConfigError(f"method.train_portion must be in (0, 1), got {train_portion}")
        self.base, self.train_portion, self.seed = base, train_portion, seed
        self.weights_set = self.arch_set = self.arch_eval_set = None

    @property
    def num_classes(self) -> int:
        return self.base.num_classes

    @property
    def corrupt(self):
        return self.base.corrupt

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.base.input_shape

    def prepare_data(self) -> None:
        self.base.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.weights_set is None:
            self.weights_set, self.arch_set, self.arch_eval_set = self.base.search_halves(self.train_portion,
                                                                                           self.seed)

    def train_dataloader(self) -> CombinedLoader:
        # min_size: one pass over the shorter half per epoch, as DARTS pairs its two queues
        return CombinedLoader({"weights": self.base.loader(self.weights_set, train=True, stream=0),
                               "arch": self.base.loader(self.arch_set, train=True, stream=1)}, mode="min_size")

    def val_dataloader(self):
        return self.base.loader(self.arch_eval_set, train=False)
