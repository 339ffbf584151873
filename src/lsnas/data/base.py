"""What every image-classification DataModule shares: splits, transforms on subsets, loaders.

A subclass loads its raw train and test sets (samples as ``(PIL image, int label)``) and
declares its transforms; the base carves a deterministic held-out validation split from the
training set and builds the loaders. ``num_classes`` and ``input_shape`` come from the config,
so a network can be built (``dry_run``) without touching the data.
"""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lsnas.data.records import CorruptImageCounter
from lsnas.data.sampling import EpochRandomSampler, seeded_rngs
from lsnas.errors import ConfigError, UserError


class DataNotFoundError(UserError, FileNotFoundError):
    """The data is not where the config says, in no layout we read, and cannot be downloaded."""


def missing_data_error(name: str, root: str, layouts: Sequence[str], how_to_get: str,
                       found: str | None = None, reason: str | None = None) -> DataNotFoundError:
    lines = [f"{name}: no data found under dataset.root={root!r}."]
    if found:
        lines.append(f"Found instead: {found}")
    if reason:
        lines.append(f"Download failed: {reason}")
    lines.append("Expected one of these layouts:")
    lines += [f"  - {layout}" for layout in layouts]
    lines.append(f"To get it: {how_to_get}")
    lines.append("Then run again with dataset.root=<that folder>.")
    return DataNotFoundError("\n".join(lines))


def require_data(dataset: Mapping, key: str = "dataset") -> None:
    """Fetch (where ``download`` allows) and open a dataset config's data before any work depends on it; a
    missing dataset is an error whose settings are named under ``key``, where the config sits in the run's
    (a second dataset of a run, such as EAT-NAS's source, is ``method.source.dataset.root``, not
    ``dataset.root``)."""
    from hydra.utils import instantiate

    datamodule = instantiate(dict(dataset), batch_size=1)
    try:
        datamodule.prepare_data()
        datamodule.raw()
    except DataNotFoundError as e:
        raise DataNotFoundError(re.sub(r"(?<![\w.])dataset\.(?=\w)", f"{key}.", str(e))) from None


def describe_dir(root) -> str:
    root = Path(root)
    if not root.exists():
        return "the folder does not exist"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    return "an empty folder" if not entries else ", ".join(entries[:10]) + (" ..." if len(entries) > 10 else "")


MAX_AUTO_WORKERS = 8


def resolve_workers(num_workers: int | str) -> int:
    """``auto``: one loader worker per CPU core this process may use, at most 8; a number is taken as given."""
    if num_workers == "auto":
        return min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    try:
        return int(num_workers)
    except (TypeError, ValueError):
        raise ConfigError(f"dataset.num_workers must be 'auto' or a number, got {num_workers!r}") from None


