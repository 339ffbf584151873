"""File indexes of large image sets: which images exist, of which class, and where their bytes are.

Listing ImageNet-scale data (1.3M files; 14M images in 21,841 tars for ImageNet-22K) takes minutes,
so an index is built once (classes in parallel, with progress), saved as one ``.npz`` and re-used by
later runs and by every rank. An index is deterministic: classes and files are sorted, so every node
that builds it builds the same one.

A sample is either a whole file (``offsets is None``) or a byte range inside a tar archive: the
per-class tars ImageNet-22K is distributed as are read in place, with no extraction.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import os
import tarfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lsnas.errors import ConfigError
from lsnas.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


@dataclass(frozen=True, eq=False)
class ImageIndex:
    """``labels[i]`` is the class of sample i; its bytes are file ``files[file_ids[i]]`` (relative to
    the dataset root), or, when ``offsets`` is set, ``sizes[i]`` bytes at ``offsets[i]`` inside it."""

    classes: tuple[str, ...]
    files: tuple[str, ...]
    file_ids: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray | None = None
    sizes: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.labels)
        if len(self.file_ids) != n or (self.offsets is not None and (len(self.offsets) != n or len(self.sizes) != n)):
            raise ValueError("an ImageIndex needs one file id (and offset and size, for tars) per label")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_archives(self) -> bool:
        return self.offsets is not None

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))

    def per_class(self) -> list[np.ndarray]:
        """For each class, the (ascending) sample indices of that class."""
        order = np.argsort(self.labels, kind="stable")
        return np.split(order, np.cumsum(self.class_counts())[:-1])

    def subset(self, indices: Sequence[int] | np.ndarray, classes: Sequence[int] | None = None) -> ImageIndex:
        """The samples at ``indices``; with ``classes`` (old label ids), relabelled to 0..len(classes)-1."""
        idx = np.asarray(indices, dtype=np.int64)
        labels = self.labels[idx]
        names = self.classes
        if classes is not None:
            remap = np.full(len(self.classes), -1, dtype=np.int64)
            remap[np.asarray(classes)] = np.arange(len(classes))
            labels = remap[labels]
            if (labels < 0).any():
                raise ValueError("subset: some samples belong to classes that were not kept")
            names = tuple(self.classes[c] for c in classes)
        return ImageIndex(names, self.files, self.file_ids[idx], labels.astype(np.int32),
                          None if self.offsets is None else self.offsets[idx],
                          None if self.sizes is None else self.sizes[idx])

    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (self.classes, self.files):
            h.update("\n".join(part).encode())
        for arr in (self.file_ids, self.labels, self.offsets, self.sizes):
            h.update(b"-" if arr is None else np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    # -- persistence -------------------------------------------------------------------------
    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        out = {"classes": _pack(self.classes), "files": _pack(self.files), "file_ids": self.file_ids,
               "labels": self.labels}
        if self.offsets is not None:
            out.update(offsets=self.offsets, sizes=self.sizes)
        return {prefix + k: v for k, v in out.items()}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "") -> ImageIndex:
        get = lambda k: arrays[prefix + k] if prefix + k in arrays else None
        return cls(_unpack(get("classes")), _unpack(get("files")), get("file_ids"), get("labels"), get("offsets"),
                   get("sizes"))


def _pack(names: Sequence[str]) -> np.ndarray:
    """Names as newline-joined UTF-8 bytes: compact for 14M paths (a fixed-width str array is 4 bytes
    per character of the longest name)."""
    return np.frombuffer("\n".join(names).encode(), dtype=np.uint8) if names else np.zeros(0, np.uint8)


def _unpack(packed: np.ndarray) -> tuple[str, ...]:
    return tuple(packed.tobytes().decode().split("\n")) if len(packed) else ()


def save_indexes(path: str | os.PathLike, indexes: dict[str, ImageIndex]) -> Path:
    """Several named indexes (e.g. train/test) in one ``.npz``, written atomically."""
    import io

    arrays = {}
    for name, index in indexes.items():
        arrays.update(index.arrays(prefix=f"{name}/"))
    arrays["splits"] = _pack(list(indexes))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_indexes(path: str | os.PathLike) -> dict[str, ImageIndex]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return {name: ImageIndex.from_arrays(arrays, prefix=f"{name}/") for name in _unpack(arrays["splits"])}


def cache_key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def cached(path: Path, build: Callable[[], dict[str, ImageIndex]], rebuild: bool = False,
           what: str = "index") -> dict[str, ImageIndex]:
    """Load the indexes saved at ``path``, or build and save them first."""
    if path.is_file() and not rebuild:
        try:
            return load_indexes(path)
        except Exception as e:  # a cache from an older lsnas, or a damaged file: rebuild it
            log.warning("%s cache %s is unreadable (%s); rebuilding it", what, path, e)
    indexes = build()
    save_indexes(path, indexes)
    log.info("%s: %s written to %s", what, ", ".join(f"{k} {len(v)} images" for k, v in indexes.items()), path)
    return indexes


def _parallel(fn: Callable, items: Sequence, desc: str, workers: int | None, processes: bool = False) -> list:
    """``[fn(x) for x in items]`` in order, on threads (directory listing waits on the disk) or on
    processes (parsing tar headers is Python work that holds the GIL)."""
    if processes:
        workers = workers or min(32, os.cpu_count() or 1)
        # fork: works from notebooks and stdin scripts too (spawn re-imports __main__)
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method))
        chunks = {"chunksize": max(1, len(items) // (workers * 16))}
    else:
        workers = workers or min(32, (os.cpu_count() or 1) * 4)
        pool, chunks = ThreadPoolExecutor(max_workers=workers), {}
    with pool:
        return list(tqdm(pool.map(fn, items, **chunks), total=len(items), desc=desc, unit="class",
                         disable=len(items) < 50, leave=False))


def _report_empty(classes: Sequence[str], counts: Iterable[int], where: str) -> None:
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        log.warning("%d of %d classes under %s have no images: %s%s", len(empty), len(classes), where,
                    ", ".join(empty[:10]), " ..." if len(empty) > 10 else "")


def _assemble(classes: Sequence[str], per_class_files: list[list[str]], where: str) -> ImageIndex:
    _report_empty(classes, map(len, per_class_files), where)
    files = tuple(f for fs in per_class_files for f in fs)
    labels = np.repeat(np.arange(len(classes), dtype=np.int32), [len(fs) for fs in per_class_files])
    return ImageIndex(tuple(classes), files, np.arange(len(files), dtype=np.int64), labels)


def list_class_dirs(root: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def index_class_folders(root: str | os.PathLike, split: str = "", classes: Sequence[str] | None = None,
                        inner: str = "", workers: int | None = None) -> ImageIndex:
    """``<root>/<split>/<class>/<inner>/<image>``; ``classes`` defaults to the sorted class folders.
    Paths are stored relative to ``root``."""
    base = Path(root) / split
    classes = list(classes) if classes is not None else list_class_dirs(base)

    def scan(c: str) -> list[str]:
        folder = base / c / inner
        if not folder.is_dir():
            return []
        rel = Path(split, c, inner)
        return sorted(str(rel / e.name) for e in os.scandir(folder) if e.is_file() and is_image_name(e.name))

    return _assemble(classes, _parallel(scan, classes, f"indexing {base}", workers), str(base))


def tar_members(path: str | os.PathLike) -> list[tuple[str, int, int]]:
    """(name, data offset, size) of each image member of an uncompressed tar, from its headers only."""
    with tarfile.open(path, mode="r:") as tar:
        return sorted((m.name, m.offset_data, m.size) for m in tar if m.isfile() and is_image_name(m.name))


def index_class_tars(root: str | os.PathLike, workers: int | None = None) -> ImageIndex:
    """``<root>/<class>.tar``, one uncompressed tar of images per class (how ImageNet-22K is distributed)."""
    root = Path(root)
    tars = sorted(p.name for p in root.iterdir() if p.suffix == ".tar" and p.is_file())
    classes = [Path(t).stem for t in tars]
    members = _parallel(tar_members, [str(root / t) for t in tars], f"indexing tars in {root}", workers,
                        processes=len(tars) > 1)
    _report_empty(classes, map(len, members), str(root))
    counts = [len(m) for m in members]
    flat = [m for ms in members for m in ms]
    return ImageIndex(tuple(classes), tuple(tars),
                      np.repeat(np.arange(len(tars), dtype=np.int64), counts),
                      np.repeat(np.arange(len(classes), dtype=np.int32), counts),
                      np.array([m[1] for m in flat], dtype=np.int64), np.array([m[2] for m in flat], dtype=np.int64))


def per_class_holdout(index: ImageIndex, per_class: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic (kept, held-out) split taken within each class, so every class with at least
    two images is in both parts. ``per_class``: a count (>= 1) or a fraction (< 1) of each class."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for members in index.per_class():
        n_out = take_count(per_class, len(members))
        n_out = min(n_out, max(len(members) - 1, 0))  # never empty a class
        perm = rng.permutation(members)
        held.append(perm[:n_out])
        kept.append(perm[n_out:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    return cat(kept), cat(held)


def take_count(amount: float | int | None, available: int) -> int:
    """How many of ``available`` items a rule asks for: None = all, an int >= 1 = that count (capped),
    a float in (0, 1] = that fraction (rounded, at least 1 when any are available)."""
    if amount is None:
        return available
    if isinstance(amount, float) and 0.0 < amount <= 1.0:
        return min(available, max(1, int(round(amount * available)))) if available else 0
    if amount >= 1 and float(amount).is_integer():
        return min(int(amount), available)
    if amount == 0:
        return 0
    raise ConfigError(f"an image count must be null (all), an integer >= 1 or a fraction in (0, 1); got {amount!r}")
