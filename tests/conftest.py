import os

import torch

# Under pytest-xdist (the README runs `pytest -n 2`) each worker has one of the machine's cores: one torch
# thread, and the runs the tests start as subprocesses inherit OMP_NUM_THREADS=1. Alone, two threads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(2)
