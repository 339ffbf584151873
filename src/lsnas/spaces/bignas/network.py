"""The elastic MBConv network of BigNAS: one class for the supernet and for a standalone child.

Built from per-stage maxima (stem, seven MBConv stages, head), it runs any child whose widths, depths and
kernels are within them (``set_active_subnet``); built from a child's own genotype, it is that child alone.
The AttentiveNAS-style API samples children from the space the network was built with: ``sample_max_subnet``,
``sample_min_subnet``, ``sample_active_subnet``. A unit has a residual connection when its stride is 1 and
its active input and output widths are equal (MobileNetV2's rule); BigNAS zero-initialises the last BN of
each residual unit (``zero_init_residual_bn``).
"""

from __future__ import annotations

import random

import torch
from torch import nn

from lsnas.spaces.bignas.dynamic import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, slice_state

EXPANSIONS = (1, 6, 6, 6, 6, 6, 6)
STRIDES = (1, 2, 2, 2, 1, 2, 1)


class ConvBNAct(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, depthwise: bool = False, act=True):
        super().__init__()
        self.conv = DynamicConv2d(c_in, c_out, kernel, stride, depthwise)
        self.bn = DynamicBatchNorm2d(c_out)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion (absent at expansion 1), depthwise k x k, 1x1 projection."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        self.expansion, self.stride = expansion, stride
        mid = c_in * expansion
        self.expand = ConvBNAct(c_in, mid, 1) if expansion != 1 else None
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, depthwise=True)
        self.project = ConvBNAct(mid, c_out, 1, act=False)

    def set_active(self, c_in: int, c_out: int, kernel: int) -> None:
        if self.expand is not None:
            self.expand.conv.active_out = c_in * self.expansion
        self.depthwise.conv.active_kernel = kernel
        self.project.conv.active_out = c_out
        self.residual = self.stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class ElasticMBConvNet(nn.Module):
    """``space``: the per-stage choices (``BigNASSpace``); the network holds the largest of each."""

    def __init__(self, space, num_classes: int, in_channels: int = 3, dropout: float = 0.2,
                 zero_init_residual_bn: bool = False):
        super().__init__()
        self.space = space
        big = space.max_genotype()
        widths, depths, kernels = big["widths"], big["depths"], big["kernels"]
        self.stem = ConvBNAct(in_channels, widths[0], 3, stride=2)
        stages, c_in = [], widths[0]
        for s in range(len(EXPANSIONS)):
            units = [MBConv(c_in if u == 0 else widths[s + 1], widths[s + 1], kernels[s], STRIDES[s] if u == 0 else 1,
                            EXPANSIONS[s]) for u in range(depths[s])]
            # a unit after the first may read fewer channels than the stage's maximum: its input is sliced
            stages.append(nn.ModuleList(units))
            c_in = widths[s + 1]
        self.stages = nn.ModuleList(stages)
        self.head = ConvBNAct(c_in, widths[-1], 1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = DynamicLinear(widths[-1], num_classes)
        self._init_weights(zero_init_residual_bn)
        self.set_active_subnet(big)

    def _init_weights(self, zero_init_residual_bn: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        if zero_init_residual_bn:  # units that can be residual: all but the first of a stage
            for stage in self.stages:
                for unit in stage[1:]:
                    nn.init.zeros_(unit.project.bn.weight)

    # -- the AttentiveNAS-style API ------------------------------------------------------------
    def set_active_subnet(self, genotype: dict) -> None:
        """Run the child ``genotype`` (a canonical genotype of the space: resolution, widths, depths, kernels)."""
        self.space.check_within(genotype)
        widths, depths, kernels = genotype["widths"], genotype["depths"], genotype["kernels"]
        self.stem.conv.active_out = widths[0]
        c_in = widths[0]
        for s, stage in enumerate(self.stages):
            for u, unit in enumerate(stage):
                unit.set_active(c_in if u == 0 else widths[s + 1], widths[s + 1], kernels[s])
            c_in = widths[s + 1]
        self.head.conv.active_out = widths[-1]
        self.active_depths = list(depths)
        self.active_genotype = genotype

    def sample_max_subnet(self) -> dict:
        genotype = self.space.max_genotype()
        self.set_active_subnet(genotype)
        return genotype

    def sample_min_subnet(self) -> dict:
        genotype = self.space.min_genotype()
        self.set_active_subnet(genotype)
        return genotype

    def sample_active_subnet(self, rng: random.Random | None = None) -> dict:
        genotype = self.space.sample(rng or random.Random()).genotype
        self.set_active_subnet(genotype)
        return genotype

    def extract_subnet(self, genotype: dict | None = None) -> ElasticMBConvNet:
        """The child (the active one by default) as a standalone network holding its slice of the weights."""
        from lsnas.spaces.bignas.space import BigNASSpace

        genotype = genotype or self.active_genotype
        child = ElasticMBConvNet(BigNASSpace.single(genotype), self.classifier.out_features,
                                 self.stem.conv.in_channels, self.dropout.p)
        child.load_state_dict(slice_state(self.state_dict(), child))
        return child.to(next(self.parameters()).device)

    # -- forward -------------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage, depth in zip(self.stages, self.active_depths):
            for unit in stage[:depth]:
                x = unit(x)
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(self.forward_features(x), 1), 1)
        return self.classifier(self.dropout(x))


@torch.no_grad()
def recalibrate_bn(net: nn.Module, batches) -> None:
    """Re-estimate every BN's running statistics for the active child: reset them, then accumulate a plain
    average (momentum None) over ``batches`` (inputs) in train mode. Used before scoring a child on the
    supernet's shared weights."""
    was_training = net.training
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    try:
        for x in batches:
            net(x)
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        net.train(was_training)
