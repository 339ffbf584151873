"""Run an entry point (``python other_alphas.py search.py <overrides>``) whose DARTS supernets initialise their
architecture parameters from another random stream than the run's seed gives, the weights and data untouched: a
rank started this way begins from other alphas than its peers."""

import runpy
import sys

import torch

from lsnas.spaces.darts import supernet

_init = supernet.DartsSupernet.__init__


def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    g = torch.Generator().manual_seed(12345)
    with torch.no_grad():
        for p in self.arch_parameters():
            p.copy_(1e-3 * torch.randn(p.shape, generator=g))


supernet.DartsSupernet.__init__ = __init__
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