def split_indices(n: int, holdout_fraction: float, seed: int,
                  labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic (kept, held-out) partition of ``range(n)``, the same on every rank and run.

    With ``labels`` the split is stratified: each class holds out its share (rounded so the total is
    ``round(n * holdout_fraction)``, largest remainders first), so both parts have the class balance of the
    whole, as the spline paper's 50/50 ImageNet-22K halves had. The held-out part stays in random order:
    evaluation loaders do not shuffle, and a capped number of validation batches (``limit_val_batches``) must
    see a sample of every class, not the first classes of a class-sorted dataset."""
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {holdout_fraction}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_out = int(round(n * holdout_fraction))
    if labels is None:
        return np.sort(perm[n_out:]), perm[:n_out]
    labels = np.asarray(labels)[perm]  # classes in the permuted order: each class's members are a random draw
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * holdout_fraction
    take = np.floor(share).astype(int)
    leftover = n_out - take.sum()
    take[np.argsort(-(share - take), kind="stable")[:leftover]] += 1
    rank = np.empty(n, dtype=np.int64)  # each sample's position among its class, in permuted order
    for c in classes:
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    held = rank < take[np.searchsorted(classes, labels)]
    return np.sort(perm[~held]), perm[held]


def dataset_labels(dataset: Dataset) -> np.ndarray | None:
    """The class of every sample when the dataset keeps them in memory (torchvision's ``targets``, ours'
    ``labels`` or file index), without reading an image; None for a dataset that cannot say."""
    for name in ("labels", "targets"):
        if getattr(dataset, name, None) is not None:
            return np.asarray(getattr(dataset, name))
    index = getattr(dataset, "index", None)
    return np.asarray(index.labels) if getattr(index, "labels", None) is not None else None


def evaluation_order(n: int, seed: int) -> np.ndarray:
    """A fixed random order for an evaluation split read in place (a test set, a proxy's architecture half):
    metrics over the whole split do not depend on it, and a capped number of batches (``limit_val_batches``,
    ``limit_test_batches``) then sees a sample of every class, not the first classes of a class-sorted folder."""
    return np.random.default_rng(seed).permutation(n)


class TransformSubset(Dataset):
    """A view of ``base`` at ``indices`` (all when None) with its own transform."""

    def __init__(self, base: Dataset, indices: Sequence[int] | None, transform: Callable):
        self.base, self.indices, self.transform = base, indices, transform

    def __len__(self) -> int:
        return len(self.base) if self.indices is None else len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.base[int(i) if self.indices is None else int(self.indices[i])]
        seed = getattr(i, "seed", None)  # a training sampler's index: the augmentation is seeded by its position
        if seed is None:
            return self.transform(image), label
        with seeded_rngs(seed):
            return self.transform(image), label


class ArrayImageDataset(Dataset):
    """Images held in memory as a uint8 array (N, H, W) or (N, H, W, C), served as PIL images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        from PIL import Image

        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self._to_pil = Image.fromarray
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self._to_pil(self.images[i]), int(self.labels[i])


class ImageClassificationDataModule(L.LightningDataModule, abc.ABC):
    def __init__(self, root: str, num_classes: int | None, resolution: int, in_channels: int = 3, name: str = "",
                 batch_size: int = 64, eval_batch_size: int | None = None, num_workers: int | str = 0,
                 pin_memory: bool | None = None, persistent_workers: bool = False,
                 val_fraction: float = 0.1, split_seed: int = 0):
        super().__init__()
        self.name = name or type(self).__name__
        self.root = str(root)
        self.num_classes = num_classes
        self.resolution = int(resolution)
        self.in_channels = int(in_channels)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = resolve_workers(num_workers)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.val_fraction = float(val_fraction)
        self.split_seed = int(split_seed)
        self.shuffle_seed = torch.initial_seed() % 2**31  # the run's seed (seed_everything runs first)
        self.train_set = self.val_set = self.test_set = None
        self._raw: tuple[Dataset, Dataset] | None = None
        self.corrupt = CorruptImageCounter()  # images the loaders skipped as unreadable (shared with workers)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.resolution, self.resolution)

    # -- what a dataset family provides ------------------------------------------------------
    @abc.abstractmethod
    def load_raw(self) -> tuple[Dataset, Dataset]:
        """The full raw (train, test) sets, samples ``(PIL image, label)``; raise DataNotFoundError."""

    @abc.abstractmethod
    def train_transform(self) -> Callable: ...

    @abc.abstractmethod
    def eval_transform(self) -> Callable: ...

    # -- shared machinery --------------------------------------------------------------------
    def download_or_explain(self, download: Callable[[], object], not_found: Callable[[str], Exception]) -> None:
        """Run a download; any failure (offline, proxy, disk) becomes the dataset's missing-data error."""
        try:
            download()
        except Exception as e:
            raise not_found(f"{type(e).__name__}: {e}") from e

    def resolve_num_classes(self) -> int:
        """The class count; when the config leaves it open, read (the index of) the data to find it."""
        if self.num_classes is None:
            self.prepare_data()
            self.raw()
        return self.num_classes

    def describe(self) -> dict:
        """What the run used (recorded in metrics.json and search_summary.json)."""
        sizes = {f"{name}_images": len(ds) for name, ds in
                 (("train", self.train_set), ("val", self.val_set), ("test", self.test_set)) if ds is not None}
        return {"name": self.name, "root": self.root, "num_classes": self.num_classes,
                "resolution": self.resolution, **sizes}

    def raw(self) -> tuple[Dataset, Dataset]:
        """The raw (train, test) sets, loaded once."""
        if self._raw is None:
            self._raw = self.load_raw()
        return self._raw

    def search_halves(self, train_portion: float, seed: int) -> tuple[Dataset, Dataset, Dataset]:
        """For one-shot search, the training set split into a part for the weights and a part for the
        architecture (DARTS: 50/50), both with training augmentation, plus the architecture part with
        evaluation transforms (for validation). The test split is never touched."""
        raw_train, _ = self.raw()
        weights_idx, arch_idx = split_indices(len(raw_train), 1.0 - train_portion, seed, dataset_labels(raw_train))
        return (TransformSubset(raw_train, weights_idx, self.train_transform()),
                TransformSubset(raw_train, arch_idx, self.train_transform()),
                TransformSubset(raw_train, arch_idx, self.eval_transform()))

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        raw_train, raw_test = self.raw()
        train_idx, val_idx = split_indices(len(raw_train), self.val_fraction, self.split_seed,
                                           dataset_labels(raw_train))
        self.train_set = TransformSubset(raw_train, train_idx, self.train_transform())
        self.val_set = TransformSubset(raw_train, val_idx, self.eval_transform())
        test_order = evaluation_order(len(raw_test), self.split_seed)
        self.test_set = TransformSubset(raw_test, test_order, self.eval_transform())

    def train_sampler(self, dataset: Dataset, stream: int) -> Sampler:
        # Training order from (seed, epoch): resumed runs see the same data as uninterrupted ones.
        return EpochRandomSampler(len(dataset), self.shuffle_seed + stream, self.batch_size)

    def loader(self, dataset: Dataset, train: bool, stream: int = 0) -> DataLoader:
        sampler = self.train_sampler(dataset, stream) if train else None
        return DataLoader(dataset, batch_size=self.batch_size if train else self.eval_batch_size,
                          sampler=sampler, drop_last=False, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.persistent_workers)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_set, train=True)

    def val_dataloader(self):
        return self.loader(self.val_set, train=False) if len(self.val_set) else []

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.test_set, train=False)


def normalize_tail(mean: Sequence[float], std: Sequence[float]) -> list:
    """The tensor conversion and normalisation every pipeline ends with."""
    from torchvision.transforms import v2

    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
