"""Tiny datasets written in the exact on-disk formats of the real ones."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_cifar_pickles(root: Path, num_classes: int = 10, n_train_per_batch: int = 6, n_test: int = 5) -> Path:
    """The official python version: cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
    or cifar-100-python/{train,test,meta}; ``data`` is uint8 (N, 3072) in CHW order."""
    rng = np.random.default_rng(0)
    ten = num_classes == 10
    folder = root / ("cifar-10-batches-py" if ten else "cifar-100-python")
    folder.mkdir(parents=True)
    key = "labels" if ten else "fine_labels"
    names = [f"data_batch_{i}" for i in range(1, 6)] if ten else ["train"]

    def dump(name, n, offset):
        labels = [(offset + i) % num_classes for i in range(n)]
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {"batch_label": name, key: labels, "data": data, "filenames": [f"{name}_{i}.png" for i in range(n)]}
        if not ten:
            batch["coarse_labels"] = [lab // 5 for lab in labels]
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        return data, labels

    train = [dump(n, n_train_per_batch, i) for i, n in enumerate(names)]
    test = dump("test_batch" if ten else "test", n_test, 0)
    with open(folder / ("batches.meta" if ten else "meta"), "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(num_classes)]}, f)
    return folder, train, test


def write_class_folders(root: Path, classes: list[str], per_class: dict[str, int], size=(32, 32),
                        ext: str = "jpg") -> Path:
    """``<root>/<split>/<class>/NNNN.<ext>`` as in the CIFAR-10 JPEG export / ImageNet-style folders."""
    rng = np.random.default_rng(1)
    for split, n in per_class.items():
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(d / f"{i:04d}.{ext}")
    return root


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion_mnist(folder: Path, n_train: int = 12, n_test: int = 6, gz: bool = True) -> dict:
    """The four IDX files (magic 0x00000803 images, 0x00000801 labels), optionally gzipped."""
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        arrays[prefix] = (images, labels)
        for name, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = _idx_bytes(arr)
            if gz:
                with gzip.open(folder / f"{name}.gz", "wb") as f:
                    f.write(data)
            else:
                (folder / name).write_bytes(data)
    return arrays


def _jpeg_bytes(rng, size=(16, 16)) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def write_imagenet(root: Path, classes: list[str], n_train: dict[str, int] | int, n_val: int,
                   size=(16, 16)) -> Path:
    """ILSVRC-2012 layout: ``train/<wnid>/<wnid>_<n>.JPEG`` and ``val/<wnid>/ILSVRC2012_val_<n>.JPEG``."""
    rng = np.random.default_rng(3)
    counts = n_train if isinstance(n_train, dict) else {c: n_train for c in classes}
    k = 0
    for c in classes:
        for split, n in (("train", counts[c]), ("val", n_val)):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                k += 1
                name = f"{c}_{i}.JPEG" if split == "train" else f"ILSVRC2012_val_{k:08d}.JPEG"
                (d / name).write_bytes(_jpeg_bytes(rng, size))
    return root


def write_class_tars(root: Path, counts: dict[str, int], size=(16, 16)) -> Path:
    """ImageNet-21K as distributed: one uncompressed ``<wnid>.tar`` of ``<wnid>_<n>.JPEG`` per class."""
    import io
    import tarfile

    rng = np.random.default_rng(4)
    root.mkdir(parents=True, exist_ok=True)
    for c, n in counts.items():
        with tarfile.open(root / f"{c}.tar", "w") as tar:
            for i in range(n):
                data = _jpeg_bytes(rng, size)
                info = tarfile.TarInfo(f"{c}_{i}.JPEG")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return root


def write_tiny_imagenet(root: Path, classes: list[str], n_train: int = 4, n_val_per_class: int = 2,
                        n_test: int = 3) -> Path:
    """The official tiny-imagenet-200 layout (64x64 JPEGs): wnids.txt, words.txt,
    train/<wnid>/{<wnid>_boxes.txt, images/<wnid>_<n>.JPEG}, val/{images/val_<n>.JPEG,
    val_annotations.txt (file, wnid, box)}, test/images/test_<n>.JPEG."""
    rng = np.random.default_rng(5)
    top = root / "tiny-imagenet-200"
    (top / "val" / "images").mkdir(parents=True)
    (top / "test" / "images").mkdir(parents=True)
    (top / "wnids.txt").write_text("".join(f"{c}\n" for c in classes))
    (top / "words.txt").write_text("".join(f"{c}\tthing {c}\n" for c in classes))
    for c in classes:
        images = top / "train" / c / "images"
        images.mkdir(parents=True)
        for i in range(n_train):
            (images / f"{c}_{i}.JPEG").write_bytes(_jpeg_bytes(rng, (64, 64)))
        (top / "train" / c / f"{c}_boxes.txt").write_text(
            "".join(f"{c}_{i}.JPEG\t0\t0\t63\t63\n" for i in range(n_train)))
    rows = []
    for k in range(n_val_per_class * len(classes)):
        name = f"val_{k}.JPEG"
        (top / "val" / "images" / name).write_bytes(_jpeg_bytes(rng, (64, 64)))
        rows.append(f"{name}\t{classes[(k * 7) % len(classes)]}\t1\t2\t60\t61\n")
    (top / "val" / "val_annotations.txt").write_text("".join(rows))
    for k in range(n_test):
        (top / "test" / "images" / f"test_{k}.JPEG").write_bytes(_jpeg_bytes(rng, (64, 64)))
    return top


def write_downsampled_imagenet(root: Path, size: int = 16, num_classes: int = 130, per_batch: int = 26,
                               n_val: int = 40, npz: bool = False) -> Path:
    """Chrabaszcz et al.'s format: train_data_batch_1..10 and val_data, dicts with ``data`` uint8
    (N, 3*size*size) channel-major and 1-based ``labels`` (pickles, or ``.npz`` with the same keys)."""
    rng = np.random.default_rng(6)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]
    for j, name in enumerate(names):
        n = n_val if name == "val_data" else per_batch
        labels = [1 + (j * per_batch + i) % num_classes for i in range(n)]
        data = rng.integers(0, 256, (n, 3 * size * size), dtype=np.uint8)
        if npz:
            np.savez(root / f"{name}.npz", data=data, labels=np.array(labels), mean=data.mean(0))
        else:
            with open(root / name, "wb") as f:
                pickle.dump({"data": data, "labels": labels, "mean": data.mean(0)}, f)
    return root


def truncate(path: Path, keep: int = 100) -> None:
    """Make an image unreadable the way interrupted downloads do: cut it short."""
    path.write_bytes(path.read_bytes()[:keep])
