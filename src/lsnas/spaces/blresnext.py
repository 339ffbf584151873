"""Big-Little-Net ResNeXt (Chen et al., ICLR 2019) with a uniform width multiplier: the spline paper's space.

A big-little module runs two branches on the same input: the big one (``blocks - 1`` bottlenecks, the first
at stride 2) at half the resolution, the little one (``max(1, blocks // beta - 1)`` bottlenecks of 1/alpha
the channels and alpha times the base width per group) at full resolution. The big output is upsampled
(nearest) to the little one's size, the two are added, and one fusion bottleneck follows. Stages 1-3 are
big-little modules (the third keeps its resolution), stage 4 a plain ResNeXt stage. The stem has a big
(stride-2 conv) and a little (three convs) path too, and no max-pool.

With ``phi = 1`` a network is the official IBM/BigLittleNet ``blresnext_model(depth, basewidth,
cardinality, alpha, beta)``, module for module: the same parameter names, shapes and count, the same
initialisation given the same seed (Kaiming-normal fan-out convs, unit BN, the last BN of every
bottleneck zeroed, PyTorch's default classifier), and the same logits given the same weights. ``phi``
multiplies the stage widths 64/128/256/512 and the stem's 64 (which is the first stage's input width),
rounded to integers; docs/spline_search.md has the correspondence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsnas.arch import Architecture
from lsnas.spaces.base import register_space
from lsnas.spaces.box import BoxSpace

DEPTHS = {50: (3, 4, 6, 3), 101: (4, 8, 18, 3), 152: (5, 12, 30, 3)}
BASE_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4


class Bottleneck(nn.Module):
    """ResNeXt bottleneck whose ``planes`` is its output width; the grouped 3x3 carries the stride."""

    def __init__(self, inplanes: int, planes: int, basewidth: int, cardinality: int, stride: int = 1,
                 downsample: nn.Module | None = None, last_relu: bool = True):
        super().__init__()
        width = (int(math.floor(planes * basewidth / 64.0)) // EXPANSION) * cardinality
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.last_relu = last_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out) if self.last_relu else out


def stage(inplanes: int, planes: int, blocks: int, basewidth: int, cardinality: int, stride: int = 1,
          last_relu: bool = True) -> nn.Sequential:
    """``blocks`` bottlenecks; the first one's shortcut average-pools when striding and projects when the
    width changes (an average pool alone when only the resolution does)."""
    shortcut: list[nn.Module] = []
    if stride != 1:
        shortcut.append(nn.AvgPool2d(3, stride=2, padding=1))
    if inplanes != planes:
        shortcut += [nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes)]
    layers = [Bottleneck(inplanes, planes, basewidth, cardinality, stride,
                         nn.Sequential(*shortcut) if shortcut else None)]
    for i in range(1, blocks):
        layers.append(Bottleneck(planes, planes, basewidth, cardinality,
                                 last_relu=last_relu if i == blocks - 1 else True))
    return nn.Sequential(*layers)


class BigLittleModule(nn.Module):
    def __init__(self, inplanes: int, planes: int, blocks: int, basewidth: int, cardinality: int, alpha: int,
                 beta: int, stride: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.big = stage(inplanes, planes, blocks - 1, basewidth, cardinality, stride=2, last_relu=False)
        self.little = stage(inplanes, planes // alpha, max(1, blocks // beta - 1), basewidth * alpha,
                            cardinality // alpha)
        self.little_e = nn.Sequential(nn.Conv2d(planes // alpha, planes, 1, bias=False), nn.BatchNorm2d(planes))
        self.fusion = stage(planes, planes, 1, basewidth, cardinality, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        little = self.little_e(self.little(x))
        big = F.interpolate(self.big(x), size=little.shape[2:], mode="nearest")
        return self.fusion(self.relu(big + little))


class BLResNeXt(nn.Module):
    def __init__(self, depth: int = 50, basewidth: int = 4, cardinality: int = 32, alpha: int = 2, beta: int = 4,
                 phi: float = 1.0, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        layers = DEPTHS[depth]
        c = [int(round(w * phi)) for w in BASE_WIDTHS]
        stem, little = c[0], c[0] // alpha
        self.conv1 = nn.Conv2d(in_chans, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.b_conv0 = nn.Conv2d(stem, stem, 3, stride=2, padding=1, bias=False)
        self.bn_b0 = nn.BatchNorm2d(stem)
        self.l_conv0 = nn.Conv2d(stem, little, 3, padding=1, bias=False)
        self.bn_l0 = nn.BatchNorm2d(little)
        self.l_conv1 = nn.Conv2d(little, little, 3, stride=2, padding=1, bias=False)
        self.bn_l1 = nn.BatchNorm2d(little)
        self.l_conv2 = nn.Conv2d(little, stem, 1, bias=False)
        self.bn_l2 = nn.BatchNorm2d(stem)
        self.bl_init = nn.Conv2d(stem, stem, 1, bias=False)
        self.bn_bl_init = nn.BatchNorm2d(stem)
        out = [w * EXPANSION for w in c]
        self.layer1 = BigLittleModule(stem, out[0], layers[0], basewidth, cardinality, alpha, beta, stride=2)
        self.layer2 = BigLittleModule(out[0], out[1], layers[1], basewidth, cardinality, alpha, beta, stride=2)
        self.layer3 = BigLittleModule(out[1], out[2], layers[2], basewidth, cardinality, alpha, beta, stride=1)
        self.layer4 = stage(out[2], out[3], layers[3], basewidth, cardinality, stride=2)
        self.gappool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(out[3], num_classes)  # keeps PyTorch's default initialisation, as the official code
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        big = self.bn_b0(self.b_conv0(x))
        little = self.relu(self.bn_l0(self.l_conv0(x)))
        little = self.relu(self.bn_l1(self.l_conv1(little)))
        little = self.bn_l2(self.l_conv2(little))
        x = self.relu(big + little)
        x = self.relu(self.bn_bl_init(self.bl_init(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.gappool(x), 1))


def little_blocks(depth: int, beta: int) -> tuple[int, ...]:
    """The little branch's bottleneck count in each big-little stage: beta's only effect on the network."""
    return tuple(max(1, blocks // beta - 1) for blocks in DEPTHS[depth][:3])


def canonical_beta(depth: int, beta: int) -> int:
    """The smallest beta that builds the same network: at depth 50, beta 3..8 (and beyond) all give one little
    block per stage, so they are one architecture (written beta=3), with one digest."""
    effective = little_blocks(depth, beta)
    return next(b for b in range(1, beta + 1) if little_blocks(depth, b) == effective)


GENOTYPE_KEYS = ("depth", "basewidth", "cardinality", "alpha", "beta", "phi")
BL50_A2_B4 = {"depth": 50, "basewidth": 4, "cardinality": 32, "alpha": 2, "beta": 4, "phi": 1.0}
SPLINE_DIMS = {"alpha": {"path": "alpha", "range": [2, 8]}, "beta": {"path": "beta", "range": [2, 8]},
               "phi": {"path": "phi", "range": [1.0, 2.0], "step": 0.1}}


@register_space
class BLResNeXtSpace(BoxSpace):
    """Genotype ``{depth, basewidth, cardinality, alpha, beta, phi}``; the searched dims are a setting, by
    default the spline paper's: alpha and beta in 2..8, phi in 1.0..2.0 by 0.1 (539 points)."""

    name = "blresnext"
    default_base, default_dims = BL50_A2_B4, SPLINE_DIMS
    network_settings: ClassVar[tuple[str, ...]] = ()

    def canonical_genotype(self, genotype) -> dict:
        if not isinstance(genotype, Mapping) or set(genotype) != set(GENOTYPE_KEYS):
            raise ValueError(f"a blresnext genotype has exactly the keys {list(GENOTYPE_KEYS)}, got {genotype!r}")
        g = {k: genotype[k] for k in GENOTYPE_KEYS}
        if g["depth"] not in DEPTHS:
            raise ValueError(f"blresnext depth is one of {sorted(DEPTHS)}, got {g['depth']}")
        ints = ("basewidth", "cardinality", "alpha", "beta")
        if not all(isinstance(g[k], (int, np.integer)) and not isinstance(g[k], bool) and g[k] >= 1 for k in ints):
            raise ValueError(f"basewidth, cardinality, alpha and beta are positive integers, got {g}")
        if g["cardinality"] // g["alpha"] < 1:
            raise ValueError(f"alpha={g['alpha']} leaves the little branch no group of cardinality="
                             f"{g['cardinality']} (cardinality // alpha; the official code floors it)")
        if not (isinstance(g["phi"], (int, float)) and g["phi"] > 0):
            raise ValueError(f"phi is a positive width multiplier, got {g['phi']!r}")
        canonical = {**{k: int(g[k]) for k in ("depth", *ints)}, "phi": round(float(g["phi"]), 6)}
        canonical["beta"] = canonical_beta(canonical["depth"], canonical["beta"])
        return canonical

    def build(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
        if arch.space != self.name:
            raise ValueError(f"architecture of space {arch.space!r} given to the {self.name!r} space")
        return BLResNeXt(**arch.genotype, num_classes=num_classes, in_chans=input_shape[0])
