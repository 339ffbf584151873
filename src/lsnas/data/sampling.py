"""Shuffling and augmentation that depend only on (seed, epoch, position), so a resumed run sees exactly
the data an uninterrupted one would, resumed at an epoch's end or in its middle."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from lightning.fabric.utilities.seed import seed_everything
from torch.utils.data import Dataset, Sampler

_resume_batches = 0  # batches of the current epoch a mid-epoch checkpoint had done (0: start epochs whole)


def resume_mid_epoch(batches: int) -> None:
    """The next epoch each training sampler starts begins after ``batches`` batches (of every rank): set when
    a mid-epoch checkpoint is restored, cleared (0) once that epoch is over."""
    global _resume_batches
    _resume_batches = int(batches)


class SeededIndex(int):
    """A dataset index that carries the seed of its sample's random augmentation: the augmentation is then a
    function of (seed, epoch, position in the epoch) only, whichever process loads it and whatever ran
    before, so a resumed epoch augments its remaining samples as the uninterrupted one did."""

    def __new__(cls, index: int, seed: int):
        self = super().__new__(cls, index)
        self.seed = seed
        return self

    def __reduce__(self):  # to loader worker processes
        return SeededIndex, (int(self), self.seed)


@contextlib.contextmanager
def seeded_rngs(seed: int):
    """Run the body with torch's CPU generator seeded from ``seed``, and give the process its own stream back
    afterwards (so a sample's augmentation draws nothing from it). lsnas's pipelines are torchvision v2
    transforms, which draw from that generator only; seeding ``random`` and NumPy as well would cost ~70 us a
    sample (their states are large), for transforms no pipeline uses."""
    state = torch.get_rng_state()
    torch.default_generator.manual_seed(seed)  # not torch.manual_seed: the GPU streams stay untouched
    try:
        yield
    finally:
        torch.set_rng_state(state)


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


class EpochSeededSampler(Sampler[int]):
    """The epoch's order is drawn from (seed, epoch). Starting an epoch's iteration also reseeds the
    process RNGs from (seed, epoch), which fixes that epoch's augmentations (in-process loading)
    and other draws (GDAS's Gumbel noise).

    Lightning calls ``set_epoch`` before it creates each epoch's iterator, on a fresh start and on a
    resume alike (hook order differs between the two, so an ``on_train_epoch_start`` reseed is not
    enough). Where no ``set_epoch`` arrives (Lightning's DDP wrapper around a custom sampler), the
    epoch counts iterations instead: every epoch still differs, but a resumed DDP run is not
    bit-identical.

    Each index carries its sample's augmentation seed (``SeededIndex``). After a mid-epoch checkpoint is
    restored (``resume_mid_epoch``), the epoch's order is the same and starts after the batches already
    done: ``batch_size`` samples per batch and rank, the ranks taking interleaved positions (Lightning's DDP
    wrapper strides over this order).
    """

    def __init__(self, num_samples: int, seed: int, batch_size: int = 1):
        self.num_samples, self.seed, self.batch_size = num_samples, seed, int(batch_size)
        self.epoch, self._epoch_was_set = 0, False
        self._resumed = False

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
        order = self.order(torch.Generator().manual_seed(seed)).tolist()
        skip = 0
        if _resume_batches and not self._resumed:  # the first epoch after a mid-epoch restore
            skip, self._resumed = _resume_batches * self.batch_size * _world_size(), True
        return (SeededIndex(index, (seed * 2_654_435_761 + position) % 2**63)
                for position, index in enumerate(order) if position >= skip)


class EpochRandomSampler(EpochSeededSampler):
    """A random permutation per epoch."""

    def order(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randperm(self.num_samples, generator=generator)


class EpochBalancedSampler(EpochSeededSampler):
    """Class-balanced sampling for long-tailed data: each epoch draws as many samples as the set
    holds, with replacement, each class equally likely (samples weighted by 1 / class size)."""

    def __init__(self, labels: np.ndarray, seed: int, batch_size: int = 1):
        super().__init__(len(labels), seed, batch_size)
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
