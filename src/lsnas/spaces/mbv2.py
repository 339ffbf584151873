"""MobileNetV2 block space of EAT-NAS (Fang et al., 2019): seven blocks between a fixed stem and head.

Each block is a conv op (``sep``: depthwise k x k + BN + act + pointwise 1x1 + BN, MobileNetV2's expansion-1
unit; ``mb3`` / ``mb6``: the inverted residual with expansion 3 / 6), a kernel (3, 5, 7), a skip (``none`` or
``identity``), a number of layers (units, 1-4) and a width factor (0.5-2.0) of MobileNetV2's base channels
[16, 24, 32, 64, 96, 160, 320], rounded to a multiple of 8 as torchvision rounds them. The first unit of a
block has the block's stride ([1, 2, 2, 2, 1, 2, 1]); the stem is a 3x3 stride-2 conv to 32 channels, the head a
1x1 conv to 1280, global pooling, dropout and a linear classifier. The genotype::

    {"activation": "relu6", "shape_skip": "none",
     "blocks": [{"op": "sep", "kernel": 3, "skip": "identity", "layers": 1, "width": 1.0}, ... 7 blocks]}

Two rules are part of the architecture, since the papers differ: ``activation`` (``relu`` as in EAT-NAS,
``relu6`` as in MobileNetV2) and ``shape_skip``, what an identity skip does on a unit whose input and output
shapes differ (the first unit of a block): ``bypass`` (EAT-NAS's official code: a 1x1 conv + BN, strided as the
unit) or ``none`` (MobileNetV2: no skip there). With relu6 / none, MobileNetV2 is a point of the space (zoo
``mobilenet_v2``) and is exactly torchvision's ``mobilenet_v2``: the same modules under the same names (its
state dict loads as is), the same parameter count and initialisation. The space's settings say which rules
and which values its sampled architectures use (``conf/space/mbv2_blocks.yaml``).

A third rule, ``implementation``, says whose code the network's details follow, where EAT-NAS's official code
(JaminFong/EAT-NAS, ``symbol_eatnas_search.py``) and torchvision differ:

==================  =================================================  ==========================================
detail              ``eatnas`` (the space's default)                    ``torchvision`` (zoo ``mobilenet_v2``)
==================  =================================================  ==========================================
block channels      ``int(base * width)``, truncated                    rounded to a multiple of 8
``sep`` unit        dw + BN + act, pw + BN + act; never a shortcut      dw + BN + act, pw + BN; the block's skip
BatchNorm eps       2e-5 (MXNet's, as the official code)                1e-5
dropout             on the head's feature map before pooling, off       in the classifier after pooling, 0.2
auxiliary head      act, 1x1 conv 128 + BN + act, 2x2 conv 768 + BN +   1x1 conv 128 + BN + act, pooling, linear
                    act, pooling, linear (after block 5, weight 0.4)
==================  =================================================  ==========================================

An architecture file without the key is ``torchvision`` (the networks lsnas built before the key existed). The
auxiliary head (``protocol.model.auxiliary``; its loss weight is ``protocol.aux_weight``, 0.4 in EAT-NAS) reads
the output of block 5; the official 2x2 convolution needs a map of at least 2x2, so a smaller one (tiny inputs)
is zero-padded to 2x2.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.spaces.base import SearchSpace, register_space

BASE_CHANNELS = (16, 24, 32, 64, 96, 160, 320)
STRIDES = (1, 2, 2, 2, 1, 2, 1)
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
AUX_AFTER_BLOCK = 5  # 1-based: the auxiliary head reads block 5's output

EXPANSION = {"sep": 1, "mb3": 3, "mb6": 6}
ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}
SHAPE_SKIPS = ("bypass", "none")
IMPLEMENTATIONS = ("eatnas", "torchvision")
BN_EPS = {"eatnas": 2e-5, "torchvision": 1e-5}
DEFAULT_DROPOUT = {"eatnas": 0.0, "torchvision": 0.2}
RULES = ("activation", "shape_skip", "implementation")
#: every value a decision may take (the genotype language); a space samples from its own choices
DECISIONS: dict[str, tuple] = {"op": ("sep", "mb3", "mb6"), "kernel": (3, 5, 7), "skip": ("none", "identity"),
                               "layers": (1, 2, 3, 4), "width": (0.5, 1.0, 1.5, 2.0)}
ORDINAL = ("kernel", "layers", "width")  # moved by steps; op and skip are categories
SCALE = ("layers", "width")              # the elastic part of EAT-NAS (architecture scale search)

MOBILENET_V2 = {"activation": "relu6", "shape_skip": "none", "implementation": "torchvision", "blocks": [
    {"op": op, "kernel": 3, "skip": "identity", "layers": n, "width": 1.0}
    for op, n in zip(["sep"] + ["mb6"] * 6, [1, 2, 3, 4, 3, 3, 1])]}


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: the nearest multiple of ``divisor``, never more than 10% below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def block_channels(genotype: dict) -> list[int]:
    """Each block's output channels: EAT-NAS truncates base x width, torchvision rounds it to a multiple of 8."""
    if genotype.get("implementation", "torchvision") == "eatnas":
        return [int(base * block["width"]) for base, block in zip(BASE_CHANNELS, genotype["blocks"])]
    return [make_divisible(base * block["width"]) for base, block in zip(BASE_CHANNELS, genotype["blocks"])]


