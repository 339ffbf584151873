"""Proxies that rank architectures without (or with little) training, registered by name."""

from lsnas.proxies import ntk, zero_cost  # noqa: F401  (register their proxies)
from lsnas.proxies.base import PROXIES, Proxy, get_proxy, register_proxy

__all__ = ["PROXIES", "Proxy", "get_proxy", "register_proxy"]
