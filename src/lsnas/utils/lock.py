"""One process at a time in a directory: an exclusive ``flock`` on a lock file that holds the owner's pid.

The lock goes with the process (a kill -9 releases it), so a stale file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from lsnas.errors import UserError


class DirLockedError(UserError):
    """Another process holds the directory's lock."""


class DirLock:
    """``with DirLock(path, "a running search", hint): ...``: the error names the holder's pid and what to do."""

    error = DirLockedError

    def __init__(self, path: str | Path, holder: str, hint: str):
        self.path, self.holder, self.hint = Path(path), holder, hint
        self._fd: int | None = None

    def __enter__(self) -> DirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise self.error(f"{self.path.parent} is in use by {self.holder} (pid {pid}); {self.hint}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
