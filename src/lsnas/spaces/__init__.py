"""Search spaces, one module (or package) each; importing registers them by name."""

from lsnas.spaces.base import SearchSpace, get_space, known_spaces, register_space
from lsnas.spaces import darts  # noqa: F401  (registers "darts")

__all__ = ["SearchSpace", "get_space", "known_spaces", "register_space"]
