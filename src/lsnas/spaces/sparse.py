"""Sparse networks as node masks of an over-parameterised parent (``space=sparse``).

Following Farahani ("Random Search as a Baseline for Sparse Neural Network Architecture Search", 2024), an
architecture is the set of hidden nodes (neurons of an MLP, channels of a conv net) a parent network keeps,
with the parent's seeded initial weights on them. The genotype is self-contained::

    {"parent": {"kind": "mlp", "widths": [512, 512]}, "init_seed": 0, "kept": [[0, 3, ...], [1, 2, ...]]}

``kept`` lists, per hidden layer, the indices of the parent's nodes that stay (sorted); inputs and outputs are
never removed. ``build`` returns the physically smaller network, rows and columns of the kept nodes only
(so it is really smaller and faster), whose weights are the parent's initial weights at those nodes: the
parent is built under ``torch.manual_seed(init_seed)`` with PyTorch's default initialisation and sliced.
It computes exactly what the parent computes with the removed nodes' outputs set to zero (a test).

Parents:

- ``mlp``: flatten, then per hidden width Linear + ReLU, then a Linear classifier (digits, Fashion-MNIST).
- ``conv``: per width a 3x3 conv (no bias) + BN + ReLU, a 2x2 max-pool after every ``pool_every`` convs,
  global average pooling and a Linear classifier (CIFAR-10). Channels are independent in BN, so slicing a
  channel out equals zeroing it. timm's ResNets are not used as parents: a residual stream shares its
  channels across blocks, so a mask there is a per-stage, not a per-layer, decision.

The space's settings say what a search samples: the ``sparsity`` (the fraction of hidden nodes removed) and
its ``scope``, ``per_layer`` (every layer loses that fraction, rounded) or ``global`` (that fraction of all
hidden nodes, wherever they are, at least one node kept per layer). A mutation moves one kept node to a
removed one (within its layer for ``per_layer``), so the sparsity is kept.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.spaces.base import SearchSpace, register_space

PARENT_KINDS = ("mlp", "conv")
SCOPES = ("per_layer", "global")
DEFAULT_PARENT = {"kind": "mlp", "widths": [512, 512]}


class NodeNet(nn.Module):
    """The parent family: hidden layers of the given widths, each a unit whose outputs are the layer's nodes."""

    def __init__(self, kind: str, widths: list[int], num_classes: int, input_shape: tuple[int, int, int],
                 pool_every: int = 2):
        super().__init__()
        self.kind = kind
        units, previous = [], input_shape[0] if kind == "conv" else math.prod(input_shape)
        for i, width in enumerate(widths):
            if kind == "mlp":
                units.append(nn.Sequential(nn.Linear(previous, width), nn.ReLU()))
            else:
                pool = [nn.MaxPool2d(2)] if (i + 1) % pool_every == 0 else []
                units.append(nn.Sequential(nn.Conv2d(previous, width, 3, padding=1, bias=False),
                                           nn.BatchNorm2d(width), nn.ReLU(), *pool))
            previous = width
        self.units = nn.ModuleList(units)
        self.pool = nn.Flatten() if kind == "mlp" else nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            x = x.flatten(1)
        for unit in self.units:
            x = unit(x)
        return self.classifier(self.pool(x))


