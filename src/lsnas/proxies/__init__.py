"""Proxies that rank architectures without (or with little) training, registered by name."""

from lsnas.proxies import ntk  # noqa: F401  (registers the NTK proxies)
from lsnas.proxies.base import PROXIES, Proxy, get_proxy, register_proxy

__all__ = ["PROXIES", "Proxy", "get_proxy", "register_proxy"]
