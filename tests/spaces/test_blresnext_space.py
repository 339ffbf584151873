"""Big-Little-Net ResNeXt: phi = 1 points are the official IBM/BigLittleNet networks, module for module.

The reference numbers in data/blresnext50_32x4d_reference.json were taken by running the official
``models/blresnext.py`` (its commit is named in the file): parameter counts, MACs at 224 px, the state
dict's names and shapes, the digest of the state dict it builds after ``torch.manual_seed(0)``, and its
logits under BN parameters randomised by a fixed procedure (so that no residual branch is zero)."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lsnas.arch import from_zoo
from lsnas.spaces import get_space, space_from_config
from lsnas.training.complexity import count_macs
from lsnas.training.trainer import tensor_digest
from tests.helpers.config import compose_config

REFERENCE = json.loads((Path(__file__).parent / "data" / "blresnext50_32x4d_reference.json").read_text())
SPACE = get_space("blresnext")


def build(seed=0, **changes):
    torch.manual_seed(seed)
    arch = SPACE.architecture({**from_zoo("blresnext50_32x4d_a2_b4").genotype, **changes})
    return SPACE.build(arch, 1000, (3, 224, 224))


def test_the_zoo_network_is_the_official_one_module_for_module():
    net = build()
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == REFERENCE["state_dict"]
    assert tensor_digest(net.state_dict().values()) == REFERENCE["seed0_state_dict_digest"]  # same initialisation
    assert sum(p.numel() for p in net.parameters()) == REFERENCE["params"]["a2_b4"]
    assert count_macs(net, (3, 224, 224)) == REFERENCE["macs_224_a2_b4"]  # the paper's 3.03 GMACs


@pytest.mark.parametrize("alpha, beta", [(2, 2), (4, 2), (4, 4), (3, 5), (7, 8), (5, 3), (6, 6)])
def test_other_alpha_beta_points_have_the_official_counts(alpha, beta):
    net = build(alpha=alpha, beta=beta)
    assert sum(p.numel() for p in net.parameters()) == REFERENCE["params"][f"a{alpha}_b{beta}"]


def test_the_same_logits_as_the_official_network_given_the_same_weights():
    net = build()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():  # the reference's procedure: every BN randomised, in module order
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
        y = net.eval()(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3)))
    ref = REFERENCE["randomised_bn_logits_64px"]
    np.testing.assert_allclose(y[:, :10].numpy(), ref["first10"], atol=2e-4)
    np.testing.assert_allclose(y.sum(1).numpy(), ref["row_sums"], atol=2e-3)
    assert y.argmax(1).tolist() == ref["argmax"]


def test_phi_widens_every_stage_and_the_space_is_the_papers():
    space = space_from_config(compose_config("search", "method=pspline", "space=blresnext").space)
    assert space.dim_names == ["alpha", "beta", "phi"]
    assert np.prod([len(d.values()) for d in space.dims]) == 539
    wide = build(phi=1.5)
    assert wide.conv1.out_channels == 96 and wide.fc.in_features == 3072
    assert wide(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    rng = random.Random(0)
    for _ in range(10):
        arch = space.sample(rng)
        assert space.decode(space.encode(arch)) == arch
        assert space.mutate(arch, rng) != arch
    extended = space_from_config(compose_config("search", "method=pspline", "space=blresnext",
                                                "space.dims.phi.range=[1.0,3.0]").space)
    assert extended.decode(np.ones(3)).genotype["phi"] == 3.0


def test_alpha_must_leave_the_little_branch_a_group():
    with pytest.raises(ValueError, match="alpha=33 leaves the little branch no group"):
        SPACE.architecture({**from_zoo("blresnext50_32x4d_a2_b4").genotype, "alpha": 33})


def test_betas_that_build_one_network_are_one_architecture():
    zoo = from_zoo("blresnext50_32x4d_a2_b4")
    same = [SPACE.architecture({**zoo.genotype, "beta": beta}) for beta in range(3, 9)]
    assert len({a.digest for a in same}) == 1 and same[0].genotype["beta"] == 3  # written as the smallest
    assert zoo == same[0]
    counts = {sum(p.numel() for p in build(beta=beta).parameters()) for beta in (3, 4, 8)}
    assert counts == {REFERENCE["params"]["a2_b4"]}
    assert SPACE.architecture({**zoo.genotype, "beta": 2}) != zoo
    deeper = {**zoo.genotype, "depth": 101}  # at depth 101, beta 3 and 4 differ (18 // 3 - 1 vs 18 // 4 - 1)
    assert SPACE.architecture({**deeper, "beta": 3}) != SPACE.architecture({**deeper, "beta": 4})
    space = space_from_config(compose_config("search", "method=pspline", "space=blresnext").space)
    points = [space.with_values({"alpha": a, "beta": b, "phi": p})
              for a in range(2, 9) for b in range(2, 9) for p in space.dims[2].values()]
    assert len(points) == 539 and len({a.digest for a in points}) == 154  # docs/spline_search.md
    rng = random.Random(0)
    for arch in points[::37]:
        assert space.mutate(arch, rng) != arch  # a move to an equivalent beta is no move