@torch.no_grad()
def slice_into(parent: NodeNet, child: NodeNet, kept: list[list[int]]) -> None:
    """Copy ``parent``'s weights at the kept nodes into ``child`` (whose widths are the kept counts)."""
    previous = None  # the kept inputs of the current layer (None: all of them, the network's input)
    for p_unit, c_unit, rows in zip(parent.units, child.units, kept):
        rows = torch.as_tensor(rows)
        p_layer, c_layer = p_unit[0], c_unit[0]
        weight = p_layer.weight[rows]
        c_layer.weight.copy_(weight if previous is None else weight[:, previous])
        if p_layer.bias is not None:
            c_layer.bias.copy_(p_layer.bias[rows])
        if isinstance(p_unit[1], nn.BatchNorm2d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(c_unit[1], name).copy_(getattr(p_unit[1], name)[rows])
        previous = rows
    child.classifier.weight.copy_(parent.classifier.weight[:, previous])
    child.classifier.bias.copy_(parent.classifier.bias)


def kept_counts(widths: list[int], sparsity: float, scope: str) -> list[int] | int:
    """Nodes kept per layer (``per_layer``) or in all (``global``) at ``sparsity``, at least one per layer."""
    if scope == "per_layer":
        return [max(1, round((1 - sparsity) * w)) for w in widths]
    return max(len(widths), round((1 - sparsity) * sum(widths)))


@register_space
class SparseSpace(SearchSpace):
    name = "sparse"

    def __init__(self, parent: Mapping | None = None, sparsity: float = 0.5, scope: str = "per_layer",
                 init_seed: int = 0, **_config):
        self.parent = self._canonical_parent(dict(parent) if parent else DEFAULT_PARENT)
        if not 0.0 <= sparsity < 1.0:
            raise ConfigError(f"space.sparsity is the fraction of hidden nodes removed, in [0, 1); got {sparsity}")
        if scope not in SCOPES:
            raise ConfigError(f"space.scope is one of {SCOPES}, got {scope!r}")
        self.sparsity, self.scope, self.init_seed = float(sparsity), scope, int(init_seed)

    def at_sparsity(self, sparsity: float) -> SparseSpace:
        """The same parent and scope at another sparsity."""
        return SparseSpace(self.parent, sparsity, self.scope, self.init_seed)

    # -- the genotype --------------------------------------------------------------------------
    @staticmethod
    def _canonical_parent(parent) -> dict:
        if not isinstance(parent, Mapping) or parent.get("kind") not in PARENT_KINDS:
            raise ValueError(f"a sparse parent is a mapping with kind in {PARENT_KINDS}, like {DEFAULT_PARENT}; "
                             f"got {parent!r}")
        allowed = {"kind", "widths"} | ({"pool_every"} if parent["kind"] == "conv" else set())
        if set(parent) - allowed:
            raise ValueError(f"a {parent['kind']} parent has the keys {sorted(allowed)}, got {sorted(parent)}")
        widths = list(parent.get("widths") or [])
        if not widths or not all(_natural(w) for w in widths):
            raise ValueError(f"parent.widths is a non-empty list of positive integers, got {parent.get('widths')!r}")
        canonical = {"kind": parent["kind"], "widths": [int(w) for w in widths]}
        if parent["kind"] == "conv":
            pool_every = parent.get("pool_every", 2)
            if not _natural(pool_every):
                raise ValueError(f"parent.pool_every is a positive integer, got {pool_every!r}")
            canonical["pool_every"] = int(pool_every)
        return canonical

    def canonical_genotype(self, genotype) -> dict:
        if not isinstance(genotype, Mapping) or set(genotype) != {"parent", "init_seed", "kept"}:
            raise ValueError("a sparse genotype is {\"parent\": {...}, \"init_seed\": int, \"kept\": [[node, ...] "
                             f"per hidden layer]}}, got {genotype!r}")
        parent = self._canonical_parent(genotype["parent"])
        seed, kept = genotype["init_seed"], genotype["kept"]
        if not _natural(seed, zero=True):
            raise ValueError(f"init_seed is a non-negative integer, got {seed!r}")
        if not isinstance(kept, list) or len(kept) != len(parent["widths"]):
            raise ValueError(f"kept has one list per hidden layer ({len(parent['widths'])}), got {kept!r}")
        canonical = []
        for i, (nodes, width) in enumerate(zip(kept, parent["widths"])):
            ints = isinstance(nodes, list) and all(_natural(n, zero=True) for n in nodes)
            nodes = sorted(int(n) for n in nodes) if ints else None
            if not nodes or len(set(nodes)) != len(nodes) or nodes[0] < 0 or nodes[-1] >= width:
                raise ValueError(f"kept[{i}] lists distinct node indices in [0, {width}), at least one; "
                                 f"got {kept[i]!r}")
            canonical.append(nodes)
        return {"parent": parent, "init_seed": int(seed), "kept": canonical}

    def mask(self, kept: list[list[int]]) -> Architecture:
        return self.architecture({"parent": self.parent, "init_seed": self.init_seed, "kept": kept})

    def dense(self) -> Architecture:
        """The parent itself: every node kept."""
        return self.mask([list(range(w)) for w in self.parent["widths"]])

    @staticmethod
    def sparsity_of(arch: Architecture) -> float:
        g = arch.genotype
        return 1 - sum(map(len, g["kept"])) / sum(g["parent"]["widths"])

    # -- search --------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> Architecture:
        widths = self.parent["widths"]
        counts = kept_counts(widths, self.sparsity, self.scope)
        if self.scope == "per_layer":
            return self.mask([rng.sample(range(w), n) for w, n in zip(widths, counts)])
        # uniform over the global masks with every layer non-empty (rejection; a fallback for extreme cases)
        nodes = [(layer, i) for layer, w in enumerate(widths) for i in range(w)]
        for _ in range(1000):
            chosen = rng.sample(nodes, counts)
            if len({layer for layer, _ in chosen}) == len(widths):
                break
        else:
            chosen = [(layer, rng.randrange(w)) for layer, w in enumerate(widths)]
            taken = set(chosen)
            rest = [n for n in nodes if n not in taken]
            chosen += rng.sample(rest, counts - len(widths))
        return self.mask(_group(chosen, len(widths)))

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """Move one kept node to a removed one: within a layer (``per_layer``), or anywhere, never emptying a
        layer (``global``)."""
        g = arch.genotype
        kept, widths = [set(k) for k in g["kept"]], g["parent"]["widths"]
        removed = [[i for i in range(w) if i not in k] for w, k in zip(widths, kept)]
        if self.scope == "per_layer":
            layers = [layer for layer, r in enumerate(removed) if r]
            if not layers:
                raise ValueError("a mask that keeps every node has no per-layer move (sparsity 0)")
            source = target = rng.choice(layers)
        else:
            sources = [layer for layer, k in enumerate(kept) if len(k) > 1]
            targets = [layer for layer, r in enumerate(removed) if r]
            if not sources or not targets:
                raise ValueError("this mask has no global move: no removed node, or one node in every layer")
            source, target = rng.choice(sources), rng.choice(targets)
        kept[source].remove(rng.choice(sorted(kept[source])))
        kept[target].add(rng.choice(removed[target]))
        return self.architecture({**g, "kept": [sorted(k) for k in kept]})

    def encode(self, arch: Architecture) -> np.ndarray:
        """One coordinate per hidden node of the parent: 1 kept, 0 removed (layer by layer)."""
        g = arch.genotype
        vector = np.zeros(sum(g["parent"]["widths"]))
        offset = 0
        for width, nodes in zip(g["parent"]["widths"], g["kept"]):
            vector[[offset + n for n in nodes]] = 1.0
            offset += width
        return vector

    def decode(self, vector: np.ndarray) -> Architecture:
        """The mask at the space's sparsity keeping the highest coordinates (per layer, or overall with at
        least the highest of each layer); ties go to the lower index."""
        widths = self.parent["widths"]
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if len(vector) != sum(widths):
            raise ValueError(f"a mask of this parent has {sum(widths)} coordinates, got {len(vector)}")
        bounds = np.cumsum([0, *widths])
        layers = [vector[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        counts = kept_counts(widths, self.sparsity, self.scope)
        if self.scope == "per_layer":
            return self.mask([np.argsort(-x, kind="stable")[:n].tolist() for x, n in zip(layers, counts)])
        chosen = {(layer, int(np.argmax(x))) for layer, x in enumerate(layers)}
        for flat in np.argsort(-vector, kind="stable"):
            if len(chosen) >= counts:
                break
            layer = int(np.searchsorted(bounds, flat, side="right") - 1)
            chosen.add((layer, int(flat - bounds[layer])))
        return self.mask(_group(chosen, len(widths)))

    # -- networks ------------------------------------------------------------------------------
    def parent_network(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]) -> NodeNet:
        """The dense parent with its seeded initial weights (the global RNG is left as it was)."""
        parent = arch.genotype["parent"]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(arch.genotype["init_seed"])
            return NodeNet(parent["kind"], parent["widths"], num_classes, input_shape, parent.get("pool_every", 2))

    def build(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
        if arch.space != self.name:
            raise ValueError(f"architecture of space {arch.space!r} given to the {self.name!r} space")
        g = arch.genotype
        parent_spec = g["parent"]
        if parent_spec["kind"] == "conv":
            pools = len(parent_spec["widths"]) // parent_spec["pool_every"]
            if min(input_shape[1:]) < 2 ** pools:
                raise ValueError(f"the conv parent max-pools {pools} times; {input_shape[1]}x{input_shape[2]} "
                                 "inputs are too small (a larger parent.pool_every or dataset.resolution)")
        parent = self.parent_network(arch, num_classes, input_shape)
        if all(len(k) == w for k, w in zip(g["kept"], parent_spec["widths"])):
            return parent
        with torch.random.fork_rng(devices=[]):  # the child's own init is overwritten; do not consume the RNG
            child = NodeNet(parent_spec["kind"], [len(k) for k in g["kept"]], num_classes, input_shape,
                            parent_spec.get("pool_every", 2))
        slice_into(parent, child, g["kept"])
        return child


def _natural(value, zero: bool = False) -> bool:
    """An integer (not a bool) >= 1, or >= 0 with ``zero``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= (0 if zero else 1)


def _group(nodes, num_layers: int) -> list[list[int]]:
    kept: list[list[int]] = [[] for _ in range(num_layers)]
    for layer, i in nodes:
        kept[layer].append(i)
    return kept
