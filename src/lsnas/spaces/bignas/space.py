"""The elastic MBConv space of BigNAS (Yu et al., ECCV 2020, Table 1): a child is an Architecture.

    {"resolution": 224, "widths": [stem, stage 1, ..., stage 7, head], "depths": [7 ints], "kernels": [7 ints]}

The defaults are the paper's table: stem 32-40; MBConv1 16-24 (depth 1-2, k3); MBConv6 stages 24-32 (d 2-3, k3),
40-48 (d 2-3, k3/5), 80-88 (d 2-4, k3/5), 112-128 (d 2-6, k3/5), 192-216 (d 2-6, k3/5), 320-352 (d 1-2, k3/5);
head 1280-1408; channels in steps of 8; input resolution 192-320 (steps of 32); stage strides 1, 2, 2, 2, 1, 2, 1
after a stride-2 stem; swish activations. Expansions and strides are fixed, so a genotype alone builds its
network. A reduced supernet (CPU runs) is the same space with smaller ranges (method=bignas budget=small).
``mutate`` moves one decision one step; ``encode`` puts each decision in [0, 1] of its range.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from torch import nn

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.spaces.base import SearchSpace, register_space
from lsnas.spaces.bignas.network import EXPANSIONS, ElasticMBConvNet

NUM_STAGES = len(EXPANSIONS)
TABLE = {
    "resolutions": [192, 224, 288, 320],
    "widths": [[32, 40], [16, 24], [24, 32], [40, 48], [80, 88], [112, 128], [192, 216], [320, 352], [1280, 1408]],
    "depths": [[1, 2], [2, 3], [2, 3], [2, 4], [2, 6], [2, 6], [1, 2]],
    "kernels": [[3], [3], [3, 5], [3, 5], [3, 5], [3, 5], [3, 5]],
}


@register_space
class BigNASSpace(SearchSpace):
    name = "bignas_mbconv"
    network_settings: ClassVar[tuple[str, ...]] = ("dropout",)

    def __init__(self, resolutions: Sequence[int] = TABLE["resolutions"],
                 widths: Sequence[Sequence[int]] = TABLE["widths"], depths: Sequence[Sequence[int]] = TABLE["depths"],
                 kernels: Sequence[Sequence[int]] = TABLE["kernels"], channel_step: int = 8, **_config):
        if len(widths) != NUM_STAGES + 2 or len(depths) != NUM_STAGES or len(kernels) != NUM_STAGES:
            raise ConfigError(f"space.widths has {NUM_STAGES + 2} [min, max] ranges (stem, 7 stages, head), "
                              f"space.depths and space.kernels {NUM_STAGES} entries; got {len(widths)}, "
                              f"{len(depths)}, {len(kernels)}")
        self.channel_step = int(channel_step)
        self.resolutions = sorted(int(r) for r in resolutions)
        self.widths = [self._range(w, self.channel_step, f"space.widths.{i}") for i, w in enumerate(widths)]
        self.depths = [self._range(d, 1, f"space.depths.{i}") for i, d in enumerate(depths)]
        self.kernels = [sorted(int(k) for k in ks) for ks in kernels]
        if not self.resolutions or any(k % 2 == 0 for ks in self.kernels for k in ks) or not all(self.kernels):
            raise ConfigError(f"space.resolutions must be non-empty and space.kernels odd sizes; got "
                              f"{list(resolutions)}, {list(kernels)}")

    @staticmethod
    def _range(bounds: Sequence[int], step: int, setting: str) -> list[int]:
        low, high = (int(bounds[0]), int(bounds[-1]))
        if not 1 <= low <= high or (high - low) % step:
            raise ConfigError(f"{setting} is [min, max] with 1 <= min <= max, max - min a multiple of {step}; "
                              f"got {list(bounds)}")
        return list(range(low, high + 1, step))

    @classmethod
    def single(cls, genotype: Mapping) -> BigNASSpace:
        """The space holding one child only (its network is that child alone)."""
        return cls([genotype["resolution"]], [[w, w] for w in genotype["widths"]], [[d, d] for d in genotype["depths"]],
                   [[k] for k in genotype["kernels"]], channel_step=1)

    # -- the genotype --------------------------------------------------------------------------
    def canonical_genotype(self, genotype: Any) -> dict:
        keys = {"resolution", "widths", "depths", "kernels"}
        if not isinstance(genotype, Mapping) or set(genotype) != keys:
            raise ValueError(f"a bignas_mbconv genotype has the keys {sorted(keys)}, got {genotype!r}")
        lengths = {"widths": NUM_STAGES + 2, "depths": NUM_STAGES, "kernels": NUM_STAGES}
        canonical = {"resolution": genotype["resolution"]}
        for key, n in lengths.items():
            values = genotype[key]
            if not isinstance(values, Sequence) or len(values) != n:
                raise ValueError(f"{key} has {n} entries, got {values!r}")
            canonical[key] = list(values)
        ints = [canonical["resolution"], *canonical["widths"], *canonical["depths"], *canonical["kernels"]]
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in ints):
            raise ValueError(f"resolution, widths, depths and kernels are positive integers, got {dict(genotype)}")
        if any(k % 2 == 0 for k in canonical["kernels"]):
            raise ValueError(f"kernels are odd, got {canonical['kernels']}")
        return {"resolution": int(canonical["resolution"]), **{k: [int(v) for v in canonical[k]] for k in lengths}}

    def check_within(self, genotype: Mapping) -> None:
        """A clear error when a child is not one of this space's (the supernet cannot run it)."""
        problems = []
        if genotype["resolution"] not in self.resolutions:
            problems.append(f"resolution {genotype['resolution']} not in {self.resolutions}")
        for key, choices in (("widths", self.widths), ("depths", self.depths), ("kernels", self.kernels)):
            problems += [f"{key}[{i}]={v} not in {c}" for i, (v, c) in enumerate(zip(genotype[key], choices))
                         if v not in c]
        if problems:
            raise ValueError("the child is outside this bignas_mbconv space (space settings): " + "; ".join(problems))

    def _genotype(self, pick) -> dict:
        return {"resolution": pick(self.resolutions), "widths": [pick(c) for c in self.widths],
                "depths": [pick(c) for c in self.depths], "kernels": [pick(c) for c in self.kernels]}

    def max_genotype(self) -> dict:
        return self._genotype(lambda choices: choices[-1])

    def min_genotype(self) -> dict:
        return self._genotype(lambda choices: choices[0])

    def _choices(self) -> list[tuple[str, int, list]]:
        """Every decision as (key, index, choices); index -1 is the resolution."""
        return ([("resolution", -1, self.resolutions)] + [("widths", i, c) for i, c in enumerate(self.widths)]
                + [("depths", i, c) for i, c in enumerate(self.depths)]
                + [("kernels", i, c) for i, c in enumerate(self.kernels)])

    @staticmethod
    def _get(genotype: dict, key: str, index: int):
        return genotype[key] if index < 0 else genotype[key][index]

    @staticmethod
    def _set(genotype: dict, key: str, index: int, value) -> None:
        if index < 0:
            genotype[key] = value
        else:
            genotype[key][index] = value

    # -- search --------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> Architecture:
        return self.architecture(self._genotype(rng.choice))

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """One decision moved one step (a width by ``channel_step``, a depth by one, the next kernel size)."""
        genotype = {k: (list(v) if isinstance(v, list) else v) for k, v in arch.genotype.items()}
        movable = [(key, i, c) for key, i, c in self._choices() if len(c) > 1]
        if not movable:
            raise ConfigError("this bignas_mbconv space has a single child; nothing can mutate (space settings)")
        key, i, choices = rng.choice(movable)
        at = choices.index(self._get(genotype, key, i))
        self._set(genotype, key, i, choices[rng.choice([j for j in (at - 1, at + 1) if 0 <= j < len(choices)])])
        return self.architecture(genotype)

    def encode(self, arch: Architecture) -> np.ndarray:
        g = arch.genotype
        return np.array([c.index(self._get(g, key, i)) / max(len(c) - 1, 1) for key, i, c in self._choices()],
                        dtype=np.float64)

    def decode(self, vector: np.ndarray) -> Architecture:
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        choices = self._choices()
        if len(vector) != len(choices):
            raise ValueError(f"a point of this space has {len(choices)} coordinates, got {len(vector)}")
        genotype = self.min_genotype()
        for x, (key, i, c) in zip(vector, choices):
            self._set(genotype, key, i, c[int(round(float(np.clip(x, 0, 1)) * (len(c) - 1)))])
        return self.architecture(genotype)

    # -- networks ------------------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int],
              dropout: float = 0.2) -> nn.Module:
        """The child alone, initialised from scratch (``ElasticMBConvNet.extract_subnet`` gives it the supernet's
        weights). It runs at whatever resolution the data has; the genotype's is what its data should use."""
        if arch.space != self.name:
            raise ValueError(f"architecture of space {arch.space!r} given to the {self.name!r} space")
        return ElasticMBConvNet(self.single(arch.genotype), num_classes, in_channels=input_shape[0], dropout=dropout)

    def supernet(self, num_classes: int, input_shape: tuple[int, int, int], dropout: float = 0.2,
                 zero_init_residual_bn: bool = True) -> ElasticMBConvNet:
        return ElasticMBConvNet(self, num_classes, in_channels=input_shape[0], dropout=dropout,
                                zero_init_residual_bn=zero_init_residual_bn)
