"""Small Lightning callbacks the training runs share."""

from __future__ import annotations

import time

import lightning as L


class WallClock(L.Callback):
    """Training wall time, accumulated across resumes (its state lives in the checkpoint)."""

    def __init__(self):
        self.previous_s = 0.0
        self._start: float | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    @property
    def elapsed_s(self) -> float:
        return self.previous_s + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def state_dict(self) -> dict:
        return {"elapsed_s": self.elapsed_s}

    def load_state_dict(self, state_dict: dict) -> None:
        self.previous_s = float(state_dict["elapsed_s"])
