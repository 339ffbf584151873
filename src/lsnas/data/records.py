"""Reading the images an ImageIndex points at, with corrupt files skipped and counted.

Large crawled sets always hold a few unreadable images (truncated JPEGs, CMYK PNGs saved as .JPEG,
HTML error pages). Following timm, an unreadable sample is replaced by the next readable one, so
batches keep their size (BatchNorm, DDP and paired search loaders rely on that); the skip is counted
in shared memory, so counts from loader worker processes reach the main process, which reports them
once per epoch (``lsnas.training.callbacks.CorruptImageReport``). ``on_corrupt="error"`` fails fast.
"""

from __future__ import annotations

import io
import logging
import multiprocessing as mp
import os
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from lsnas.data.index import ImageIndex
from lsnas.errors import ConfigError

log = logging.getLogger(__name__)

ON_CORRUPT = ("skip", "error")
MAX_CONSECUTIVE_SKIPS = 50


class CorruptImageError(OSError):
    """An image could not be decoded and ``dataset.on_corrupt=error``."""


class CorruptImageCounter:
    """A process-shared count of skipped images; loader workers add to it, the trainer reads and
    resets it once per epoch."""

    def __init__(self):
        self._value = mp.get_context().Value("q", 0)

    def __getstate__(self) -> dict:
        # Shared memory travels only to processes being started (loader workers, spawned ranks);
        # any other copy (a deepcopy, a pickle to disk) gets a fresh counter of its own.
        from multiprocessing import context

        return {"value": self._value if context.get_spawning_popen() is not None else None}

    def __setstate__(self, state: dict) -> None:
        self._value = state["value"] if state["value"] is not None else mp.get_context().Value("q", 0)

    def add(self, n: int = 1) -> None:
        with self._value.get_lock():
            self._value.value += n

    def take(self) -> int:
        """The count so far; resets it to zero."""
        with self._value.get_lock():
            n, self._value.value = self._value.value, 0
        return n


class IndexedImageDataset(Dataset):
    """Samples ``(PIL RGB image, label)`` of an ImageIndex whose paths are relative to ``root``."""

    def __init__(self, root: str | os.PathLike, index: ImageIndex, on_corrupt: str = "skip",
                 counter: CorruptImageCounter | None = None):
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"dataset.on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
        self.root, self.index, self.on_corrupt = Path(root), index, on_corrupt
        self.counter = counter or CorruptImageCounter()

    def __len__(self) -> int:
        return len(self.index)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.index.classes

    def location(self, i: int) -> str:
        path = self.root / self.index.files[self.index.file_ids[i]]
        return str(path) if not self.index.in_archives else f"{path}@{int(self.index.offsets[i])}"

    def read_bytes(self, i: int) -> bytes:
        path = self.root / self.index.files[self.index.file_ids[i]]
        with open(path, "rb") as f:
            if not self.index.in_archives:
                return f.read()
            f.seek(int(self.index.offsets[i]))  # a member of an uncompressed tar is a plain byte range
            return f.read(int(self.index.sizes[i]))

    def decode(self, i: int) -> Image.Image:
        with Image.open(io.BytesIO(self.read_bytes(i))) as image:
            return image.convert("RGB")  # forces the full decode, so truncation surfaces here

    def __getitem__(self, i: int):
        for attempt in range(MAX_CONSECUTIVE_SKIPS):
            j = (i + attempt) % len(self)
            try:
                return self.decode(j), int(self.index.labels[j])
            except FileNotFoundError as e:  # not a bad image: the files changed after indexing
                raise FileNotFoundError(f"{e.filename} is in the cached file index but not on disk; rebuild the "
                                        "index with dataset.rebuild_index=true (or fix dataset.root)") from e
            except Exception as e:
                if self.on_corrupt == "error":
                    raise CorruptImageError(f"unreadable image {self.location(j)}: {type(e).__name__}: {e} "
                                            "(set dataset.on_corrupt=skip to skip such images)") from e
                self.counter.add()
                log.warning("skipping unreadable image %s (%s: %s)", self.location(j), type(e).__name__, e)
        raise CorruptImageError(f"{MAX_CONSECUTIVE_SKIPS} consecutive unreadable images from "
                                f"{self.location(i)}: the data under {self.root} looks damaged")
