"""The eight DARTS operations, defined exactly as in the official DARTS code.

The same constructors serve the discrete networks (``affine=True``) and the one-shot
supernet (``affine=False``), so a searched op and its retrained counterpart are the same
module.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from timm.layers import drop_path as timm_drop_path
from torch import nn
from torch.nn import functional as F

PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


def plus(total: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``total + x``, where ``None`` is an empty sum: a sum started at 0 pays a kernel copying its first term."""
    return x if total is None else total + x


def plus_product(total: torch.Tensor | None, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``total + w * x``, one kernel (``torch.addcmul``) instead of a product and a sum; ``None``: an empty sum. The
    kernel may fuse the multiply-add, so the result equals the two-step one to rounding, not always bitwise."""
    return w * x if total is None else torch.addcmul(total, w, x)


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that sidesteps PyTorch's slow CPU kernel for channels-last inputs with few
    channels (at 4 channels, as PC-DARTS's partial channels give: ~8 ms forward and ~29 ms backward
    against ~0.5 ms in NCHW, batch 32 at 32x32). Such inputs are normalised in NCHW and returned in
    channels-last; the arithmetic is the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bn_in_nchw(x):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def drop_path(x: torch.Tensor, drop_prob: float | torch.Tensor) -> torch.Tensor:
    """Drop whole samples' paths with probability ``drop_prob``, scaling the kept by 1 / keep (official DARTS's
    ``drop_path``: timm's for a float). A 0-d tensor ``drop_prob`` (under torch.compile, whose graph would hold a
    float as a constant) draws the same distribution from another stream of the generator."""
    if not torch.is_tensor(drop_prob):
        return timm_drop_path(x, drop_prob, training=True)
    keep = 1.0 - drop_prob
    # drawn in float32 from the unrounded probability (a bf16 0.9 is 0.8984), then scaled as timm does: in x's dtype
    mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device).bernoulli_(keep)
    return x * mask.to(x.dtype).div_(keep)


def bn_in_nchw(x: torch.Tensor) -> bool:
    """Whether a batch norm of ``x`` should run in NCHW: a channels-last CPU tensor with few channels."""
    return x.device.type == "cpu" and x.shape[1] < 16 and not x.is_contiguous()


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            BatchNorm2d(c_out, affine=affine),
        )


def dilated_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int], groups: int) -> torch.Tensor:
    """``F.conv2d``, computed as dense convolutions where oneDNN's dilated kernels are slow: the same products, the
    same outputs bitwise on CPU (the weight gradient sums in another order).

    - A convolution whose stride equals its dilation, padded by a multiple of it, reads only every stride-th pixel:
      it is a stride-1, undilated convolution of those pixels. oneDNN's strided dilated kernels are 4-10x slower
      than its dense ones on the shapes of DARTS's dil_conv ops on reduction edges (forward and backward, CPU,
      channels-last or not).
    - A stride-1 convolution with dilation (dh, dw), padded by multiples of them, on sides divisible by them,
      combines pixels of one phase only. In channels-last memory the dw column phases are a free view as dw x more
      channels (a grouped conv with the weight repeated), and the dh row phases one copy of whole rows into the
      batch: a dense convolution. oneDNN's dilated depthwise weight gradient is 6-46x its dense one: on DARTS's
      normal-edge dil_conv shapes the forward with the full backward is 2.6-3.5x faster (benchmarks/dilated_conv.py);
      with the backward to the input alone (an architecture step) ~1.2x, but 2.7x slower at 16 channels, 32 px, 3x3."""
    if not isinstance(padding, tuple) or not all(p % d == 0 for p, d in zip(padding, dilation)):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if stride == dilation and max(stride) > 1:
        sh, sw = stride
        read = x[:, :, ::sh, ::sw].clone(memory_format=torch.preserve_format)  # oneDNN reorders a strided view slower
        return F.conv2d(read, weight, bias, 1, (padding[0] // sh, padding[1] // sw), 1, groups)
    if by_phases(x, weight, stride, padding, dilation):
        return conv_phases(split_phases(x, dilation), weight, bias, padding, dilation, groups)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def by_phases(x: torch.Tensor, weight: torch.Tensor, stride, padding, dilation) -> bool:
    """Whether :func:`dilated_conv2d` computes this stride-1 dilated conv by phases."""
    return (tuple(stride) == (1, 1) and max(dilation) > 1 and isinstance(padding, tuple)
            and all(p % d == 0 for p, d in zip(padding, dilation)) and _channels_last(x)
            and _phases_fit(x.shape[2:], weight.shape[2:], dilation))


def split_phases(x: torch.Tensor, dilation: tuple[int, int]) -> torch.Tensor:
    """The phases of a channels-last ``x`` as :func:`conv_phases` takes them (one copy). Convs of one input with one
    dilation can share them."""
    dh, dw = dilation
    return _split_row_phases(_fold_column_phases(x, dw), dh)


def conv_phases(phases: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int],
                dilation: tuple[int, int], groups: int) -> torch.Tensor:
    """The stride-1 conv with ``dilation`` and ``padding`` (multiples of it) of the input whose
    :func:`split_phases` is ``phases``, as a dense conv of them; the output in the input's layout (one copy)."""
    dh, dw = dilation
    # Repeated through an identity view, whose backward returns the gradient in the parameter's own strides
    # (DDP's buckets require them); repeat's alone comes back NCHW.
    weights = weight.as_strided(weight.shape, weight.stride()).repeat(dw, 1, 1, 1)
    y = F.conv2d(phases, weights, None if bias is None else bias.repeat(dw), 1, (padding[0] // dh, padding[1] // dw),
                 1, groups * dw)
    return _unfold_column_phases(_merge_row_phases(y, dh), dw)


def _phases_fit(size, kernel, dilation) -> bool:
    """Whether the sides split into whole phases no smaller than the kernel (oneDNN's dense kernels are slow on
    images smaller than the kernel: 64 channels at 8 px, 5x5, is no faster as 4 px phases)."""
    return all(s % d == 0 and s // d >= k for s, k, d in zip(size, kernel, dilation))


def _channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _fold_column_phases(x: torch.Tensor, d: int) -> torch.Tensor:
    """(N, C, H, W) channels-last -> (N, d*C, H, W/d), a view: channel b*C + c of column q is x[:, c, :, q*d + b]."""
    if d == 1:
        return x
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, h, w // d, d * c).permute(0, 3, 1, 2)


def _unfold_column_phases(y: torch.Tensor, d: int) -> torch.Tensor:
    """The inverse of :func:`_fold_column_phases`."""
    if d == 1:
        return y
    n, c, h, w = y.shape
    return y.permute(0, 2, 3, 1).reshape(n, h, w * d, c // d).permute(0, 3, 1, 2)


def _split_row_phases(x: torch.Tensor, d: int) -> torch.Tensor:
    """(N, C, H, W) channels-last -> (d*N, C, H/d, W) channels-last, one copy of whole rows: batch index a*N + n
    holds x[n, :, a::d]."""
    if d == 1:
        return x
    n, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(n, h // d, d, w, c).permute(2, 0, 1, 3, 4)
    return rows.reshape(d * n, h // d, w, c).permute(0, 3, 1, 2)


def _merge_row_phases(y: torch.Tensor, d: int) -> torch.Tensor:
    """The inverse of :func:`_split_row_phases`."""
    if d == 1:
        return y
    b, c, h, w = y.shape
    rows = y.permute(0, 2, 3, 1).reshape(d, b // d, h, w, c).permute(1, 2, 0, 3, 4)
    return rows.reshape(b // d, h * d, w, c).permute(0, 3, 1, 2)


class DilatedConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and numbers) computed with :func:`dilated_conv2d`."""

    def forward(self, x: torch.Tensor, phases: torch.Tensor | None = None) -> torch.Tensor:
        """``phases``: ``split_phases(x, self.dilation)``, shared by a caller that checked :meth:`by_phases`."""
        if phases is not None:
            return conv_phases(phases, self.weight, self.bias, self.padding, self.dilation, self.groups)
        if self.padding_mode != "zeros":
            return super().forward(x)
        return dilated_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def by_phases(self, x: torch.Tensor) -> bool:
        return self.padding_mode == "zeros" and by_phases(x, self.weight, self.stride, self.padding, self.dilation)


class DilConv(nn.Sequential):
    """ReLU -> depthwise (dilated) conv -> pointwise conv -> BN."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            DilatedConv2d(c_in, c_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                          groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
            BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """The DARTS separable conv: (ReLU, depthwise, pointwise, BN) applied twice, stride on the first."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride=stride, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, kernel_size=1, bias=False),
            BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
            BatchNorm2d(c_out, affine=affine),
        )


class Zero(nn.Module):
    """The 'none' op: zeros with the output shape of a (possibly strided) edge."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset 1x1 stride-2 convs, concatenated (strided skip)."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_relu_applied(self.relu(x))

    def forward_relu_applied(self, x: torch.Tensor) -> torch.Tensor:
        """The op on an input already through ReLU (the supernet shares one ReLU between edges)."""
        if self.by_subsampling(x):
            return self.forward_subsampled(*self.subsample(x))
        shifted = x[:, :, 1:, 1:]
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            # Odd sizes (where the official code fails): pad so both branches give ceil(H/2).
            # On even sizes this changes nothing, so the official numerics are kept there.
            shifted = F.pad(shifted, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))

    @staticmethod
    def by_subsampling(x: torch.Tensor) -> bool:
        """On CPU in channels-last: each 1x1 stride-2 conv as a stride-1 conv of the pixels it reads (the same
        products). torch 2.14's CPU backward of a channels-last 1x1 stride-2 conv corrupts the heap at >= 56 px
        (tests/spaces/test_darts_ops.py), and the way round it through NCHW (a transposition in, one out, and a
        copy of the shifted slice) cost more than the convolutions."""
        return x.device.type == "cpu" and not x.is_contiguous()

    @staticmethod
    def subsample(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pixels conv_1 and conv_2 read (views; odd sizes: the zero padding of the shifted branch)."""
        even, odd = x[:, :, ::2, ::2], x[:, :, 1::2, 1::2]
        if odd.shape != even.shape:
            odd = F.pad(odd, (0, even.shape[-1] - odd.shape[-1], 0, even.shape[-2] - odd.shape[-2]))
        return even, odd

    def forward_subsampled(self, even: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:
        """The op on :meth:`subsample`'s pixels (shared by the supernet's strided edges out of one state)."""
        return self.bn(torch.cat([F.conv2d(even, self.conv_1.weight), F.conv2d(odd, self.conv_2.weight)], dim=1))


OpFactory = Callable[[int, int, bool], nn.Module]

OPS: dict[str, OpFactory] = {
    "none": lambda C, stride, affine: Zero(stride),
    # count_include_pad=False: border averages ignore the zero padding, as in DARTS.
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": lambda C, stride, affine: nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine),
}
assert tuple(sorted(OPS)) == tuple(sorted(PRIMITIVES))


def make_op(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    try:
        factory = OPS[name]
    except KeyError:
        raise ValueError(f"unknown DARTS operation {name!r}; known: {', '.join(PRIMITIVES)}") from None
    return factory(channels, stride, affine)
