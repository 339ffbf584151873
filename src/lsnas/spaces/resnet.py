"""ResNet macro space: stem width, stride and pooling, and per stage the width, depth and block type.

Networks are timm's ``ResNet`` (``timm.models.resnet``), given per-stage blocks, depths and widths
(``channels``). ResNet-18/34/50 are points of the space and are exactly timm's networks: timm builds them
and nothing is replaced, so parameter names, counts and initialisation match ``timm.create_model``. timm's
plain 7x7 stem is 64 channels whatever ``stem_width`` says, so another stem width (or stride) replaces
the stem convolution and BN and rebuilds the stages for that input width with timm's own ``make_blocks``
(no max-pool replaces it by an identity); the network is then initialised by timm's ``init_weights``.

The genotype is::

    {"stem_width": 64, "stem_stride": 2, "stem_pool": true,
     "blocks": ["basic", ...], "depths": [2, 2, 2, 2], "widths": [64, 128, 256, 512]}

What a search varies is a setting of the space (``conf/space/resnet*.yaml``): ``dims`` maps a dimension's
name to a genotype path (``widths.0``) and either a ``range`` [low, high] with a ``step`` or ``choices``;
every other decision is the ``base`` genotype's. ``encode`` puts a genotype in the unit box of its dims,
``decode`` snaps any point of the box to the nearest feasible genotype, so ``decode(encode(a)) == a``.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from timm.models.resnet import BasicBlock, Bottleneck, ResNet, make_blocks
from torch import nn

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.spaces.base import SearchSpace, register_space

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
RESNET18 = {"stem_width": 64, "stem_stride": 2, "stem_pool": True, "blocks": ["basic"] * 4,
            "depths": [2, 2, 2, 2], "widths": [64, 128, 256, 512]}
# the plain space=resnet: widths, depths and block types of every stage, and the stem width
DEFAULT_DIMS = {
    "stem_width": {"path": "stem_width", "range": [32, 128], "step": 8},
    **{f"w{i + 1}": {"path": f"widths.{i}", "range": [16 * 2 ** i, 128 * 2 ** i], "step": 8 * 2 ** i}
       for i in range(4)},
    **{f"d{i + 1}": {"path": f"depths.{i}", "range": [1, 6], "step": 1} for i in range(4)},
    **{f"b{i + 1}": {"path": f"blocks.{i}", "choices": ["basic", "bottleneck"]} for i in range(4)},
}


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


@register_space
class ResNetSpace(SearchSpace):
    name = "resnet"
    network_settings: ClassVar[tuple[str, ...]] = ("drop_rate", "drop_path_rate")

    def __init__(self, base: Mapping | None = None, dims: Mapping | None = None, **_config):
        self.base = self.canonical_genotype(dict(base) if base else RESNET18)
        dims = DEFAULT_DIMS if dims is None else dims
        self.dims = [Dim(name, **dict(spec)) for name, spec in dims.items()]
        for dim in self.dims:
            try:
                dim.get(self.base)
            except (KeyError, IndexError, ValueError):
                path = ".".join(dim.path)
                raise ConfigError(f"space.dims.{dim.name}.path {path!r} is not a decision of the genotype "
                                  "(stem_width, stem_stride, stem_pool, blocks.i, depths.i, widths.i)") from None

    # -- the genotype --------------------------------------------------------------------------
    def canonical_genotype(self, genotype) -> dict:
        if not isinstance(genotype, Mapping):
            raise ValueError(f"a resnet genotype is a mapping like {RESNET18}, got {genotype!r}")
        unknown, missing = set(genotype) - set(RESNET18), set(RESNET18) - set(genotype)
        if unknown or missing:
            raise ValueError(f"a resnet genotype has the keys {sorted(RESNET18)}; unknown: {sorted(unknown)}, "
                             f"missing: {sorted(missing)}")
        g = dict(genotype)
        stages = {len(g["blocks"]), len(g["depths"]), len(g["widths"])}
        if len(stages) != 1:
            raise ValueError(f"blocks, depths and widths must have one entry per stage, got {g}")
        if any(b not in BLOCKS for b in g["blocks"]):
            raise ValueError(f"resnet blocks are {sorted(BLOCKS)}, got {g['blocks']}")
        ints = [g["stem_width"], g["stem_stride"], *g["depths"], *g["widths"]]
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in ints):
            raise ValueError(f"widths, depths, stem_width and stem_stride must be positive integers, got {g}")
        if g["stem_stride"] not in (1, 2) or not isinstance(g["stem_pool"], bool):
            raise ValueError(f"stem_stride is 1 or 2 and stem_pool true or false, got {g}")
        return {"stem_width": int(g["stem_width"]), "stem_stride": int(g["stem_stride"]),
                "stem_pool": g["stem_pool"], "blocks": list(g["blocks"]), "depths": [int(d) for d in g["depths"]],
                "widths": [int(w) for w in g["widths"]]}

    # -- search --------------------------------------------------------------------------------
    def _with(self, values: Mapping[str, Any]) -> Architecture:
        genotype = copy.deepcopy(self.base)
        for dim in self.dims:
            dim.set(genotype, values[dim.name])
        return self.architecture(genotype)

    def sample(self, rng: random.Random) -> Architecture:
        return self._with({dim.name: rng.choice(dim.values()) for dim in self.dims})

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """Move one dimension: a choice to another, a range by at most a quarter of its span (at least one step;
        a few steps would be no move at all in a range of hundreds of channels)."""
        genotype = arch.genotype
        values = {dim.name: dim.get(genotype) for dim in self.dims}
        dim = rng.choice(self.dims)
        options = [v for v in dim.values() if v != values[dim.name]]
        if dim.choices is None:
            reach = max(dim.step, (dim.high - dim.low) // 4)
            options = [v for v in options if abs(v - values[dim.name]) <= reach] or options
        values[dim.name] = rng.choice(options)
        return self._with(values)

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
        return self._with({dim.name: dim.from_unit(x) for dim, x in zip(self.dims, vector)})

    @property
    def dim_names(self) -> list[str]:
        return [dim.name for dim in self.dims]

    # -- networks ------------------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int],
              drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> nn.Module:
        if arch.space != self.name:
            raise ValueError(f"architecture of space {arch.space!r} given to the {self.name!r} space")
        g = arch.genotype
        blocks = tuple(BLOCKS[b] for b in g["blocks"])
        net = ResNet(block=blocks, layers=g["depths"], channels=g["widths"], num_classes=num_classes,
                     in_chans=input_shape[0], drop_rate=drop_rate, drop_path_rate=drop_path_rate)
        timm_stem = (g["stem_width"], g["stem_stride"]) == (64, 2)
        if not timm_stem:
            net.conv1 = nn.Conv2d(input_shape[0], g["stem_width"], 7, stride=g["stem_stride"], padding=3, bias=False)
            net.bn1 = nn.BatchNorm2d(g["stem_width"])
            # the stages again from the new stem width, as timm's constructor makes them
            for name, layer in make_blocks(blocks, g["widths"], g["depths"], g["stem_width"],
                                           drop_path_rate=drop_path_rate, act_layer=nn.ReLU,
                                           norm_layer=nn.BatchNorm2d)[0]:
                setattr(net, name, layer)
        if not g["stem_pool"]:
            net.maxpool = nn.Identity()
        if not timm_stem:
            net.init_weights(zero_init_last=True)  # timm's initialisation, over the replaced modules too
        return net
