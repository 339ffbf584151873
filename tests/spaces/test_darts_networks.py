"""Fidelity to the papers: parameter counts of the official evaluation networks (no auxiliary head)."""

import pytest
import torch
from torch import nn

from lsnas.arch import from_zoo, zoo_names
from lsnas.spaces import get_space
from lsnas.training.complexity import count_macs, count_parameters

SPACE = get_space("darts")


def cifar_net(name, **kw):
    return SPACE.build(from_zoo(name), 10, (3, 32, 32), network="cifar", init_channels=36, layers=20, **kw)


def imagenet_net(name, **kw):
    return SPACE.build(from_zoo(name), 1000, (3, 224, 224), network="imagenet", init_channels=48, layers=14, **kw)


def test_darts_v2_matches_the_official_counts_exactly():
    # The official train.py / train_imagenet.py log "param size = 3.349342MB" and "4.718752MB".
    assert count_parameters(cifar_net("darts_v2", auxiliary=True)) == 3_349_342
    assert count_parameters(imagenet_net("darts_v2", auxiliary=True)) == 4_718_752


@pytest.mark.parametrize("name, reported_m", [("pc_darts_cifar", 3.6), ("p_darts", 3.4), ("gdas", 3.4),
                                              ("darts_v2", 3.3)])
def test_cifar_counts_match_the_papers(name, reported_m):
    assert round(count_parameters(cifar_net(name)) / 1e6, 1) == reported_m


@pytest.mark.parametrize("name, reported_m", [("darts_v2", 4.7), ("pc_darts_imagenet", 5.3), ("p_darts", 4.9)])
def test_imagenet_counts_match_the_papers(name, reported_m):
    assert round(count_parameters(imagenet_net(name)) / 1e6, 1) == reported_m


def test_darts_v2_cifar_macs():
    # 528M multiply-adds, the figure reproductions report for DARTS_V2 on CIFAR-10.
    assert round(count_macs(cifar_net("darts_v2"), (3, 32, 32)) / 1e6) == 528


def test_structure_reductions_and_stems():
    net = cifar_net("darts_v2")
    assert [c.reduction for c in net.cells].count(True) == 2
    assert net.cells[20 // 3].reduction and net.cells[2 * 20 // 3].reduction
    assert net.stem_conv[0].out_channels == 3 * 36
    inet = imagenet_net("darts_v2")
    strides = [m.stride for m in [*inet.stem0, *inet.stem1] if isinstance(m, nn.Conv2d)]
    assert strides == [(2, 2)] * 3


@pytest.mark.parametrize("name", [n for n in zoo_names() if from_zoo(n).space == "darts"])
def test_every_darts_zoo_network_runs_and_classifies(name):
    net = SPACE.build(from_zoo(name), 7, (3, 32, 32), network="cifar", init_channels=8, layers=5, auxiliary=True)
    net.train()
    logits, aux = net.forward_with_aux(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 7)
    net.eval()
    assert net.forward_with_aux(torch.randn(2, 3, 32, 32))[1] is None  # the auxiliary head trains only


def test_imagenet_network_other_resolutions_and_grayscale():
    net = SPACE.build(from_zoo("darts_v2"), 5, (1, 64, 64), network="imagenet", init_channels=8, layers=5)
    assert net(torch.randn(2, 1, 64, 64)).shape == (2, 5)


def test_drop_path_spares_identity_edges():
    net = SPACE.build(from_zoo("darts_v2"), 10, (3, 32, 32), network="cifar", init_channels=8, layers=3)
    cell = net.cells[0]  # normal cell: DARTS_V2 has two skip_connect (identity) edges in it
    identity = [k for k, op in enumerate(cell.ops) if isinstance(op, nn.Identity)]
    assert len(identity) == 2
    cell.train()
    s = torch.randn(4, 24, 8, 8)
    torch.manual_seed(0)
    with torch.no_grad():
        # drop_prob ~1 drops every non-identity edge: only identity paths (and nodes fed by them) survive.
        out = cell(s, s, drop_prob=1 - 1e-7)
    pre0 = cell.preprocess0(s)
    c = 8
    node3 = out[:, 1 * c: 2 * c]  # DARTS_V2 node 3 = sep(s0) + sep(s1): both dropped
    node4 = out[:, 2 * c: 3 * c]  # node 4 = sep(s1) + skip(s0): only the skip survives
    assert node3.abs().max() == 0
    torch.testing.assert_close(node4, pre0)


def test_auxiliary_head_too_small_input_names_the_setting():
    with pytest.raises(ValueError, match="protocol.model.auxiliary=false"):
        SPACE.build(from_zoo("darts_v2"), 10, (1, 16, 16), network="cifar", init_channels=8, layers=5,
                    auxiliary=True)


def test_unknown_network_names_the_setting():
    with pytest.raises(ValueError, match="protocol.model.network"):
        SPACE.build(from_zoo("darts_v2"), 10, (3, 32, 32), network="mobile")
