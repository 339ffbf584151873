import pytest
import torch
from torch import nn

from lsnas.spaces.darts.ops import PRIMITIVES, FactorizedReduce, SepConv, make_op


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
def test_op_output_shape(name, stride):
    x = torch.randn(2, 8, 12, 12)
    op = make_op(name, 8, stride)
    assert op(x).shape == (2, 8, 12 // stride, 12 // stride)


def test_odd_sizes_reduce_to_ceil_half():
    x = torch.randn(1, 4, 7, 7)
    assert {make_op(n, 4, 2)(x).shape[-1] for n in PRIMITIVES} == {4}


def test_factorized_reduce_matches_the_official_formula_on_even_sizes():
    fr = FactorizedReduce(4, 6).eval()
    x = torch.randn(2, 4, 8, 8)
    r = torch.relu(x)
    expected = fr.bn(torch.cat([fr.conv_1(r), fr.conv_2(r[:, :, 1:, 1:])], dim=1))
    torch.testing.assert_close(fr(x), expected)


def test_op_definitions_follow_darts():
    sep = make_op("sep_conv_3x3", 6, 1)
    assert isinstance(sep, SepConv)
    convs = [m for m in sep if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [6, 1, 6, 1]  # depthwise+pointwise, applied twice
    dil = make_op("dil_conv_5x5", 6, 1)
    assert dil[1].dilation == (2, 2) and dil[1].kernel_size == (5, 5)
    assert make_op("avg_pool_3x3", 6, 1).count_include_pad is False
    assert isinstance(make_op("skip_connect", 6, 1), nn.Identity)
    assert isinstance(make_op("skip_connect", 6, 2), FactorizedReduce)
    assert make_op("none", 6, 1)(torch.ones(1, 6, 4, 4)).abs().sum() == 0


def test_affine_flag_reaches_batchnorm():
    op = make_op("sep_conv_3x3", 4, 1, affine=False)
    assert all(not m.affine for m in op.modules() if isinstance(m, nn.BatchNorm2d))


def test_unknown_op_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown DARTS operation 'conv_9x9'"):
        make_op("conv_9x9", 4, 1)
