"""The supernet's forward computed the straightforward way, as the official model_search.py does.

Every edge runs all 8 ops on its own (each conv op with its own ReLU, each pool with its own BN,
'none' included); PC-DARTS slices, bypasses and shuffles per edge. It reuses a ``DartsSupernet``'s
parameters, so it is the yardstick for the shared-work forward: the tests check both give the
same numbers, the benchmark times both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lsnas.spaces.darts.genotype import CELL_TYPES, NUM_NODES
from lsnas.spaces.darts.ops import PRIMITIVES
from lsnas.spaces.darts.supernet import DartsSupernet, EdgeOps


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS's shuffle as its model_search.py writes it (the result is NCHW whatever x's layout)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def official_op(op: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """A conv op layer by layer, each convolution as torch's own (a strided dilated conv as the official code
    runs it, not as lsnas's DilatedConv2d computes it)."""
    for layer in op:
        x = nn.Conv2d.forward(layer, x) if isinstance(layer, nn.Conv2d) else layer(x)
    return x


def reference_mixed_op(edge: EdgeOps, x: torch.Tensor, w: torch.Tensor, k: int) -> torch.Tensor:
    c = x.shape[1] // k
    part = x[:, :c]
    outs = []
    for name in PRIMITIVES:
        if name == "none":
            outs.append((part if edge.stride == 1 else part[:, :, ::2, ::2]).mul(0.0))
        elif name == "max_pool_3x3":
            outs.append(F.batch_norm(F.max_pool2d(part, 3, edge.stride, 1), None, None, training=True))
        elif name == "avg_pool_3x3":
            outs.append(F.batch_norm(F.avg_pool2d(part, 3, edge.stride, 1, count_include_pad=False), None, None,
                                     training=True))
        elif name == "skip_connect":
            outs.append(part if edge.stride == 1 else edge.reduce(part))
        else:
            outs.append(official_op(edge.convs[name], part))  # the full op, its own ReLU included
    y = sum(wk * o for wk, o in zip(w, outs))
    if k > 1:
        rest = x[:, c:] if edge.stride == 1 else F.max_pool2d(x[:, c:], 2, 2)
        y = channel_shuffle(torch.cat([y, rest], 1), k)
    return y


def reference_forward(net: DartsSupernet, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` with softmax(alpha) weights, computed edge by edge (either stem)."""
    weights = {kind: F.softmax(a, -1) for kind, a in net.alphas().items()}
    scales = net.edge_scales()
    if net.network == "cifar":
        s0 = s1 = net.stem(x)
    else:  # model_search_imagenet.py
        s0 = net.stem0(x)
        s1 = net.stem1(s0)
    for cell in net.cells:
        kind = CELL_TYPES[cell.reduction]
        states = [cell.preprocess0(s0), cell.preprocess1(s1)]
        e = 0
        for _ in range(NUM_NODES):
            terms = []
            for h in states:
                y = reference_mixed_op(cell.edges[e], h, weights[kind][e], cell.partial_k)
                terms.append(y if scales is None else scales[kind][e] * y)
                e += 1
            states.append(sum(terms))
        s0, s1 = s1, torch.cat(states[-NUM_NODES:], 1)
    return net.classifier(net.global_pooling(s1).flatten(1))
