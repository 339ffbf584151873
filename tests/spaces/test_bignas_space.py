"""The BigNAS elastic MBConv space: weight slicing (a child equals its extracted standalone network), the
AttentiveNAS-style API, BN recalibration, MACs of the biggest and smallest children, the genotype."""

import random

import pytest
import torch

from lsnas.arch import Architecture, ArchitectureError
from lsnas.errors import ConfigError
from lsnas.spaces import space_from_config
from lsnas.spaces.bignas import BigNASSpace, recalibrate_bn
from lsnas.training.complexity import count_macs
from tests.helpers.config import compose_config
from tests.helpers.spaces import sampled_round_trips

TABLE = BigNASSpace()


def tiny() -> BigNASSpace:
    return space_from_config(compose_config("search", "method=bignas").space)  # budget=small: the reduced one


def _trained_a_little(space, steps=3):
    """A supernet whose weights and BN statistics are not the initial ones (a few sandwich-like steps)."""
    torch.manual_seed(0)
    net = space.supernet(10, (3, 32, 32), zero_init_residual_bn=False)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for i in range(steps):
        g = net.sample_active_subnet(random.Random(i))
        x = torch.randn(4, 3, g["resolution"], g["resolution"])
        net.train()(x).logsumexp(1).mean().backward()
        opt.step()
        opt.zero_grad()
    return net


def test_a_supernet_child_equals_its_extracted_standalone_network():
    space = tiny()
    net = _trained_a_little(space)
    for seed in range(6):
        genotype = net.sample_active_subnet(random.Random(100 + seed))
        child = net.extract_subnet()
        x = torch.randn(3, 3, genotype["resolution"], genotype["resolution"])
        torch.testing.assert_close(child.eval()(x), net.eval()(x), rtol=0, atol=0)
        assert sum(p.numel() for p in child.parameters()) < sum(p.numel() for p in net.parameters())
        # the standalone network is the space's network of that child, with the sliced weights
        built = space.build(Architecture("bignas_mbconv", genotype), 10, (3, 32, 32))
        assert [p.shape for p in built.parameters()] == [p.shape for p in child.parameters()]


def test_the_sandwich_children_and_the_api():
    space = tiny()
    net = space.supernet(10, (3, 32, 32))
    biggest, smallest = net.sample_max_subnet(), net.sample_min_subnet()
    assert biggest == space.max_genotype() and smallest == space.min_genotype()
    assert net.active_genotype == smallest and net.active_depths == smallest["depths"]
    sampled = net.sample_active_subnet(random.Random(0))
    space.check_within(sampled)
    with pytest.raises(ValueError, match="outside this bignas_mbconv space"):
        net.set_active_subnet({**biggest, "widths": [w + 8 for w in biggest["widths"]]})
    # BigNAS's zero-initialised last BN of every unit that can be residual
    assert all(torch.count_nonzero(unit.project.bn.weight) == 0 for stage in net.stages for unit in stage[1:])
    assert all(torch.count_nonzero(stage[0].project.bn.weight) > 0 for stage in net.stages)


def test_bn_recalibration_gives_the_childs_own_statistics():
    space = tiny()
    net = _trained_a_little(space)
    genotype = net.eval().sample_min_subnet()
    batches = [torch.randn(8, 3, genotype["resolution"], genotype["resolution"]) for _ in range(3)]
    recalibrate_bn(net, batches)
    child = net.extract_subnet()
    stem = child.stem.bn
    with torch.no_grad():
        features = torch.cat([child.stem.conv(x) for x in batches])
    # a plain average of the per-batch means (momentum None): the mean over the equal-sized batches
    torch.testing.assert_close(stem.running_mean, features.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    assert net.stem.bn.momentum == 0.1 and not net.training  # settings restored


def test_macs_of_the_biggest_and_smallest_children_of_the_table():
    # counted by torch's flop counter (convolutions and matmuls), 1000 classes; recorded in docs/bignas.md
    net = TABLE.supernet(1000, (3, 224, 224))
    net.sample_max_subnet()
    assert count_macs(net, (3, 320, 320)) == 1_841_398_400
    assert count_macs(net, (3, 192, 192)) == 663_804_544
    net.sample_min_subnet()
    assert count_macs(net, (3, 192, 192)) == 206_390_144
    assert count_macs(net, (3, 320, 320)) == 571_030_400


def test_genotype_canonical_form_round_trips_and_mutation():
    rng = random.Random(1)
    for arch in sampled_round_trips(TABLE, 20):
        child = TABLE.mutate(arch, rng)
        moved = [i for i, (a, b) in enumerate(zip(TABLE.encode(arch), TABLE.encode(child))) if a != b]
        assert len(moved) == 1
        TABLE.check_within(child.genotype)
    with pytest.raises(ArchitectureError, match="kernels are odd"):
        Architecture.from_dict({"space": "bignas_mbconv", "genotype": {**TABLE.min_genotype(), "kernels": [4] * 7}})
    with pytest.raises(ConfigError, match="space.widths.1"):
        BigNASSpace(widths=[[32, 40], [16, 20]] + [[8, 8]] * 7)
