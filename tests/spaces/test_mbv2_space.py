"""The MobileNetV2 block space: torchvision's MobileNetV2 exactly, the skip rules, sampling at two resolutions,
the genotype and the search operations."""

import random

import pytest
import torch
import torchvision

from lsnas.arch import Architecture, ArchitectureError, from_zoo
from lsnas.errors import ConfigError
from lsnas.spaces import get_space, space_from_config
from lsnas.spaces.mbv2 import DECISIONS, MBV2BlockSpace, block_channels, make_divisible
from tests.helpers.config import compose_config
from tests.helpers.spaces import sampled_round_trips

SPACE = MBV2BlockSpace()
MOBILENET_V2_PARAMS = 3_504_872  # torchvision.models.mobilenet_v2(), 1000 classes


def count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def test_the_zoo_mobilenet_v2_is_torchvisions_network():
    ours = SPACE.build(from_zoo("mobilenet_v2"), 1000, (3, 224, 224))
    reference = torchvision.models.mobilenet_v2()
    assert count(ours) == count(reference) == MOBILENET_V2_PARAMS
    assert list(ours.state_dict()) == list(reference.state_dict())  # same modules under the same names
    g = torch.Generator().manual_seed(1)  # torchvision's weights with non-trivial BN statistics
    state = {k: torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else v
             for k, v in reference.state_dict().items()}
    reference.load_state_dict(state)
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 96, 96, generator=g)
    torch.testing.assert_close(ours.eval()(x), reference.eval()(x), rtol=0, atol=0)


def test_the_dry_run_shows_mobilenet_v2():
    from lsnas.training.runner import build

    cfg = compose_config("train", "arch=mobilenet_v2", "dataset=imagenet1k", "dry_run=true")
    _, _, net = build(cfg)
    assert count(net) == MOBILENET_V2_PARAMS


def test_torchvision_initialisation():
    net = SPACE.build(from_zoo("mobilenet_v2"), 10, (3, 32, 32))
    linear = net.classifier[1]
    assert torch.count_nonzero(linear.bias) == 0 and abs(linear.weight.std().item() - 0.01) < 2e-3
    conv = net.features[2].conv[0][0]  # kaiming normal, fan_out: std = sqrt(2 / (out * k * k))
    assert abs(conv.weight.std().item() - (2 / conv.out_channels) ** 0.5) < 0.02


@pytest.mark.parametrize("resolution, samples", [(32, 12), (224, 3)])
def test_every_sampled_architecture_builds_and_runs(resolution, samples):
    rng = random.Random(resolution)
    for _ in range(samples):
        arch = SPACE.sample(rng)
        net = SPACE.build(arch, 7, (3, resolution, resolution), auxiliary=True).train()
        logits, aux = net.forward_with_aux(torch.randn(2, 3, resolution, resolution))
        assert logits.shape == aux.shape == (2, 7)
        assert net.eval()(torch.randn(1, 3, resolution, resolution)).shape == (1, 7)


def _one_block_change(**block1):
    genotype = from_zoo("mobilenet_v2").genotype
    genotype["blocks"][0] = {**genotype["blocks"][0], **block1}
    return genotype


def test_an_identity_skip_on_a_shape_changing_unit_is_a_bypass_or_nothing():
    genotype = _one_block_change(skip="identity")  # block 1: 32 -> 16 channels, so its unit changes shape
    bypass = SPACE.build(SPACE.architecture({**genotype, "shape_skip": "bypass"}), 10, (3, 32, 32))
    plain = SPACE.build(SPACE.architecture({**genotype, "shape_skip": "none"}), 10, (3, 32, 32))
    unit = bypass.features[1]
    assert unit.skip == "bypass" and plain.features[1].skip is None
    # every block's first unit changes shape (channels or stride): a 1x1 conv + BN on each
    shapes = [(32, 16), (16, 24), (24, 32), (32, 64), (64, 96), (96, 160), (160, 320)]
    assert count(bypass) - count(plain) == sum(i * o + 2 * o for i, o in shapes)
    assert bypass.features[2].skip == "bypass"  # block 2's first unit: stride 2
    assert bypass.features[3].skip == "identity"  # its second unit keeps the shape
    x = torch.randn(2, 32, 16, 16)
    unit.eval()
    torch.testing.assert_close(unit(x), unit.bypass(x) + unit.conv(x))
    no_skip = SPACE.build(SPACE.architecture(_one_block_change(skip="none")), 10, (3, 32, 32))
    assert no_skip.features[1].skip is None


def test_the_activation_is_a_rule_of_the_architecture():
    relu = SPACE.build(SPACE.architecture({**from_zoo("mobilenet_v2").genotype, "activation": "relu"}), 10,
                       (3, 32, 32))
    kinds = {type(m) for m in relu.modules()}
    assert torch.nn.ReLU in kinds and torch.nn.ReLU6 not in kinds


def test_widths_are_rounded_as_torchvision_rounds_them():
    assert [make_divisible(c * 0.5) for c in (16, 24, 32, 64, 96, 160, 320)] == [8, 16, 16, 32, 48, 80, 160]
    assert make_divisible(24 * 1.5) == 40
    genotype = from_zoo("mobilenet_v2").genotype
    assert block_channels(genotype) == [16, 24, 32, 64, 96, 160, 320]


