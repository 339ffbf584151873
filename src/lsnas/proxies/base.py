"""Training-free (and few-step) proxies: small functions that score a network on a minibatch.

    @register_proxy("ntk_trace", higher_is_better=True)
    def ntk_trace(net, x, y) -> float: ...

A proxy takes the network (in the BN mode the caller chose), a batch of inputs and their labels, and
returns one float. ``higher_is_better`` says which way it ranks architectures, so a search can maximise
``sign * value`` whatever the proxy. Degenerate cases (a zero kernel, a non-finite value) return a defined
value with a warning, never raise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lsnas.registry import Registry


@dataclass(frozen=True)
class Proxy:
    name: str
    fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
    higher_is_better: bool

    def __call__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        value = float(self.fn(net, x, y))
        if not math.isfinite(value):
            warnings.warn(f"proxy {self.name} is {value} for this network; recorded as NaN", stacklevel=2)
            return float("nan")
        return value

    @property
    def sign(self) -> int:
        """+1 or -1: ``sign * value`` is higher for architectures the proxy prefers."""
        return 1 if self.higher_is_better else -1


PROXIES: Registry[Proxy] = Registry("proxy", setting="proxy.names")


def register_proxy(name: str, higher_is_better: bool) -> Callable:
    def add(fn: Callable) -> Callable:
        PROXIES.register(name)(Proxy(name, fn, higher_is_better))
        return fn

    return add


def get_proxy(name: str) -> Proxy:
    return PROXIES.get(name)
