"""The sparse space: node masks of a parent, their canonical form, the search operations and the smaller network."""

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from lsnas.arch import Architecture, ArchitectureError
from lsnas.spaces.sparse import SparseSpace

MLP = {"kind": "mlp", "widths": [512, 512]}
CONV = {"kind": "conv", "widths": [8, 12, 16, 16], "pool_every": 2}


def params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def masked_parent(space, arch, shape, num_classes=10):
    """The parent with the removed nodes' outputs zeroed (hooks on each unit's ReLU)."""
    parent = space.parent_network(arch, num_classes, shape)
    for unit, kept in zip(parent.units, arch.genotype["kept"]):
        relu = next(m for m in unit if isinstance(m, nn.ReLU))
        width = (unit[0].out_features if isinstance(unit[0], nn.Linear) else unit[0].out_channels)
        mask = torch.zeros(width)
        mask[kept] = 1.0
        mask = mask.view((1, -1) if isinstance(unit[0], nn.Linear) else (1, -1, 1, 1))
        relu.register_forward_hook(lambda _m, _i, out, mask=mask: out * mask)
    return parent


def test_the_genotype_is_canonical_and_round_trips_through_json(tmp_path):
    arch = Architecture("sparse", {"parent": {"widths": [4, 3], "kind": "mlp"}, "init_seed": 1,
                                   "kept": [[3, 0], [2]]})
    assert arch.genotype == {"parent": {"kind": "mlp", "widths": [4, 3]}, "init_seed": 1, "kept": [[0, 3], [2]]}
    assert Architecture.load(arch.save(tmp_path / "arch.json")) == arch
    conv = Architecture("sparse", {"parent": {"kind": "conv", "widths": [4]}, "init_seed": 0, "kept": [[1]]})
    assert conv.genotype["parent"]["pool_every"] == 2  # the default is made explicit
    assert json.loads(conv.to_json())["genotype"]["kept"] == [[1]]


@pytest.mark.parametrize("kept, match", [
    ([[0, 4], [1]], r"kept\[0\] lists distinct node indices in \[0, 4\)"),
    ([[0, 0], [1]], r"kept\[0\] lists distinct"),
    ([[0], []], r"kept\[1\] .* at least one"),
    ([[0]], "one list per hidden layer"),
    ([[0.5], [1]], r"kept\[0\]"),
])
def test_a_malformed_mask_is_refused_saying_what_is_wrong(kept, match):
    with pytest.raises(ArchitectureError, match=match):
        Architecture.from_dict({"space": "sparse", "genotype": {"parent": {"kind": "mlp", "widths": [4, 3]},
                                                                 "init_seed": 0, "kept": kept}})


@pytest.mark.parametrize("parent, shape", [(MLP, (1, 28, 28)), (CONV, (3, 16, 16))])
@pytest.mark.parametrize("scope", ["per_layer", "global"])
@pytest.mark.parametrize("train_mode", [True, False])
def test_the_built_network_equals_the_masked_parent_with_its_initial_weights(parent, shape, scope, train_mode):
    space = SparseSpace(parent, sparsity=0.75, scope=scope, init_seed=3)
    arch = space.sample(random.Random(0))
    child = space.build(arch, 10, shape).train(train_mode)
    masked = masked_parent(space, arch, shape).train(train_mode)
    x = torch.randn(6, *shape)
    torch.testing.assert_close(child(x), masked(x), rtol=1e-5, atol=1e-5)
    assert params(child) < params(masked)  # physically smaller, not a masked copy


def test_parameters_fall_with_sparsity_as_counted_by_hand():
    counts = []
    for sparsity in (0.0, 0.5, 0.75, 0.9, 0.95):
        space = SparseSpace(MLP, sparsity=sparsity)
        arch = space.dense() if sparsity == 0 else space.sample(random.Random(0))
        k = round((1 - sparsity) * 512)  # 512, 256, 128, 51, 26 nodes per layer
        assert [len(n) for n in arch.genotype["kept"]] == [k, k]
        assert params(space.build(arch, 10, (1, 28, 28))) == 784 * k + k + k * k + k + k * 10 + 10
        counts.append(params(space.build(arch, 10, (1, 28, 28))))
    assert counts == sorted(counts, reverse=True) and counts[0] == 784 * 512 + 512 + 512 * 512 + 512 + 5130
    conv = SparseSpace(CONV, sparsity=0.5)
    k = [4, 6, 8, 8]  # convolutions without bias, BN weight and bias per channel, a linear classifier
    by_hand = 3 * 9 * k[0] + sum(a * 9 * b for a, b in zip(k, k[1:])) + 2 * sum(k) + k[-1] * 10 + 10
    assert params(conv.build(conv.sample(random.Random(1)), 10, (3, 16, 16))) == by_hand


def test_the_parent_init_is_seeded_and_leaves_the_global_rng_alone():
    space = SparseSpace(MLP, sparsity=0.5, init_seed=7)
    arch = space.sample(random.Random(0))
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = space.build(arch, 10, (1, 28, 28)), space.build(arch, 10, (1, 28, 28))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    other = SparseSpace(MLP, sparsity=0.5, init_seed=8).mask(arch.genotype["kept"])
    assert not torch.equal(space.build(other, 10, (1, 28, 28)).units[0][0].weight, a.units[0][0].weight)
    # the kept rows are the parent's rows at those nodes
    parent = space.parent_network(arch, 10, (1, 28, 28))
    torch.testing.assert_close(a.units[0][0].weight, parent.units[0][0].weight[arch.genotype["kept"][0]])


@pytest.mark.parametrize("scope", ["per_layer", "global"])
def test_sample_mutate_encode_decode_keep_the_sparsity(scope):
    space = SparseSpace({"kind": "mlp", "widths": [20, 10, 5]}, sparsity=0.8, scope=scope)
    rng = random.Random(0)
    for _ in range(20):
        arch = space.sample(rng)
        kept = [len(k) for k in arch.genotype["kept"]]
        if scope == "per_layer":
            assert kept == [4, 2, 1]
        else:
            assert sum(kept) == 7 and min(kept) >= 1
        child = space.mutate(arch, rng)
        assert [len(k) for k in child.genotype["kept"]] == kept or scope == "global"
        moved = sum(len(set(a) ^ set(b)) for a, b in zip(arch.genotype["kept"], child.genotype["kept"]))
        assert moved == 2 and sum(map(len, child.genotype["kept"])) == 7  # one node removed, one added
        assert space.decode(space.encode(arch)) == arch
        decoded = space.decode(np.random.default_rng(0).random(35))
        assert sum(map(len, decoded.genotype["kept"])) == 7
    assert SparseSpace.sparsity_of(arch) == pytest.approx(1 - 7 / 35)


def test_a_conv_parent_refuses_inputs_it_would_pool_away():
    space = SparseSpace({"kind": "conv", "widths": [4] * 8, "pool_every": 1})
    with pytest.raises(ValueError, match="pool_every"):
        space.build(space.dense(), 10, (3, 16, 16))


def test_settings_are_checked():
    from lsnas.errors import ConfigError

    with pytest.raises(ConfigError, match="space.sparsity"):
        SparseSpace(MLP, sparsity=1.0)
    with pytest.raises(ConfigError, match="space.scope"):
        SparseSpace(MLP, scope="layerwise")
