"""Checks every search space's contract must pass."""

import random

from lsnas.spaces.base import SearchSpace


def sampled_round_trips(space: SearchSpace, count: int, seed: int = 0) -> list:
    """``count`` sampled architectures, each checked to be canonical and to survive encode -> decode."""
    rng = random.Random(seed)
    archs = []
    for _ in range(count):
        arch = space.sample(rng)
        assert space.canonical_genotype(arch.genotype) == arch.genotype
        assert space.decode(space.encode(arch)) == arch
        archs.append(arch)
    return archs
