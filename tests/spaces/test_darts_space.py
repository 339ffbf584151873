import random

import numpy as np
import pytest

from lsnas.arch import from_zoo
from lsnas.spaces import get_space
from lsnas.spaces.darts.genotype import NUM_EDGES, derive_cell, edge_index
from lsnas.spaces.darts.ops import PRIMITIVES

SPACE = get_space("darts")


def test_sample_is_valid_and_varied():
    rng = random.Random(0)
    archs = {SPACE.sample(rng) for _ in range(50)}
    assert len(archs) == 50
    for a in archs:
        for kind in ("normal", "reduce"):
            cell = a.genotype[kind]
            for node in range(4):
                (_, i), (_, j) = cell[2 * node: 2 * node + 2]
                assert i != j and max(i, j) < node + 2


def test_mutate_changes_exactly_one_decision():
    rng = random.Random(1)
    for _ in range(100):
        a = SPACE.sample(rng)
        b = SPACE.mutate(a, rng)
        assert a != b
        diff = np.abs(SPACE.encode(a) - SPACE.encode(b)).sum()
        assert diff in (2.0, 4.0)  # one edge moved/changed (sorting can swap positions, not content)


def test_encode_decode_round_trip():
    rng = random.Random(2)
    for arch in [from_zoo("darts_v2"), from_zoo("gdas"), *[SPACE.sample(rng) for _ in range(20)]]:
        v = SPACE.encode(arch)
        assert v.shape == (2 * NUM_EDGES * len(PRIMITIVES),)
        assert SPACE.decode(v) == arch


def test_derive_cell_by_hand():
    w = np.zeros((NUM_EDGES, len(PRIMITIVES)))
    none = PRIMITIVES.index("none")
    w[:, none] = 10.0  # 'none' is never chosen, however strong
    # node 0: inputs 0 and 1 (its only two)
    w[edge_index(0, 0), PRIMITIVES.index("sep_conv_3x3")] = 0.5
    w[edge_index(0, 1), PRIMITIVES.index("max_pool_3x3")] = 0.4
    # node 1: input 2 strongest, input 0 second, input 1 weakest
    w[edge_index(1, 2), PRIMITIVES.index("dil_conv_5x5")] = 0.9
    w[edge_index(1, 0), PRIMITIVES.index("skip_connect")] = 0.3
    w[edge_index(1, 1), PRIMITIVES.index("avg_pool_3x3")] = 0.2
    # node 2: inputs 3 and 1
    w[edge_index(2, 3), PRIMITIVES.index("sep_conv_5x5")] = 0.8
    w[edge_index(2, 1), PRIMITIVES.index("dil_conv_3x3")] = 0.7
    # node 3: all zero except a tie between inputs 4 and 2 -> lower index first among equals
    w[edge_index(3, 4), PRIMITIVES.index("sep_conv_3x3")] = 0.6
    w[edge_index(3, 2), PRIMITIVES.index("sep_conv_3x3")] = 0.6
    assert derive_cell(w) == [["sep_conv_3x3", 0], ["max_pool_3x3", 1],
                              ["dil_conv_5x5", 2], ["skip_connect", 0],
                              ["sep_conv_5x5", 3], ["dil_conv_3x3", 1],
                              ["sep_conv_3x3", 2], ["sep_conv_3x3", 4]]


def test_derive_rejects_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        derive_cell(np.zeros((3, 8)))
