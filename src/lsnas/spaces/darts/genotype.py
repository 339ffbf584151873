"""DARTS genotypes in JSON form, their validation, and derivation from edge weights.

A genotype is ``{"normal": [[op, input], ...], "normal_concat": [...], "reduce": [...],
"reduce_concat": [...]}`` with two ``[op, input]`` edges per intermediate node, as in the
official ``Genotype`` namedtuple. Inputs 0 and 1 are the two previous cells' outputs, input
``k >= 2`` is intermediate node ``k - 2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lsnas.spaces.darts.ops import PRIMITIVES

CELL_TYPES = ("normal", "reduce")
NUM_NODES = 4  # intermediate nodes per cell
NUM_EDGES = sum(i + 2 for i in range(NUM_NODES))  # 14 edges in the supernet's cell
CANDIDATE_OPS = tuple(p for p in PRIMITIVES if p != "none")  # what a derived edge may hold


def edge_index(node: int, input_: int) -> int:
    """Row of the (14, len(PRIMITIVES)) weight matrix for the edge ``input_ -> node``."""
    return sum(i + 2 for i in range(node)) + input_


def _canonical_cell(kind: str, edges: Any, concat: Any) -> tuple[list, list]:
    if not isinstance(edges, Sequence) or isinstance(edges, str) or len(edges) != 2 * NUM_NODES:
        raise ValueError(f"'{kind}' must list {2 * NUM_NODES} [op, input] edges (2 per node), got {edges!r}")
    canonical = []
    for node in range(NUM_NODES):
        pair = []
        for edge in edges[2 * node: 2 * node + 2]:
            if not isinstance(edge, Sequence) or isinstance(edge, str) or len(edge) != 2:
                raise ValueError(f"'{kind}' edge {edge!r} is not an [op, input] pair")
            op, inp = edge
            if op not in CANDIDATE_OPS:
                raise ValueError(f"'{kind}' edge {edge!r}: unknown op {op!r}; valid ops: {', '.join(CANDIDATE_OPS)}")
            if isinstance(inp, bool) or not isinstance(inp, int) or not 0 <= inp < node + 2:
                raise ValueError(f"'{kind}' edge {edge!r} of node {node}: input must be an int in [0, {node + 1}]")
            pair.append([op, inp])
        # The two edges of a node are summed, so their order carries no meaning.
        canonical.extend(sorted(pair, key=lambda e: (e[1], e[0])))
    if isinstance(concat, (str, bytes)) or not isinstance(concat, Sequence):
        raise ValueError(f"'{kind}_concat' must be a list of node indices, got {concat!r}")
    valid = range(2, NUM_NODES + 2)
    if not concat or any(isinstance(c, bool) or c not in valid for c in concat):
        raise ValueError(f"'{kind}_concat' must hold node indices in [2, {NUM_NODES + 1}], got {list(concat)!r}")
    return canonical, sorted(set(concat))


def canonical_genotype(genotype: Any) -> dict:
    if not isinstance(genotype, dict):
        raise ValueError(f"a DARTS genotype is an object with keys normal, normal_concat, reduce, "
                         f"reduce_concat; got {type(genotype).__name__}")
    out = {}
    for kind in CELL_TYPES:
        for key in (kind, f"{kind}_concat"):
            if key not in genotype:
                raise ValueError(f"DARTS genotype is missing {key!r}")
        out[kind], out[f"{kind}_concat"] = _canonical_cell(kind, genotype[kind], genotype[f"{kind}_concat"])
    extra = set(genotype) - set(out)
    if extra:
        raise ValueError(f"DARTS genotype has unknown key(s) {sorted(extra)}")
    return out


def derive_cell(weights: np.ndarray) -> list[list]:
    """DARTS's discretisation of one cell's (14, 8) edge weights (order of PRIMITIVES).

    Per node, keep the two incoming edges whose strongest non-'none' weight is largest, each
    with its argmax non-'none' op. Ties resolve to the lower index, as in the official code.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (NUM_EDGES, len(PRIMITIVES)):
        raise ValueError(f"expected weights of shape ({NUM_EDGES}, {len(PRIMITIVES)}), got {weights.shape}")
    none = PRIMITIVES.index("none")
    masked = weights.copy()
    masked[:, none] = -np.inf
    gene = []
    for node in range(NUM_NODES):
        rows = masked[edge_index(node, 0): edge_index(node, 0) + node + 2]
        strongest = sorted(range(node + 2), key=lambda j: -rows[j].max())[:2]
        gene.extend([PRIMITIVES[int(np.argmax(rows[j]))], j] for j in strongest)
    return gene


def derive_genotype(normal_weights: np.ndarray, reduce_weights: np.ndarray) -> dict:
    concat = list(range(2, NUM_NODES + 2))
    return canonical_genotype({"normal": derive_cell(normal_weights), "normal_concat": concat,
                               "reduce": derive_cell(reduce_weights), "reduce_concat": concat})
