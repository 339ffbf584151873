"""Parameter and multiply-accumulate counts, with torch's maintained FLOP counter."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(net: nn.Module, exclude: str = "auxiliary") -> int:
    """Parameters of the deployed network: the auxiliary head is training-only (DARTS counts it out)."""
    return sum(p.numel() for name, p in net.named_parameters() if exclude not in name)


@torch.no_grad()
def count_macs(net: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """MACs of one eval-mode forward pass on one image (convolutions and matmuls: FLOPs / 2)."""
    was_training = net.training
    net.eval()
    try:
        param = next(net.parameters())
        x = torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype)
        with FlopCounterMode(display=False) as counter:
            net(x)
    finally:
        net.train(was_training)
    return counter.get_total_flops() // 2


def complexity(net: nn.Module, input_shape: tuple[int, int, int]) -> dict:
    return {"params": count_parameters(net), "macs": count_macs(net, input_shape)}
