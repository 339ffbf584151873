"""The DARTS cell search space (DARTS, PC-DARTS, GDAS, NASTransfer)."""

from __future__ import annotations

import random

import numpy as np
from torch import nn

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.spaces.base import SearchSpace, register_space
from lsnas.spaces.darts import genotype as G
from lsnas.spaces.darts.networks import NETWORKS
from lsnas.spaces.darts.ops import PRIMITIVES


@register_space
class DartsSpace(SearchSpace):
    name = "darts"
    network_settings = ("network", "init_channels", "layers", "auxiliary")

    def canonical_genotype(self, genotype) -> dict:
        return G.canonical_genotype(genotype)

    # -- discrete search ---------------------------------------------------------------------
    def _random_cell(self, rng: random.Random) -> list[list]:
        edges = []
        for node in range(G.NUM_NODES):
            for inp in rng.sample(range(node + 2), 2):
                edges.append([rng.choice(G.CANDIDATE_OPS), inp])
        return edges

    def sample(self, rng: random.Random) -> Architecture:
        concat = list(range(2, G.NUM_NODES + 2))
        return self.architecture({"normal": self._random_cell(rng), "normal_concat": concat,
                                  "reduce": self._random_cell(rng), "reduce_concat": concat})

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """Change one edge's op or its input (keeping the node's two inputs distinct)."""
        genotype = arch.genotype
        cell = genotype[rng.choice(G.CELL_TYPES)]
        k = rng.randrange(len(cell))
        node, (op, inp) = k // 2, cell[k]
        other_inp = cell[k ^ 1][1]
        if rng.random() < 0.5:
            cell[k][0] = rng.choice([o for o in G.CANDIDATE_OPS if o != op])
        else:
            choices = [i for i in range(node + 2) if i not in (inp, other_inp)]
            if choices:
                cell[k][1] = rng.choice(choices)
            else:  # node 0 has only two inputs: change the op instead
                cell[k][0] = rng.choice([o for o in G.CANDIDATE_OPS if o != op])
        return self.architecture(genotype)

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot (cell, edge, op) tensor flattened: 2 x 14 x 8 = 224 floats."""
        out = np.zeros((len(G.CELL_TYPES), G.NUM_EDGES, len(PRIMITIVES)), dtype=np.float32)
        genotype = arch.genotype
        for c, kind in enumerate(G.CELL_TYPES):
            for k, (op, inp) in enumerate(genotype[kind]):
                out[c, G.edge_index(k // 2, inp), PRIMITIVES.index(op)] = 1.0
        return out.reshape(-1)

    def decode(self, vector: np.ndarray) -> Architecture:
        """Any vector of encode's shape, discretised the DARTS way (so alphas decode too)."""
        w = np.asarray(vector, dtype=np.float64).reshape(len(G.CELL_TYPES), G.NUM_EDGES, len(PRIMITIVES))
        return self.architecture(G.derive_genotype(w[0], w[1]))

    # -- networks ----------------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int],
              network: str = "cifar", init_channels: int = 36, layers: int = 20,
              auxiliary: bool = False) -> nn.Module:
        """``network``: 'cifar' (stem 3C, stride 1) or 'imagenet' (mobile setting, 3 stride-2 stem convs)."""
        if arch.space != self.name:
            raise ValueError(f"architecture of space {arch.space!r} given to the {self.name!r} space")
        try:
            cls = NETWORKS[network]
        except KeyError:
            raise ConfigError(f"unknown DARTS network {network!r}; valid: {', '.join(NETWORKS)} "
                             "(setting: protocol.model.network)") from None
        if layers < 3:
            raise ConfigError(f"a DARTS network needs at least 3 cells (setting: protocol.model.layers), got {layers}")
        in_channels, height, width = input_shape
        if auxiliary and cls.feature_size_at_aux(min(height, width)) < cls.aux_min_size:
            raise ConfigError(
                f"the {network} auxiliary head needs >= {cls.aux_min_size}px maps after the second reduction, "
                f"but {height}x{width} inputs give {cls.feature_size_at_aux(min(height, width))}px; raise "
                "dataset.resolution or set protocol.model.auxiliary=false")
        return cls(arch.genotype, init_channels, num_classes, layers, auxiliary=auxiliary, in_channels=in_channels)

    def supernet(self, num_classes: int, input_shape: tuple[int, int, int], network: str = "cifar",
                 init_channels: int = 16, layers: int = 8, **variant) -> nn.Module:
        """The one-shot search network; ``variant``: partial_k, edge_normalization (PC-DARTS)."""
        from lsnas.spaces.darts.supernet import DartsSupernet

        return DartsSupernet(num_classes, input_shape, init_channels, layers, network, **variant)
