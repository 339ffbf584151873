"""Search spaces, one module (or package) each; importing registers them by name."""

from lsnas.spaces import bignas, blresnext, darts, mbv2, resnet, sparse  # noqa: F401  (register their spaces)
from lsnas.spaces.base import SearchSpace, get_space, known_spaces, network_kwargs, register_space, space_from_config

__all__ = ["SearchSpace", "get_space", "known_spaces", "network_kwargs", "register_space", "space_from_config"]