@pytest.mark.parametrize("change, message", [({"op": "mb4"}, "op is one of"), ({"kernel": 4}, "kernel is one of"),
                                             ({"width": True}, "width is one of"), ({"stride": 2}, "must have")])
def test_malformed_genotypes_say_what_is_wrong(change, message):
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_dict({"space": "mbv2_blocks", "genotype": _one_block_change(**change)})


def test_canonical_form_and_round_trips():
    for arch in sampled_round_trips(SPACE, 30):
        assert SPACE.encode(arch).shape == (49,)
    loose = _one_block_change(width=1, kernel=3.0)
    assert SPACE.canonical_genotype(loose)["blocks"][0]["width"] == 1.0


def test_mutation_moves_one_decision_and_scale_moves_are_one_step():
    rng = random.Random(0)
    arch = SPACE.sample(rng)
    for _ in range(50):
        child = SPACE.mutate(arch, rng)
        changed = [(i, k) for i, (a, b) in enumerate(zip(arch.genotype["blocks"], child.genotype["blocks"]))
                   for k in DECISIONS if a[k] != b[k]]
        assert len(changed) == 1
        scaled = SPACE.mutate(arch, rng, decisions=("layers", "width"), step=1)
        (i, key), = [(i, k) for i, (a, b) in enumerate(zip(arch.genotype["blocks"], scaled.genotype["blocks"]))
                     for k in DECISIONS if a[k] != b[k]]
        assert key in ("layers", "width")
        values = DECISIONS[key]
        assert abs(values.index(arch.genotype["blocks"][i][key]) - values.index(scaled.genotype["blocks"][i][key])) == 1


def test_the_space_settings_restrict_what_is_sampled():
    space = space_from_config(compose_config("search", "method=eatnas", "space.choices.op=[mb6]",
                                             "space.activation=relu6", "space.shape_skip=none").space)
    arch = space.sample(random.Random(0))
    assert {b["op"] for b in arch.genotype["blocks"]} == {"mb6"}
    assert (arch.genotype["activation"], arch.genotype["shape_skip"]) == ("relu6", "none")
    assert all(b["op"] == "mb6" for b in space.decode(SPACE.encode(SPACE.sample(random.Random(1)))).genotype["blocks"])
    with pytest.raises(ConfigError, match="space.choices.kernel"):
        MBV2BlockSpace(choices={"kernel": [9]})
    assert get_space("mbv2_blocks").activation == "relu"  # EAT-NAS's rules by default


def test_the_default_networks_follow_eat_nas_official_code():
    space = space_from_config(compose_config("search", "method=eatnas").space)
    arch = space.sample(random.Random(0))
    assert arch.genotype["implementation"] == "eatnas"
    blocks = [{"op": "sep", "kernel": 3, "skip": "identity", "layers": 2, "width": 0.5}] + [
        {"op": "mb6", "kernel": 3, "skip": "identity", "layers": 1, "width": w}
        for w in (0.5, 1.5, 1.0, 1.0, 1.0, 1.0)]
    official = SPACE.architecture({"activation": "relu", "shape_skip": "bypass", "implementation": "eatnas",
                                   "blocks": blocks})
    # int(base * width), truncated: 24 x 0.5 = 12 and 32 x 1.5 = 48 (torchvision's rounding: 16 and 48)
    assert block_channels(official.genotype)[:3] == [8, 12, 48]
    net = SPACE.build(official, 10, (3, 32, 32), auxiliary=True)
    sep = net.features[2]  # block 1's second unit: same shape, identity skip asked for
    assert sep.skip is None and isinstance(sep.conv[-1][-1], torch.nn.ReLU)  # no shortcut, pw + BN + ReLU
    assert {m.eps for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {2e-5}
    assert net.pre_pool_dropout.p == 0.0 and len(net.classifier) == 1  # off, and before pooling
    head = net.auxiliary_head
    assert isinstance(head[0], torch.nn.ReLU) and head[1][0].out_channels == 128
    assert head[3][0].kernel_size == (2, 2) and head[3][0].out_channels == 768 and head[-1].in_features == 768
    logits, aux = net.train().forward_with_aux(torch.randn(2, 3, 32, 32))  # block 5's map is 2x2 at 32 px
    assert logits.shape == aux.shape == (2, 10)
    tiny = SPACE.build(official, 10, (3, 16, 16), auxiliary=True).train()
    assert tiny.forward_with_aux(torch.randn(2, 3, 16, 16))[1].shape == (2, 10)  # a 1x1 map, padded to 2x2


def test_a_genotype_without_implementation_is_torchvisions():
    old = {**from_zoo("mobilenet_v2").genotype}
    old.pop("implementation")
    arch = SPACE.architecture(old)
    assert arch == from_zoo("mobilenet_v2") and arch.genotype["implementation"] == "torchvision"
    net = SPACE.build(arch, 1000, (3, 224, 224))
    assert sum(p.numel() for p in net.parameters()) == MOBILENET_V2_PARAMS
    assert {m.eps for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-5}
