"""Search spaces, one module (or package) each; importing registers them by name."""

from lsnas.spaces import darts  # noqa: F401  (registers "darts")
from lsnas.spaces.base import SearchSpace, get_space, known_spaces, register_space

__all__ = ["SearchSpace", "get_space", "known_spaces", "register_space"]
