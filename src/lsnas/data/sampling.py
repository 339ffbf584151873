"""Shuffling that depends only on (seed, epoch), so a resumed run sees exactly the data an
uninterrupted one would."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from lightning.fabric.utilities.seed import seed_everything
from torch.utils.data import Dataset, Sampler


class EpochSeededSampler(Sampler[int]):
    """The epoch's order is drawn from (seed, epoch). Starting an epoch's iteration also reseeds the
    process RNGs from (seed, epoch), which fixes that epoch's augmentations (in-process loading)
    and other draws (GDAS's Gumbel noise).

    Lightning calls ``set_epoch`` before it creates each epoch's iterator, on a fresh start and on a
    resume alike (hook order differs between the two, so an ``on_train_epoch_start`` reseed is not
    enough). Where no ``set_epoch`` arrives (Lightning's DDP wrapper around a custom sampler), the
    epoch counts iterations instead: every epoch still differs, but a resumed DDP run is not
    bit-identical.
    """

    def __init__(self, num_samples: int, seed: int):
        self.num_samples, self.seed = num_samples, seed
        self.epoch, self._epoch_was_set = 0, False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._epoch_was_set = epoch, True

    def __len__(self) -> int:
        return self.num_samples

    def order(self, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        if not self._epoch_was_set:
            self.epoch += 1
        self._epoch_was_set = False
        seed = (self.seed * 1_000_003 + self.epoch) % 2**32
        seed_everything(seed, workers=True, verbose=False)
        return iter(self.order(torch.Generator().manual_seed(seed)).tolist())


class EpochRandomSampler(EpochSeededSampler):
    """A random permutation per epoch."""

    def order(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randperm(self.num_samples, generator=generator)


class EpochBalancedSampler(EpochSeededSampler):
    """Class-balanced sampling for long-tailed data: each epoch draws as many samples as the set
    holds, with replacement, each class equally likely (samples weighted by 1 / class size)."""

    def __init__(self, labels: np.ndarray, seed: int):
        super().__init__(len(labels), seed)
        counts = np.bincount(labels)
        self.weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.float64)

    def order(self, generator: torch.Generator) -> torch.Tensor:
        return torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """The labels of a (TransformSubset of an) indexed dataset, without decoding any image."""
    indices = getattr(dataset, "indices", None)
    base = getattr(dataset, "base", dataset)
    labels = np.asarray(base.index.labels)
    return labels if indices is None else labels[np.asarray(indices)]
