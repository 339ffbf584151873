"""Weight-slicing layers of a single-stage supernet (BigNAS; the AttentiveNAS / once-for-all layout).

Each layer holds the weights of its largest configuration and computes a smaller one on a slice of them: the
first output channels (``active_out``), the first input channels (those of its input), and for kernels the
centre of the largest kernel (``active_kernel``). A layer whose active configuration is its whole size computes
exactly what the same layer of a standalone network does, so a child extracted with the sliced weights
(``slice_state``) gives the supernet child's outputs bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kernel_window(max_kernel: int, kernel: int) -> slice:
    start = (max_kernel - kernel) // 2
    return slice(start, start + kernel)


class DynamicConv2d(nn.Conv2d):
    """A convolution of up to ``in_channels`` -> ``out_channels`` with kernels up to ``kernel_size``
    (``depthwise``: one filter per channel, as many outputs as inputs)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 depthwise: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                         groups=in_channels if depthwise else 1, bias=False)
        self.depthwise = depthwise
        self.active_out, self.active_kernel = out_channels, kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in, k = x.shape[1], self.active_kernel
        window = kernel_window(self.kernel_size[0], k)
        if self.depthwise:
            weight = self.weight[:c_in, :, window, window]
            return F.conv2d(x, weight, None, self.stride, k // 2, 1, c_in)
        weight = self.weight[: self.active_out, :c_in, window, window]
        return F.conv2d(x, weight, None, self.stride, k // 2)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the first channels of its input (the running statistics of the others are untouched)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        tracked = self.running_mean is not None  # a proxy may run BN without statistics (buffers set to None)
        use_batch_stats = self.training or not tracked

        def head(t):
            return None if t is None else t[:c]

        return F.batch_norm(x, head(self.running_mean), head(self.running_var), head(self.weight), head(self.bias),
                            use_batch_stats, factor, self.eps)


class DynamicLinear(nn.Linear):
    """A linear layer reading the first features of its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)


def slice_state(source: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """``source`` (a supernet's state dict) cut to the shapes of ``target``'s: leading channels, and the centre
    of convolution kernels."""
    sliced = {}
    for name, like in target.state_dict().items():
        tensor = source[name]
        if tensor.dim() == 4:  # a conv weight: (out, in, k, k)
            window = kernel_window(tensor.shape[-1], like.shape[-1])
            tensor = tensor[: like.shape[0], : like.shape[1], window, window]
        elif tensor.dim() >= 1:
            tensor = tensor[tuple(slice(0, n) for n in like.shape)]
        sliced[name] = tensor.clone()
    return sliced
