"""The ResNet macro space: timm's networks exactly, the genotype, and the box encoding."""

import random

import numpy as np
import pytest
import timm
import torch

from lsnas.arch import Architecture, ArchitectureError, from_zoo
from lsnas.errors import ConfigError
from lsnas.spaces import get_space, network_kwargs, space_from_config
from tests.helpers.config import compose_config

SPACE = get_space("resnet")


@pytest.mark.parametrize("name, params", [("resnet18", 11_689_512), ("resnet34", 21_797_672),
                                          ("resnet50", 25_557_032)])
def test_the_zoo_resnets_are_timms_networks(name, params):
    torch.manual_seed(0)
    ours = SPACE.build(from_zoo(name), 1000, (3, 224, 224))
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters()) == params
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), reference.state_dict().values()))
    # same logits under timm's weights, with every BN given non-trivial statistics
    g = torch.Generator().manual_seed(1)
    state = {k: torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else v
             for k, v in reference.state_dict().items()}
    reference.load_state_dict(state)
    ours.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64, generator=g)
    torch.testing.assert_close(ours.eval()(x), reference.eval()(x), rtol=0, atol=0)


def test_the_train_dry_run_prints_timms_count(capsys):
    from lsnas.training.runner import build

    cfg = compose_config("train", "arch=resnet50", "dataset=imagenet1k", "dry_run=true")
    _, _, net = build(cfg)
    assert sum(p.numel() for p in net.parameters()) == 25_557_032


def test_another_stem_is_built_and_initialised_the_timm_way():
    g = {"stem_width": 40, "stem_stride": 2, "stem_pool": False, "blocks": ["basic"] * 4, "depths": [2, 2, 2, 2],
         "widths": [32, 300, 600, 1200]}
    net = SPACE.build(SPACE.architecture(g), 10, (3, 32, 32))
    assert net.conv1.out_channels == 40 and isinstance(net.maxpool, torch.nn.Identity)
    assert net.layer1[0].conv1.in_channels == 40 and net.layer1[0].downsample is not None
    assert torch.count_nonzero(net.layer1[0].bn2.weight) == 0  # timm's zero-init of the last BN of each block
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bad, message", [({"widths": [64, 128]}, "one entry per stage"),
                                          ({"blocks": ["wide"] * 4}, "resnet blocks are"),
                                          ({"widths": [64, 0, 256, 512]}, "positive integers"),
                                          ({"kernel": 3}, "unknown: \\['kernel'\\]")])
def test_malformed_genotypes_say_what_is_wrong(bad, message):
    genotype = {**from_zoo("resnet18").genotype, **bad}
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_dict({"space": "resnet", "genotype": genotype})
    with pytest.raises(ArchitectureError, match="missing: \\['stem_pool'\\]"):
        Architecture.from_dict({"space": "resnet", "genotype": {k: v for k, v in genotype.items() if k != "stem_pool"}})


def spline_space():
    return space_from_config(compose_config("search", "method=pspline").space)


@pytest.mark.parametrize("make", [spline_space, lambda: SPACE])
def test_encode_decode_round_trip_and_snapping(make):
    space = make()
    rng = random.Random(0)
    for _ in range(20):
        arch = space.sample(rng)
        x = space.encode(arch)
        assert x.min() >= 0 and x.max() <= 1 and space.decode(x) == arch
        mutant = space.mutate(arch, rng)
        assert mutant != arch and np.count_nonzero(space.encode(mutant) != x) == 1
    snapped = space.decode(np.full(len(space.dims), 0.5))
    assert np.allclose(space.encode(snapped), 0.5, atol=max(d.step / (d.high - d.low) if d.choices is None else 0.5
                                                             for d in space.dims))
    assert space.decode(np.full(len(space.dims), 7.0)) == space.decode(np.ones(len(space.dims)))  # clipped


def test_the_spline_space_is_the_papers():
    space = spline_space()
    assert space.dim_names == ["c1", "g1", "g2", "g3", "g4"]
    assert [(d.low, d.high) for d in space.dims] == [(32, 150), (32, 300), (32, 600), (32, 1200), (32, 2400)]
    top = space.decode(np.ones(5)).genotype
    assert top["stem_width"] == 150 and top["widths"] == [300, 600, 1200, 2400] and top["depths"] == [2, 2, 2, 2]
    assert top["stem_pool"] is False
    wider = space_from_config(compose_config("search", "method=pspline", "space.dims.g4.range=[32,4800]").space)
    assert wider.decode(np.ones(5)).genotype["widths"][3] == 4800  # the box extended past its edge: a setting


def test_bad_dims_name_the_setting():
    with pytest.raises(ConfigError, match="space.dims.x.path 'widths.7'"):
        type(SPACE)(dims={"x": {"path": "widths.7", "range": [1, 4]}})
    with pytest.raises(ConfigError, match="space.dims.x needs either range"):
        type(SPACE)(dims={"x": {"path": "widths.0"}})


def test_each_space_takes_its_own_protocol_model_settings():
    quick = {"network": "cifar", "init_channels": 16, "layers": 8, "auxiliary": False}
    assert network_kwargs(SPACE, {**quick, "drop_rate": 0.1}) == {"drop_rate": 0.1}
    assert network_kwargs(get_space("darts"), quick) == quick
    with pytest.raises(ConfigError, match="no space's networks take: \\['layerz'\\]"):
        network_kwargs(SPACE, {"layerz": 3})
