"""Run an entry point (``python slow_checkpoints.py train.py <overrides>``) whose checkpoint writes after the
first stall half-way for a minute: a test kills it there, during a checkpoint write."""

import io
import runpy
import sys
import time

import torch

_save, _writes = torch.save, [0]


def stalling_save(obj, f, *args, **kwargs):
    _writes[0] += 1
    if _writes[0] == 1 or not hasattr(f, "write"):
        return _save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    _save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    time.sleep(60)
    f.write(data[len(data) // 2:])


torch.save = stalling_save
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
