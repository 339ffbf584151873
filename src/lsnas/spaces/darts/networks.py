"""The DARTS evaluation networks: CIFAR (stem 3C) and ImageNet mobile setting (3 stride-2 stem convs).

Both follow the official ``NetworkCIFAR`` / ``NetworkImageNet`` module for module, so their
parameter counts are the published ones. ``forward`` returns logits; ``forward_with_aux`` also
returns the auxiliary head's logits (None when it is off or in eval mode).
"""

from __future__ import annotations

import torch
from torch import nn

from lsnas.spaces.darts.cells import Cell


class AuxiliaryHeadCIFAR(nn.Module):
    """Auxiliary classifier on the 8x8 maps after the second reduction (CIFAR-size inputs)."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),  # 8x8 -> 2x2
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class AuxiliaryHeadImageNet(nn.Module):
    """Auxiliary classifier on the 7x7 maps after the second reduction (224px inputs).

    The official code has no BN after the 768-channel conv (a typo kept for its published
    results); we keep it out too.
    """

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=2, padding=0, count_include_pad=False),  # 7x7 -> 2x2
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def is_reduction(i: int, layers: int) -> bool:
    """DARTS places its two reduction cells at 1/3 and 2/3 of the depth."""
    return i in (layers // 3, 2 * layers // 3)


def stack_cells(make_cell, layers: int, init_channels: int, c_stem: int, reduction_prev: bool):
    """Build ``layers`` cells, doubling the channels at each reduction; returns the cells and each
    cell's output channels. ``make_cell(c_prev_prev, c_prev, c, reduction, reduction_prev)``."""
    cells, out_channels = nn.ModuleList(), []
    c_prev_prev, c_prev, c_curr = c_stem, c_stem, init_channels
    for i in range(layers):
        reduction = is_reduction(i, layers)
        if reduction:
            c_curr *= 2
        cell = make_cell(c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
        cells.append(cell)
        reduction_prev = reduction
        c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        out_channels.append(c_prev)
    return cells, out_channels


def imagenet_stems(in_channels: int, c: int) -> tuple[nn.Sequential, nn.Sequential]:
    """The mobile-setting stems: two stride-2 convs (to C), then a third (stem1); 1/8 resolution."""
    stem0 = nn.Sequential(
        nn.Conv2d(in_channels, c // 2, kernel_size=3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c),
    )
    stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
                          nn.BatchNorm2d(c))
    return stem0, stem1


class _DartsNetwork(nn.Module):
    """Stem, a stack of cells with reductions at 1/3 and 2/3 depth, global pool, classifier."""

    aux_head_cls: type[nn.Module]
    aux_min_size: int  # smallest map the auxiliary head accepts

    def __init__(self, genotype: dict, init_channels: int, num_classes: int, layers: int, auxiliary: bool,
                 c_stem: int, reduction_prev: bool):
        super().__init__()
        self.layers = layers
        self.auxiliary = auxiliary
        # set per epoch by the training schedule; a copy as a tensor for torch.compile (drop_path_prob)
        self.register_buffer("drop_path_tensor", torch.zeros(()), persistent=False)
        self.drop_path_prob = 0.0
        self.aux_position = 2 * layers // 3
        self.cells, channels = stack_cells(lambda *args: Cell(genotype, *args), layers, init_channels, c_stem,
                                           reduction_prev)
        self.auxiliary_head = self.aux_head_cls(channels[self.aux_position], num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels[-1], num_classes)
        self.num_features = channels[-1]

    @property
    def drop_path_prob(self) -> float:
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, p: float) -> None:
        # Under torch.compile the cells read the tensor: a Python float is a constant of the compiled graph, and a
        # new value every epoch recompiled it each epoch until dynamo's recompilation limit (8) left it eager.
        self._drop_path_prob = float(p)
        self.drop_path_on = self._drop_path_prob > 0.0
        with torch.no_grad():
            self.drop_path_tensor.fill_(self._drop_path_prob)

    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0, s1 = self.stem(x)
        logits_aux = None
        if torch.compiler.is_compiling():  # a guard on a bool: a graph with drop-path and one without, not one a value
            drop_prob = self.drop_path_tensor if self.drop_path_on else 0.0
        else:
            drop_prob = self._drop_path_prob
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop_prob)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, logits_aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(x)[0]


class DartsNetworkCIFAR(_DartsNetwork):
    aux_head_cls = AuxiliaryHeadCIFAR
    aux_min_size = 8

    def __init__(self, genotype: dict, init_channels: int, num_classes: int, layers: int,
                 auxiliary: bool = False, in_channels: int = 3, stem_multiplier: int = 3):
        c_stem = stem_multiplier * init_channels
        super().__init__(genotype, init_channels, num_classes, layers, auxiliary, c_stem, reduction_prev=False)
        self.stem_conv = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                       nn.BatchNorm2d(c_stem))

    def stem(self, x):
        s = self.stem_conv(x)
        return s, s

    @staticmethod
    def feature_size_at_aux(resolution: int) -> int:
        return resolution // 4


class DartsNetworkImageNet(_DartsNetwork):
    aux_head_cls = AuxiliaryHeadImageNet
    aux_min_size = 7

    def __init__(self, genotype: dict, init_channels: int, num_classes: int, layers: int,
                 auxiliary: bool = False, in_channels: int = 3):
        c = init_channels
        # The stems already halve the resolution at stem1, so cell 0 sees reduction_prev=True.
        super().__init__(genotype, c, num_classes, layers, auxiliary, c, reduction_prev=True)
        self.stem0, self.stem1 = imagenet_stems(in_channels, c)

    def stem(self, x):
        s0 = self.stem0(x)
        return s0, self.stem1(s0)

    @staticmethod
    def feature_size_at_aux(resolution: int) -> int:
        return resolution // 32


NETWORKS: dict[str, type[_DartsNetwork]] = {"cifar": DartsNetworkCIFAR, "imagenet": DartsNetworkImageNet}
