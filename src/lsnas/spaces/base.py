"""The SearchSpace contract and the registry that maps an arch.json's ``space`` to its class."""

from __future__ import annotations

import abc
import random
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from torch import nn

from lsnas.arch import Architecture
from lsnas.registry import Registry

SPACES: Registry[type[SearchSpace]] = Registry("search space", setting="space.name, or an arch.json's space")


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Class decorator: make ``cls`` the space for architectures whose ``space`` is ``cls.name``."""
    return SPACES.register(cls.name)(cls)


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)()


def known_spaces() -> list[str]:
    return SPACES.names()


def space_from_config(settings: Mapping) -> SearchSpace:
    """The space a ``space=`` config describes: built from its ``_target_`` with its settings (a search box,
    fixed decisions), or the registered space of that name with its defaults."""
    if settings.get("_target_"):
        from hydra.utils import instantiate

        return instantiate(settings, _convert_="all")
    return get_space(settings["name"])


def network_kwargs(space: SearchSpace, model: Mapping) -> dict:
    """The ``protocol.model`` settings for ``space``'s networks: its own keys; another space's are left out,
    and a key that no space knows is an error (a typo would otherwise be ignored)."""
    known = {key for name in SPACES.names() for key in SPACES.get(name).network_settings}
    unknown = sorted(set(model) - known)
    if unknown:
        from lsnas.errors import ConfigError

        raise ConfigError(f"protocol.model has settings no space's networks take: {unknown}; the {space.name} "
                          f"space takes {list(space.network_settings)}")
    return {k: v for k, v in model.items() if k in space.network_settings}


class SearchSpace(abc.ABC):
    """Knows its architectures: validates, samples, mutates, encodes and builds them."""

    name: ClassVar[str]
    #: the keys of ``protocol.model`` this space's networks take (``build``'s keyword arguments). A protocol
    #: may hold settings for several spaces' networks; each space takes its own (``network_kwargs``).
    network_settings: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def canonical_genotype(self, genotype: Any) -> dict:
        """Validate ``genotype`` and return its canonical JSON form; raise ValueError saying what is wrong."""

    def architecture(self, genotype: Any) -> Architecture:
        return Architecture(self.name, genotype)

    # What multi-trial strategies and surrogates use. A space implements those it can; a strategy
    # that needs one it lacks is refused at start-up (``supports``).
    def sample(self, rng: random.Random) -> Architecture:
        """A uniformly random architecture."""
        raise NotImplementedError(f"the {self.name!r} space cannot sample architectures")

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """A neighbour of ``arch`` differing in one decision."""
        raise NotImplementedError(f"the {self.name!r} space cannot mutate architectures")

    def encode(self, arch: Architecture) -> np.ndarray:
        """A fixed-length float vector for surrogates; ``decode(encode(a)) == a``."""
        raise NotImplementedError(f"the {self.name!r} space cannot encode architectures")

    def decode(self, vector: np.ndarray) -> Architecture:
        """The architecture a (possibly continuous) vector encodes."""
        raise NotImplementedError(f"the {self.name!r} space cannot decode vectors")

    @classmethod
    def supports(cls, operation: str) -> bool:
        """Whether the space implements ``operation`` (sample, mutate, encode, decode, supernet)."""
        return getattr(cls, operation) is not getattr(SearchSpace, operation)

    @abc.abstractmethod
    def build(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int],
              **network: Mapping[str, Any]) -> nn.Module:
        """The trainable network of ``arch`` for images of ``input_shape`` (C, H, W)."""

    def supernet(self, num_classes: int, input_shape: tuple[int, int, int], **kwargs) -> nn.Module:
        """The weight-sharing network of one-shot methods, for spaces that have one."""
        raise NotImplementedError(f"the {self.name!r} space has no supernet; one-shot methods cannot search it")
