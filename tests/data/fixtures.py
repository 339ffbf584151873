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
