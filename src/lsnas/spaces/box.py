"""Box spaces: a base genotype and the decisions a search varies, each a dimension of the unit box.

A space's config names its dims (``space.dims``): each maps a name to a genotype path (``widths.0``) and
either a ``range`` [low, high] with a ``step`` or ``choices``; every other decision is the ``base``
genotype's. ``encode`` puts a genotype in the unit box of its dims, ``decode`` snaps any point of the box to
the nearest feasible genotype (so ``decode(encode(a)) == a``), and a box is extended past an edge by a
setting (``space.dims.<name>.range=[low, new high]``). The ResNet and Big-Little-Net ResNeXt spaces are box
spaces; the spline search needs one.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

import numpy as np

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.spaces.base import SearchSpace


class Dim:
    """One searched decision: a range with a step (integers, or floats when any bound or the step is one), or a
    list of choices, at a genotype path."""

    def __init__(self, name: str, path: str, range: list[float] | None = None, step: float = 1,
                 choices: list | None = None):
        if (range is None) == (choices is None):
            raise ConfigError(f"space.dims.{name} needs either range: [low, high] or choices: [...]")
        self.name, self.path = name, path.split(".")
        self.choices = list(choices) if choices is not None else None
        if range is not None:
            low, high = range
            self.integer = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, step))
            if not (low < high and step > 0):
                raise ConfigError(f"space.dims.{name}.range must be [low, high] with low < high and step > 0; "
                                  f"got {range}, step {step}")
            self.low, self.high, self.step = low, high, step

    def get(self, genotype: dict) -> Any:
        node = genotype
        for key in self.path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node

    def set(self, genotype: dict, value: Any) -> None:
        node = genotype
        for key in self.path[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = self.path[-1]
        node[int(last) if isinstance(node, list) else last] = value

    def values(self) -> list:
        if self.choices is not None:
            return self.choices
        return [self._value(i) for i in range(int(round((self.high - self.low) / self.step)) + 1)]

    def _value(self, steps: int):
        value = min(self.low + steps * self.step, self.high)
        return int(value) if self.integer else round(float(value), 6)

    def to_unit(self, value: Any) -> float:
        if self.choices is not None:
            return self.choices.index(value) / max(len(self.choices) - 1, 1)
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, x: float) -> Any:
        """The feasible value nearest to ``x`` (clipped to the box)."""
        x = float(np.clip(x, 0.0, 1.0))
        if self.choices is not None:
            return self.choices[int(round(x * (len(self.choices) - 1)))]
        return self._value(round(x * (self.high - self.low) / self.step))


class BoxSpace(SearchSpace):
    """A space whose searched decisions are ``dims`` over a ``base`` genotype (subclasses: the genotype's
    validation and the network)."""

    default_base: dict
    default_dims: dict

    def __init__(self, base: Mapping | None = None, dims: Mapping | None = None, **_config):
        self.base = self.canonical_genotype(dict(base) if base else self.default_base)
        dims = self.default_dims if dims is None else dims
        self.dims = [Dim(name, **dict(spec)) for name, spec in dims.items()]
        for dim in self.dims:
            try:
                dim.get(self.base)
            except (KeyError, IndexError, ValueError, TypeError):
                path = ".".join(dim.path)
                raise ConfigError(f"space.dims.{dim.name}.path {path!r} is not a decision of the {self.name} "
                                  f"genotype {self.base}") from None

    # -- search --------------------------------------------------------------------------------
    def with_values(self, values: Mapping[str, Any]) -> Architecture:
        """The base genotype with each dim set to ``values[dim.name]`` (feasible values of the dims)."""
        genotype = copy.deepcopy(self.base)
        for dim in self.dims:
            dim.set(genotype, values[dim.name])
        return self.architecture(genotype)

    def sample(self, rng: random.Random) -> Architecture:
        return self.with_values({dim.name: rng.choice(dim.values()) for dim in self.dims})

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """Move one dimension: a choice to another, a range by at most a quarter of its span (at least one step;
        a few steps would be no move at all in a range of hundreds of channels). A move to a value that builds
        the same network (the space canonicalises it to ``arch``) is no move: another value, or dim, is drawn."""
        genotype = arch.genotype
        values = {dim.name: dim.get(genotype) for dim in self.dims}
        dims = list(self.dims)
        while dims:
            dim = rng.choice(dims)
            options = [v for v in dim.values() if v != values[dim.name]]
            if dim.choices is None:
                reach = max(dim.step, (dim.high - dim.low) // 4)
                options = [v for v in options if abs(v - values[dim.name]) <= reach] or options
            while options:
                value = rng.choice(options)
                child = self.with_values({**values, dim.name: value})
                if child != arch:
                    return child
                options.remove(value)
            dims.remove(dim)
        raise ValueError(f"no move of one dim changes {arch.genotype} in the {self.name} space")

    def encode(self, arch: Architecture) -> np.ndarray:
        """The unit-box coordinates of the searched dims (in ``dims`` order)."""
        genotype = arch.genotype
        return np.array([dim.to_unit(dim.get(genotype)) for dim in self.dims], dtype=np.float64)

    def decode(self, vector: np.ndarray) -> Architecture:
        """The feasible architecture nearest to a point of the unit box (clipped to it)."""
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if len(vector) != len(self.dims):
            raise ValueError(f"a point of this space has {len(self.dims)} coordinates "
                             f"({', '.join(d.name for d in self.dims)}), got {len(vector)}")
        return self.with_values({dim.name: dim.from_unit(x) for dim, x in zip(self.dims, vector)})

    @property
    def dim_names(self) -> list[str]:
        return [dim.name for dim in self.dims]
