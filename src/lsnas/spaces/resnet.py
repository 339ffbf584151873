"""ResNet macro space: stem width, stride and pooling, and per stage the width, depth and block type.

Networks are timm's ``ResNet`` (``timm.models.resnet``), given per-stage blocks, depths and widths
(``channels``). ResNet-18/34/50 are points of the space and are exactly timm's networks: timm builds them
and nothing is replaced, so parameter names, counts and initialisation match ``timm.create_model``. timm's
plain 7x7 stem is 64 channels whatever ``stem_width`` says, so another stem width (or stride) replaces
the stem convolution and BN and rebuilds the stages for that input width with timm's own ``make_blocks``
(no max-pool replaces it by an identity); the network is then initialised by timm's ``init_weights``.

The genotype is::

    {"stem_width": 64, "stem_stride": 2, "stem_pool": true,
     "blocks": ["basic", ...], "depths": [2, 2, 2, 2], "widths": [64, 128, 256, 512]}

What a search varies is a setting of the space (``conf/space/resnet*.yaml``): its ``dims`` over the
``base`` genotype, as for every box space (``lsnas.spaces.box``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from timm.models.resnet import BasicBlock, Bottleneck, ResNet, make_blocks
from torch import nn

from lsnas.arch import Architecture
from lsnas.spaces.base import register_space
from lsnas.spaces.box import BoxSpace

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
RESNET18 = {"stem_width": 64, "stem_stride": 2, "stem_pool": True, "blocks": ["basic"] * 4,
            "depths": [2, 2, 2, 2], "widths": [64, 128, 256, 512]}
# the plain space=resnet: widths, depths and block types of every stage, and the stem width
DEFAULT_DIMS = {
    "stem_width": {"path": "stem_width", "range": [32, 128], "step": 8},
    **{f"w{i + 1}": {"path": f"widths.{i}", "range": [16 * 2 ** i, 128 * 2 ** i], "step": 8 * 2 ** i}
       for i in range(4)},
    **{f"d{i + 1}": {"path": f"depths.{i}", "range": [1, 6], "step": 1} for i in range(4)},
    **{f"b{i + 1}": {"path": f"blocks.{i}", "choices": ["basic", "bottleneck"]} for i in range(4)},
}


@register_space
class ResNetSpace(BoxSpace):
    name = "resnet"
    default_base, default_dims = RESNET18, DEFAULT_DIMS
    network_settings: ClassVar[tuple[str, ...]] = ("drop_rate", "drop_path_rate")

    # -- the genotype --------------------------------------------------------------------------
    def canonical_genotype(self, genotype) -> dict:
        if not isinstance(genotype, Mapping):
            raise ValueError(f"a resnet genotype is a mapping like {RESNET18}, got {genotype!r}")
        unknown, missing = set(genotype) - set(RESNET18), set(RESNET18) - set(genotype)
        if unknown or missing:
            raise ValueError(f"a resnet genotype has the keys {sorted(RESNET18)}; unknown: {sorted(unknown)}, "
                             f"missing: {sorted(missing)}")
        g = dict(genotype)
        stages = {len(g["blocks"]), len(g["depths"]), len(g["widths"])}
        if len(stages) != 1:
            raise ValueError(f"blocks, depths and widths must have one entry per stage, got {g}")
        if any(b not in BLOCKS for b in g["blocks"]):
            raise ValueError(f"resnet blocks are {sorted(BLOCKS)}, got {g['blocks']}")
        ints = [g["stem_width"], g["stem_stride"], *g["depths"], *g["widths"]]
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in ints):
            raise ValueError(f"widths, depths, stem_width and stem_stride must be positive integers, got {g}")
        if g["stem_stride"] not in (1, 2) or not isinstance(g["stem_pool"], bool):
            raise ValueError(f"stem_stride is 1 or 2 and stem_pool true or false, got {g}")
        return {"stem_width": int(g["stem_width"]), "stem_stride": int(g["stem_stride"]),
                "stem_pool": g["stem_pool"], "blocks": list(g["blocks"]), "depths": [int(d) for d in g["depths"]],
                "widths": [int(w) for w in g["widths"]]}

    # -- networks ------------------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int],
              drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> nn.Module:
        if arch.space != self.name:
            raise ValueError(f"architecture of space {arch.space!r} given to the {self.name!r} space")
        g = arch.genotype
        blocks = tuple(BLOCKS[b] for b in g["blocks"])
        net = ResNet(block=blocks, layers=g["depths"], channels=g["widths"], num_classes=num_classes,
                     in_chans=input_shape[0], drop_rate=drop_rate, drop_path_rate=drop_path_rate)
        timm_stem = (g["stem_width"], g["stem_stride"]) == (64, 2)
        if not timm_stem:
            net.conv1 = nn.Conv2d(input_shape[0], g["stem_width"], 7, stride=g["stem_stride"], padding=3, bias=False)
            net.bn1 = nn.BatchNorm2d(g["stem_width"])
            # the stages again from the new stem width, as timm's constructor makes them
            for name, layer in make_blocks(blocks, g["widths"], g["depths"], g["stem_width"],
                                           drop_path_rate=drop_path_rate, act_layer=nn.ReLU,
                                           norm_layer=nn.BatchNorm2d)[0]:
                setattr(net, name, layer)
        if not g["stem_pool"]:
            net.maxpool = nn.Identity()
        if not timm_stem:
            net.init_weights(zero_init_last=True)  # timm's initialisation, over the replaced modules too
        return net
