"""Images per second of the three ImageNet-scale readers on the real Tiny-ImageNet images:
class folders (one file per image), per-class tars (read in place at indexed offsets, as
ImageNet-22K is distributed) and WebDataset shards (streamed), each with 0, 2 and 4 loader workers.

    python benchmarks/data_throughput.py --root <folder holding tiny-imagenet-200/> --scratch /tmp/tp

Each measurement decodes JPEGs and applies the training transform (RandomResizedCrop to
--resolution, flip, normalisation), batch 64, starting from a fresh DataLoader (worker start-up
included). The tars and shards are built from the same training images under --scratch (once).
Run it alone on the machine; throughput follows the free CPU cores.
"""

from __future__ import annotations

import argparse
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from lsnas.data.base import TransformSubset
from lsnas.data.imagenet22k import ImageNet22kDataModule
from lsnas.data.index import index_class_folders, index_class_tars
from lsnas.data.records import IndexedImageDataset
from lsnas.data.shards import WebDatasetDataModule, write_shards
from lsnas.data.transforms import imagenet_train_transform


def build_tars(train_dir: Path, out: Path) -> Path:
    if out.is_dir() and any(out.glob("*.tar")):
        return out
    out.mkdir(parents=True, exist_ok=True)
    for cls in sorted(p for p in train_dir.iterdir() if p.is_dir()):
        with tarfile.open(out / f"{cls.name}.tar.tmp", "w") as tar:
            for image in sorted((cls / "images").iterdir()):
                tar.add(image, arcname=image.name)
        (out / f"{cls.name}.tar.tmp").rename(out / f"{cls.name}.tar")
    return out


def time_map_style(root: Path, index, picks: np.ndarray, workers: int, batch: int, resolution: int) -> float:
    dataset = TransformSubset(IndexedImageDataset(root, index), picks, imagenet_train_transform(resolution))
    start = time.perf_counter()
    n = sum(len(y) for _, y in DataLoader(dataset, batch_size=batch, num_workers=workers, shuffle=False))
    return n / (time.perf_counter() - start)


def time_webdataset(shards: Path, images: int, workers: int, batch: int, resolution: int) -> float:
    dm = WebDatasetDataModule(root=str(shards), resolution=resolution, batch_size=batch, num_workers=workers,
                              shuffle_buffer=1000, name="webdataset")
    start, n = time.perf_counter(), 0
    for _, y in dm.train_dataloader():
        n += len(y)
        if n >= images:
            break
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the folder holding tiny-imagenet-200/ (or that folder)")
    parser.add_argument("--scratch", required=True, help="where the tars and shards are written")
    parser.add_argument("--images", type=int, default=6400, help="images decoded per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)  # decoding parallelism comes from the workers

    root = Path(args.root)
    root = root / "tiny-imagenet-200" if (root / "tiny-imagenet-200").is_dir() else root
    scratch = Path(args.scratch)
    folder_index = index_class_folders(root, "train", inner="images")
    tars = build_tars(root / "train", scratch / "tars")
    tar_index = index_class_tars(tars)
    shards = scratch / "shards"
    if not (shards / "meta.json").is_file():
        write_shards(ImageNet22kDataModule(root=str(tars), holdout_per_class=0, index_dir=str(scratch / "idx"),
                                           name="tiny_tars"), shards, shard_size=2000)
    picks = np.random.default_rng(0).choice(len(folder_index), args.images, replace=False)

    print(f"{args.images} images per measurement, {args.resolution}px train transform, batch {args.batch}, "
          f"{torch.get_num_threads()} torch thread(s), {len(folder_index)} Tiny-ImageNet training images")
    print(f"{'reader':<12}" + "".join(f"{f'{w} workers':>14}" for w in args.workers) + "   (images/s)")
    rows = {"folder": lambda w: time_map_style(root, folder_index, picks, w, args.batch, args.resolution),
            "tar": lambda w: time_map_style(tars, tar_index, picks, w, args.batch, args.resolution),
            "webdataset": lambda w: time_webdataset(shards, args.images, w, args.batch, args.resolution)}
    for name, measure in rows.items():
        print(f"{name:<12}" + "".join(f"{measure(w):>14.0f}" for w in args.workers), flush=True)


if __name__ == "__main__":
    main()