class InvertedResidual(nn.Module):
    """One unit, laid out as torchvision's ``InvertedResidual`` (``conv`` holds the same modules) plus the
    optional ``bypass`` of a shape-changing unit."""

    def __init__(self, inp: int, out: int, stride: int, expansion: int, kernel: int, activation: type[nn.Module],
                 skip: str | None, implementation: str = "torchvision"):
        super().__init__()
        hidden = int(round(inp * expansion))
        norm = functools.partial(nn.BatchNorm2d, eps=BN_EPS[implementation])
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(Conv2dNormActivation(inp, hidden, kernel_size=1, norm_layer=norm,
                                               activation_layer=activation))
        layers.append(Conv2dNormActivation(hidden, hidden, kernel_size=kernel, stride=stride, groups=hidden,
                                           norm_layer=norm, activation_layer=activation))
        if expansion == 1 and implementation == "eatnas":
            # the official sep unit: its pointwise conv ends in BN + act, and no shortcut is ever added
            layers.append(Conv2dNormActivation(hidden, out, kernel_size=1, norm_layer=norm,
                                               activation_layer=activation))
            skip = None
        else:
            layers += [nn.Conv2d(hidden, out, 1, bias=False), norm(out)]
        self.conv = nn.Sequential(*layers)
        self.skip = skip  # None | "identity" | "bypass"
        if skip == "bypass":
            self.bypass = nn.Sequential(nn.Conv2d(inp, out, 1, stride=stride, bias=False), norm(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip == "identity":
            return x + self.conv(x)
        if self.skip == "bypass":
            return self.bypass(x) + self.conv(x)
        return self.conv(x)


class AtLeast2x2(nn.Module):
    """Zero-pads a map smaller than 2x2 to 2x2, so the official auxiliary head's 2x2 conv runs on tiny inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = max(0, 2 - x.shape[-2]), max(0, 2 - x.shape[-1])
        return nn.functional.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


class MBV2BlockNet(nn.Module):
    """Stem, the blocks' units and the head in ``features`` (as torchvision's MobileNetV2), then pooling and
    ``classifier`` (dropout, linear)."""

    def __init__(self, genotype: dict, num_classes: int, in_channels: int = 3, dropout: float | None = None,
                 auxiliary: bool = False):
        super().__init__()
        act = ACTIVATIONS[genotype["activation"]]
        implementation = genotype.get("implementation", "torchvision")
        dropout = DEFAULT_DROPOUT[implementation] if dropout is None else dropout
        norm = functools.partial(nn.BatchNorm2d, eps=BN_EPS[implementation])
        features: list[nn.Module] = [Conv2dNormActivation(in_channels, STEM_CHANNELS, stride=2, norm_layer=norm,
                                                          activation_layer=act)]
        inp = STEM_CHANNELS
        self.aux_position = 0
        for i, (block, out, stride) in enumerate(zip(genotype["blocks"], block_channels(genotype), STRIDES)):
            for unit in range(block["layers"]):
                s = stride if unit == 0 else 1
                same_shape = s == 1 and inp == out
                skip = None
                if block["skip"] == "identity":
                    skip = "identity" if same_shape else ("bypass" if genotype["shape_skip"] == "bypass" else None)
                features.append(InvertedResidual(inp, out, s, EXPANSION[block["op"]], block["kernel"], act, skip,
                                                 implementation))
                inp = out
            if i + 1 == AUX_AFTER_BLOCK:
                self.aux_position, aux_channels = len(features) - 1, inp
        features.append(Conv2dNormActivation(inp, HEAD_CHANNELS, kernel_size=1, norm_layer=norm,
                                             activation_layer=act))
        self.features = nn.Sequential(*features)
        # EAT-NAS drops elements of the head's map before pooling; torchvision drops pooled features
        self.pre_pool_dropout = nn.Dropout(p=dropout) if implementation == "eatnas" else nn.Identity()
        self.classifier = (nn.Sequential(nn.Linear(HEAD_CHANNELS, num_classes)) if implementation == "eatnas" else
                           nn.Sequential(nn.Dropout(p=dropout), nn.Linear(HEAD_CHANNELS, num_classes)))
        self.auxiliary_head = None
        if auxiliary and implementation == "eatnas":
            self.auxiliary_head = nn.Sequential(
                act(), Conv2dNormActivation(aux_channels, 128, kernel_size=1, norm_layer=norm, activation_layer=act),
                AtLeast2x2(), Conv2dNormActivation(128, 768, kernel_size=2, padding=0, norm_layer=norm,
                                                   activation_layer=act),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(768, num_classes))
        elif auxiliary:
            self.auxiliary_head = nn.Sequential(
                Conv2dNormActivation(aux_channels, 128, kernel_size=1, activation_layer=act),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))
        self.num_features = HEAD_CHANNELS
        self._init_weights()

    def _init_weights(self) -> None:  # torchvision's MobileNetV2 initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits_aux = None
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(self.pre_pool_dropout(x), (1, 1)), 1)
        return self.classifier(x), logits_aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(x)[0]


@register_space
class MBV2BlockSpace(SearchSpace):
    """The seven-block space; its settings are the rules and the values its sampled architectures use."""

    name = "mbv2_blocks"
    network_settings: ClassVar[tuple[str, ...]] = ("dropout", "auxiliary")

    def __init__(self, activation: str = "relu", shape_skip: str = "bypass", implementation: str = "eatnas",
                 choices: Mapping[str, Sequence] | None = None, **_config):
        if activation not in ACTIVATIONS or shape_skip not in SHAPE_SKIPS or implementation not in IMPLEMENTATIONS:
            raise ConfigError(f"space.activation is one of {sorted(ACTIVATIONS)}, space.shape_skip one of "
                              f"{list(SHAPE_SKIPS)} and space.implementation one of {list(IMPLEMENTATIONS)}; got "
                              f"{activation!r}, {shape_skip!r}, {implementation!r}")
        self.activation, self.shape_skip, self.implementation = activation, shape_skip, implementation
        self.choices = {k: tuple(v) for k, v in DECISIONS.items()}
        for key, values in (choices or {}).items():
            if key not in DECISIONS or not values or any(v not in DECISIONS[key] for v in values):
                raise ConfigError(f"space.choices.{key} must be a non-empty subset of {list(DECISIONS.get(key, ()))} "
                                  f"(decisions: {list(DECISIONS)}); got {values}")
            self.choices[key] = tuple(sorted(values, key=DECISIONS[key].index))

    # -- the genotype --------------------------------------------------------------------------
    def canonical_genotype(self, genotype: Any) -> dict:
        keys = {"activation", "shape_skip", "blocks"}
        if not isinstance(genotype, Mapping) or not keys <= set(genotype) <= keys | {"implementation"}:
            raise ValueError(f"an mbv2_blocks genotype is a mapping with activation, shape_skip, blocks and "
                             f"optionally implementation, like {MOBILENET_V2}; got {genotype!r}")
        implementation = genotype.get("implementation", "torchvision")  # files from before the key existed
        if (genotype["activation"] not in ACTIVATIONS or genotype["shape_skip"] not in SHAPE_SKIPS
                or implementation not in IMPLEMENTATIONS):
            raise ValueError(f"activation is one of {sorted(ACTIVATIONS)}, shape_skip one of {list(SHAPE_SKIPS)} and "
                             f"implementation one of {list(IMPLEMENTATIONS)}; got {genotype['activation']!r}, "
                             f"{genotype['shape_skip']!r}, {implementation!r}")
        blocks = genotype["blocks"]
        if not isinstance(blocks, Sequence) or len(blocks) != len(BASE_CHANNELS):
            raise ValueError(f"an mbv2_blocks genotype has {len(BASE_CHANNELS)} blocks, got {blocks!r}")
        return {"activation": genotype["activation"], "shape_skip": genotype["shape_skip"],
                "implementation": implementation,
                "blocks": [self._canonical_block(i, b) for i, b in enumerate(blocks)]}

    @staticmethod
    def _canonical_block(index: int, block: Any) -> dict:
        if not isinstance(block, Mapping) or set(block) != set(DECISIONS):
            raise ValueError(f"block {index + 1} must have the decisions {list(DECISIONS)}, got {block!r}")
        canonical = {}
        for key, values in DECISIONS.items():
            value = block[key]
            if isinstance(value, bool) or value not in values:
                raise ValueError(f"block {index + 1}: {key} is one of {list(values)}, got {value!r}")
            canonical[key] = float(value) if key == "width" else (int(value) if key in ("kernel", "layers") else value)
        return canonical

    # -- search --------------------------------------------------------------------------------
    def _architecture(self, blocks: list[dict]) -> Architecture:
        return self.architecture({"activation": self.activation, "shape_skip": self.shape_skip,
                                  "implementation": self.implementation, "blocks": blocks})

    def sample(self, rng: random.Random) -> Architecture:
        return self._architecture([{key: rng.choice(self.choices[key]) for key in DECISIONS}
                                   for _ in BASE_CHANNELS])

    def moves(self, value: Any, key: str, step: int | None = None) -> list:
        """The values ``key`` may move to from ``value``: any other choice, or for an ordinal decision with
        ``step``, those at most ``step`` places away."""
        values = self.choices[key]
        others = [v for v in values if v != value]
        if step is not None and key in ORDINAL and value in values:
            others = [v for v in others if abs(values.index(v) - values.index(value)) <= step]
        return others

    def mutate(self, arch: Architecture, rng: random.Random, decisions: Sequence[str] = tuple(DECISIONS),
               step: int | None = None) -> Architecture:
        """One decision of one block moved (``decisions``: which kinds may move; ``step``: how far, in places,
        an ordinal one may). The rules (activation, shape_skip, implementation) are the space's."""
        blocks = [dict(b) for b in arch.genotype["blocks"]]
        options = [(i, key) for i, block in enumerate(blocks) for key in decisions
                   if self.moves(block[key], key, step)]
        if not options:
            raise ConfigError(f"no decision among {list(decisions)} can move in this space (space.choices)")
        i, key = rng.choice(options)
        blocks[i][key] = rng.choice(self.moves(blocks[i][key], key, step))
        return self._architecture(blocks)

    def encode(self, arch: Architecture) -> np.ndarray:
        """Per block: the op one-hot, then kernel, skip, layers and width each in [0, 1] (7 numbers a block)."""
        vector = []
        for block in arch.genotype["blocks"]:
            vector += [float(block["op"] == op) for op in DECISIONS["op"]]
            vector += [DECISIONS[key].index(block[key]) / (len(DECISIONS[key]) - 1)
                       for key in ("kernel", "skip", "layers", "width")]
        return np.array(vector, dtype=np.float64)

    def decode(self, vector: np.ndarray) -> Architecture:
        vector = np.asarray(vector, dtype=np.float64).reshape(len(BASE_CHANNELS), -1)
        blocks = []
        for row in vector:
            block = {"op": self._nearest("op", DECISIONS["op"][int(np.argmax(row[:3]))])}
            for key, x in zip(("kernel", "skip", "layers", "width"), row[3:]):
                values = DECISIONS[key]
                block[key] = self._nearest(key, values[int(round(float(np.clip(x, 0, 1)) * (len(values) - 1)))])
            blocks.append(block)
        return self._architecture(blocks)

    def _nearest(self, key: str, value: Any) -> Any:
        """``value`` if the space allows it, else the allowed value nearest to it in the language's order."""
        if value in self.choices[key]:
            return value
        order = DECISIONS[key]
        return min(self.choices[key], key=lambda v: abs(order.index(v) - order.index(value)))

    # -- networks ------------------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int, input_shape: tuple[int, int, int],
              dropout: float | None = None, auxiliary: bool = False) -> nn.Module:
        """``dropout`` None: the implementation's default (EAT-NAS: off; torchvision: 0.2)."""
        if arch.space != self.name:
            raise ValueError(f"architecture of space {arch.space!r} given to the {self.name!r} space")
        return MBV2BlockNet(arch.genotype, num_classes, in_channels=input_shape[0], dropout=dropout,
                            auxiliary=auxiliary)
