"""ImageNet-scale data as WebDataset shards, for multi-node training: a converter and a DataModule.

Millions of small files starve a shared file system; a few thousand large tars stream well. The
converter (``python -m lsnas.data.shards dataset=<indexed family or proxy> out=<folder>``) writes
each split of the dataset's index as shuffled shards of ``shard_size`` images (the original encoded
bytes, unreadable images dropped and counted), plus ``meta.json`` with classes and per-shard counts.
It writes into ``<out>.partial`` and renames at the end, so a folder with ``meta.json`` is complete.

The DataModule gives each rank a disjoint set of shards (rank r of w reads shards r, r+w, ...), and
each loader worker a disjoint part of those.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lsnas.data.base import ImageClassificationDataModule, describe_dir, missing_data_error
from lsnas.data.records import ON_CORRUPT, CorruptImageCounter, CorruptImageError, IndexedImageDataset
from lsnas.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ImageNetStyleTransforms
from lsnas.errors import ConfigError
from lsnas.utils.io import atomic_write_json

log = logging.getLogger(__name__)

META = "meta.json"
CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def write_shards(datamodule, out: str | os.PathLike, shard_size: int = 5000, seed: int = 0) -> dict:
    """Write every split of ``datamodule.indexes()`` as shards under ``out``; returns the metadata."""
    import webdataset as wds

    out = Path(out)
    if (out / META).is_file():
        raise FileExistsError(f"{out} already holds converted shards ({META}); choose another out=")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    indexes = datamodule.indexes()
    meta = {"source": datamodule.name, "source_root": str(Path(datamodule.root).resolve()),
            "classes": list(next(iter(indexes.values())).classes), "splits": {}}
    for split, index in indexes.items():
        reader = IndexedImageDataset(datamodule.root, index, on_corrupt="error")
        order = np.random.default_rng(seed).permutation(len(index))  # mix classes within every shard
        counts, skipped, written = [], 0, 0
        with wds.ShardWriter(str(partial / f"{split}-%06d.tar"), maxcount=shard_size, verbose=0) as sink:
            for i in tqdm(order, desc=f"{split} shards", unit="img", disable=len(order) < 1000):
                try:
                    reader.decode(i)  # drop what no reader could use
                except Exception as e:
                    skipped += 1
                    log.warning("not converting unreadable image %s (%s)", reader.location(i), e)
                    continue
                sink.write({"__key__": f"{split}{written:09d}", "jpg": reader.read_bytes(i),
                            "cls": int(index.labels[i])})
                written += 1
                if not counts or counts[-1] == shard_size:
                    counts.append(0)
                counts[-1] += 1
        meta["splits"][split] = {"shards": [f"{split}-{k:06d}.tar" for k in range(len(counts))], "counts": counts,
                                 "images": int(sum(counts)), "skipped": skipped}
    atomic_write_json(partial / META, meta)
    if out.exists():
        out.rmdir()  # only an empty folder may be replaced (a non-empty one raises here)
    os.replace(partial, out)
    return meta


class _CorruptHandler:
    """WebDataset's exception handler: count and continue, or fail (``dataset.on_corrupt``)."""

    def __init__(self, counter: CorruptImageCounter, on_corrupt: str):
        self.counter, self.on_corrupt = counter, on_corrupt

    def __call__(self, exn: Exception) -> bool:
        if self.on_corrupt == "error":
            raise CorruptImageError(f"unreadable sample in a shard: {exn} (set dataset.on_corrupt=skip)") from exn
        self.counter.add()
        log.warning("skipping an unreadable sample: %s", exn)
        return True


def rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class WebDatasetDataModule(ImageNetStyleTransforms, ImageClassificationDataModule):
    """Streams ``root`` (a converter output). ``val_split``: the shards' split used for validation
    (``val`` for a converted proxy, else none); ``test`` is the test split."""

    def __init__(self, root: str, num_classes: int | None = None, resolution: int = 224,
                 shuffle_buffer: int = 5000, on_corrupt: str = "skip", val_split: str | None = None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, min_scale: float = 0.08, crop_fraction: float = 0.875,
                 **kwargs):
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"dataset.on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
        super().__init__(root=root, num_classes=num_classes, resolution=resolution, in_channels=3, **kwargs)
        self.shuffle_buffer, self.on_corrupt, self.val_split = shuffle_buffer, on_corrupt, val_split
        self.set_imagenet_style(mean, std, min_scale, crop_fraction)
        self._meta: dict | None = None

    @property
    def meta(self) -> dict:
        if self._meta is None:
            path = Path(self.root) / META
            if not path.is_file():
                partial = Path(self.root + ".partial").exists()
                raise missing_data_error(
                    self.name, self.root, [f"{self.root}/{META} and {self.root}/<split>-NNNNNN.tar"],
                    "convert a dataset with: python -m lsnas.data.shards dataset=<name> dataset.root=<its root> "
                    f"out={self.root}",
                    found=describe_dir(self.root) + (" (a conversion did not finish: .partial exists)" if partial
                                                     else ""))
            self._meta = json.loads(path.read_text())
            found = len(self._meta["classes"])
            if self.num_classes is None:
                self.num_classes = found
            elif self.num_classes != found:
                raise ConfigError(f"{self.name}: dataset.num_classes={self.num_classes} but {path} lists {found} "
                                 "classes; fix dataset.num_classes")
        return self._meta

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])

    def shards_of_rank(self, split: str, rank: int, world: int) -> tuple[list[str], int]:
        """This rank's shard paths (every ``world``-th, from ``rank``) and how many images they hold."""
        info = self.meta["splits"].get(split)
        if info is None:
            raise ConfigError(f"{self.name}: no {split!r} shards under {self.root}; "
                             f"it has {sorted(self.meta['splits'])}")
        if split == "train" and len(info["shards"]) < world:
            raise ConfigError(f"{self.name}: {len(info['shards'])} train shards cannot feed {world} ranks disjointly; "
                             "convert again with a smaller shard_size")
        picked = range(rank, len(info["shards"]), world)
        return [str(Path(self.root) / info["shards"][k]) for k in picked], sum(info["counts"][k] for k in picked)

    # the base's map-style machinery does not apply to a stream
    def load_raw(self):
        raise NotImplementedError("a WebDataset stream has no random access")

    def search_halves(self, train_portion: float, seed: int):
        raise ConfigError(f"{self.name}: one-shot search needs random access to split the data; search on "
                         "dataset=imagenet_proxy (or the indexed family the shards came from) instead")

    def setup(self, stage: str | None = None) -> None:
        _ = self.meta  # fail early on a missing or mismatched folder

    def resolve_num_classes(self) -> int:
        _ = self.meta  # sets num_classes from meta.json
        return self.num_classes

    def _pipeline(self, split: str, train: bool, rank: int | None = None, world: int | None = None):
        import webdataset as wds

        if rank is None:
            rank, world = rank_and_world()
        info = self.meta["splits"].get(split) or {"shards": []}
        # An evaluation split with fewer shards than ranks: every rank reads all of it and keeps every
        # world-th sample, so no rank is left without data (and without the epoch-end metric sync).
        sample_split = not train and 0 < len(info["shards"]) < world
        if sample_split:
            urls = [str(Path(self.root) / s) for s in info["shards"]]
            images = len(range(rank, info["images"], world))
        else:
            urls, images = self.shards_of_rank(split, rank, world)
        if train and self.num_workers > len(urls):
            log.warning("%s: %d loader workers but rank %d has %d shards; %d workers stay idle", self.name,
                        self.num_workers, rank, len(urls), self.num_workers - len(urls))
        handler = _CorruptHandler(self.corrupt, self.on_corrupt)
        transform = self.train_transform() if train else self.eval_transform()
        batch = self.batch_size if train else self.eval_batch_size
        ds = wds.WebDataset(urls, handler=handler, shardshuffle=len(urls) if train else False,
                            nodesplitter=None, workersplitter=wds.split_by_worker, empty_check=False,
                            seed=self.shuffle_seed + rank if train else None)
        if train:
            ds = ds.shuffle(self.shuffle_buffer)
        if sample_split:
            ds = ds.slice(rank, None, world)
        ds = ds.decode("pil", handler=handler).to_tuple("jpg", "cls", handler=handler)
        ds = ds.map_tuple(lambda im: transform(im.convert("RGB")), int).batched(batch, partial=not train)
        loader = wds.WebLoader(ds, batch_size=None, num_workers=self.num_workers, pin_memory=self.pin_memory,
                               persistent_workers=self.persistent_workers)
        with warnings.catch_warnings():  # with_length only sets len(); with_epoch sets the epoch
            warnings.simplefilter("ignore", UserWarning)
            if train:
                # every rank takes the same number of steps; a rank with fewer images wraps around
                total = self.meta["splits"][split]["images"]
                steps = max(1, total // (world * batch))
                return loader.repeat().with_epoch(steps).with_length(steps)
            return loader.with_length(math.ceil(images / batch))

    def train_dataloader(self):
        return self._pipeline("train", train=True)

    def val_dataloader(self):
        return self._pipeline(self.val_split, train=False) if self.val_split else []

    def test_dataloader(self):
        return self._pipeline("test", train=False)


def main(argv: list[str] | None = None) -> dict:
    """``python -m lsnas.data.shards dataset=<name> dataset.root=<root> out=<folder> [shard_size=5000]``"""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("shards", overrides=list(sys.argv[1:] if argv is None else argv))
    datamodule = instantiate(cfg.dataset)
    if not hasattr(datamodule, "indexes"):
        raise ConfigError(f"dataset={cfg.dataset.name} is not an indexed family; convert one of imagenet1k, "
                         "imagenet22k, tiny_imagenet or an imagenet_proxy")
    meta = write_shards(datamodule, cfg.out, cfg.shard_size, cfg.seed)
    for split, info in meta["splits"].items():
        print(f"{split}: {info['images']} images in {len(info['shards'])} shards ({info['skipped']} unreadable "
              f"skipped) -> {cfg.out}")
    return meta


if __name__ == "__main__":
    main()
