"""The DARTS one-shot supernet (the official search network), shared by DARTS, PC-DARTS and GDAS.

Every edge of a cell mixes the 8 operations; BN has no affine parameters and pooling is followed
by a non-affine BN, as in the official ``model_search.py``. Three variants of the same mathematics:

- DARTS: ``sum_k w_k * op_k(x)`` on every edge;
- PC-DARTS: the mix runs on the first 1/K of the channels, the rest bypass it (max-pooled on
  reduction edges), then a channel shuffle; edges into a node are weighted by softmax(beta);
- GDAS: hard one-hot weights; only the sampled op is computed.

Work that is the same for every edge reading a state is done once per state: the ReLU that
starts every conv op (and factorized reduce), the phase split of that ReLU for the dilated convs
computed by phases (``ops.dilated_conv2d``), pooling + non-affine BN (parameter-free, so equal
across edges in training mode), the partial-channel slices. 'none' contributes exactly zero and
is skipped. The sums run in the official order, so results match the straightforward
per-edge computation (tests/spaces/test_darts_supernet.py). An NHWC input stays NHWC through every
cell, PC-DARTS's channel shuffle included.

With ``fuse_edges`` (PC-DARTS's default; GDAS's one-op edges never fuse) all the edges leaving one state are
computed together: each conv op of those E edges is one chain of grouped convolutions over E x C
channels (the edges' own weights concatenated, so parameters, checkpoints and gradients are the
per-edge ones), each BN one batch norm over E x C channels whose running statistics are written
back to the edges' own buffers, and the weighted mix and the edge scales run on all E edges at once.
PC-DARTS's bypass and channel shuffle, the same for every edge into a node, are then assembled once per
node (``SearchCell._with_bypass``). A PC-DARTS step makes ~2.6x fewer convolution calls (531 instead of 1,395);
on CPU (2026-12-06) it is ~1.35x faster for PC-DARTS at the same memory, and 3-5% faster for DARTS at 13-36% more
memory (the E-fold copies of a state's ReLU and shared ops kept for the backward), see docs/benchmarks.md.
"""

from __future__ import annotations

from itertools import islice

import torch
from torch import nn
from torch.nn import functional as F

from lsnas.errors import ConfigError
from lsnas.spaces.darts.genotype import CELL_TYPES, NUM_EDGES, NUM_NODES
from lsnas.spaces.darts.networks import imagenet_stems, stack_cells
from lsnas.spaces.darts.ops import (
    PRIMITIVES,
    BatchNorm2d,
    DilatedConv2d,
    FactorizedReduce,
    ReLUConvBN,
    bn_in_nchw,
    dilated_conv2d,
    make_op,
    plus,
    plus_product,
    split_phases,
)

CONV_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
POOL_OPS = ("max_pool_3x3", "avg_pool_3x3")
_INDEX = {name: k for k, name in enumerate(PRIMITIVES)}


def repeat_channels(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x.repeat(1, n, 1, 1)`` in x's own layout (one copy, NHWC stays NHWC)."""
    if x.is_contiguous() or x.stride(1) != 1:  # not NHWC (a slice of an NHWC tensor counts)
        return x.repeat(1, n, 1, 1)
    return x.permute(0, 2, 3, 1).repeat(1, 1, 1, n).permute(0, 3, 1, 2)


def interleave_groups(first: torch.Tensor, rest: torch.Tensor, k: int) -> torch.Tensor:
    """``F.channel_shuffle(torch.cat([first, rest], 1), k)`` as one copy in ``first``'s layout (NHWC stays NHWC):
    channel j of the i-th group of ``first.shape[1]`` channels goes to j * k + i (a cat then a shuffle took
    1.2-1.8x longer, and torch's shuffle of an NHWC tensor copies with k-float inner runs)."""
    groups = [first, *rest.split(first.shape[1], dim=1)]
    if first.stride(1) == 1 and first.shape[1] > 1:  # channels-last: stack in (B, H, W, C) order
        return torch.stack([g.permute(0, 2, 3, 1) for g in groups], dim=4).flatten(3).permute(0, 3, 1, 2)
    return torch.stack(groups, dim=2).flatten(1, 2)


def parallel_batch_norm(bns: list[nn.BatchNorm2d], x: torch.Tensor) -> torch.Tensor:
    """The BNs of E parallel edges on their outputs side by side (B, E*C, H, W): one batch norm, the same
    numbers per channel; in training the batch statistics update each edge's own running buffers."""
    m = bns[0]
    if m.training and m.track_running_stats and m.momentum is None:
        raise ValueError("fused edges need BN with a momentum (setting: method.module.fuse_edges=false)")
    stats = m.training or not m.track_running_stats
    means = torch.cat([b.running_mean for b in bns]) if m.track_running_stats else None
    variances = torch.cat([b.running_var for b in bns]) if m.track_running_stats else None
    weight = torch.cat([b.weight for b in bns]) if m.affine else None
    bias = torch.cat([b.bias for b in bns]) if m.affine else None
    nchw = bn_in_nchw(x)  # as BatchNorm2d does
    y = F.batch_norm(x.contiguous() if nchw else x, means, variances, weight, bias, stats, m.momentum or 0.0, m.eps)
    if m.training and m.track_running_stats:
        with torch.no_grad():
            c = m.num_features
            torch._foreach_copy_([b.running_mean for b in bns], list(means.split(c)))
            torch._foreach_copy_([b.running_var for b in bns], list(variances.split(c)))
            torch._foreach_add_([b.num_batches_tracked for b in bns], 1)
    return y.contiguous(memory_format=torch.channels_last) if nchw else y


def parallel_sequential(stacks: list[nn.Sequential], x: torch.Tensor, start: int = 0) -> torch.Tensor:
    """E modules of the same structure (ReLU / Conv2d / BN layers), each on its own C channels of ``x``
    (B, E*C, H, W), as one chain: every conv a grouped conv with the edges' weights concatenated."""
    e = len(stacks)
    for layers in zip(*(islice(stack, start, None) for stack in stacks)):
        m = layers[0]
        if isinstance(m, nn.ReLU):
            x = F.relu(x)
        elif isinstance(m, nn.Conv2d):
            weight = torch.cat([layer.weight for layer in layers])
            x = dilated_conv2d(x, weight, None, m.stride, m.padding, m.dilation, m.groups * e)
        elif isinstance(m, nn.BatchNorm2d):
            x = parallel_batch_norm(list(layers), x)
        else:
            raise TypeError(f"cannot fuse {type(m).__name__} across edges (setting: method.module.fuse_edges=false)")
    return x


class EdgeOps(nn.Module):
    """The parametric ops of one edge (conv ops; factorized reduce on strided edges)."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.convs = nn.ModuleDict({name: make_op(name, channels, stride, affine=False) for name in CONV_OPS})
        self.reduce = FactorizedReduce(channels, channels, affine=False) if stride == 2 else None

    def conv(self, name: str, state: _InputState) -> torch.Tensor:
        layers = self.convs[name]
        first = layers[1]  # its leading ReLU was applied once, shared
        relu = state.get("relu")
        if isinstance(first, DilatedConv2d) and first.by_phases(relu):  # the phases shared too
            y = first(relu, state.get(("phases", first.dilation)))
        else:
            y = first(relu)
        for m in islice(layers, 2, None):
            y = m(y)
        return y


class _InputState:
    """One cell state as read by its outgoing edges; shared pieces are computed on first use."""

    def __init__(self, cell: SearchCell, x: torch.Tensor, index: int, stride: int):
        self.cell, self.index, self.stride = cell, index, stride
        c_part = x.shape[1] // cell.partial_k
        # one split, not two slices: its backward writes one gradient (each slice's zero-filled a whole one)
        self.part, self.rest = (x, None) if cell.partial_k == 1 else x.split([c_part, x.shape[1] - c_part], dim=1)
        self._cache: dict[str | tuple, torch.Tensor] = {}

    def get(self, name: str | tuple) -> torch.Tensor:
        if name not in self._cache:
            self._cache[name] = self._compute(name)
        return self._cache[name]

    def _compute(self, name: str | tuple) -> torch.Tensor:
        if name == "relu":
            return F.relu(self.part)
        if isinstance(name, tuple):  # ("phases", dilation): of the ReLU, for the dilated convs that take them
            return split_phases(self.get("relu"), name[1])
        if name in POOL_OPS:
            pool = (F.max_pool2d(self.part, 3, self.stride, 1) if name == "max_pool_3x3"
                    else F.avg_pool2d(self.part, 3, self.stride, 1, count_include_pad=False))
            return self.cell.pool_bn[f"{name}_{self.index}"](pool)
        if name == "subsampled":  # the pixels of the ReLU that the strided edges' factorized reduces read
            return FactorizedReduce.subsample(self.get("relu"))
        if name == "bypass":  # PC-DARTS: the channels that skip the mixed op
            return self.rest if self.stride == 1 else F.max_pool2d(self.rest, 2, 2)
        raise KeyError(name)


class SearchCell(nn.Module):
    def __init__(self, c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool,
                 partial_k: int = 1, fuse_edges: bool = False):
        super().__init__()
        self.fuse_edges = fuse_edges
        if c % partial_k:
            raise ConfigError(f"partial channels: {c} channels do not split into K={partial_k} parts "
                             "(setting: method.partial_channels)")
        self.reduction, self.partial_k = reduction, partial_k
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        c_part = c // partial_k
        self.edges = nn.ModuleList(EdgeOps(c_part, self.stride_from(j))
                                   for i in range(NUM_NODES) for j in range(i + 2))
        # One non-affine BN per (pool op, input state): equal to the official per-edge BNs, whose
        # inputs (and so batch statistics and running estimates) are identical.
        self.pool_bn = nn.ModuleDict({f"{name}_{j}": BatchNorm2d(c_part, affine=False)
                                      for name in POOL_OPS for j in range(NUM_NODES + 1)})
        self.multiplier = NUM_NODES
        self._index_cache: dict[tuple, torch.Tensor] = {}

    def stride_from(self, j: int) -> int:
        return 2 if self.reduction and j < 2 else 1

    def _mixed(self, edge: EdgeOps, state: _InputState, w: torch.Tensor, sampled: int | None) -> torch.Tensor:
        if sampled is not None:  # GDAS: one op computed; the other weights are 0 but carry gradient
            y = self._op(edge, state, PRIMITIVES[sampled], w) * w[sampled]
            y = y + (w.sum() - w[sampled])
        else:
            y = None
            for name in PRIMITIVES[1:]:  # official order; 'none' adds exactly zero
                y = plus_product(y, w[_INDEX[name]], self._op(edge, state, name, w))
        if self.partial_k > 1:
            # torch's shuffle keeps NHWC NHWC (a view/transpose/reshape would make every later cell NCHW)
            y = F.channel_shuffle(torch.cat([y, state.get("bypass")], dim=1), self.partial_k)
        return y

    def _op(self, edge: EdgeOps, state: _InputState, name: str, w: torch.Tensor) -> torch.Tensor:
        if name in CONV_OPS:
            return edge.conv(name, state)
        if name in POOL_OPS:
            return state.get(name)
        if name == "skip_connect":
            if edge.stride == 1:
                return state.part
            relu = state.get("relu")
            if FactorizedReduce.by_subsampling(relu):
                return edge.reduce.forward_subsampled(*state.get("subsampled"))
            return edge.reduce.forward_relu_applied(relu)
        # 'none' (only reached when GDAS samples it): zeros of the edge's output shape
        ref = state.part if edge.stride == 1 else state.part[:, :, ::2, ::2]
        return ref.mul(0.0)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                edge_scales: torch.Tensor | None = None, sampled: list[int] | None = None) -> torch.Tensor:
        if self.fuse_edges and sampled is None:
            return self._forward_fused(s0, s1, weights, edge_scales)
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        inputs = [_InputState(self, s, j, self.stride_from(j)) for j, s in enumerate(states)]
        e = 0
        for i in range(NUM_NODES):
            node = None
            for j in range(i + 2):
                y = self._mixed(self.edges[e], inputs[j], weights[e], None if sampled is None else sampled[e])
                node = plus(node, y) if edge_scales is None else plus_product(node, edge_scales[e], y)
                e += 1
            states.append(node)
            inputs.append(_InputState(self, node, i + 2, 1))
        return torch.cat(states[-self.multiplier:], dim=1)

    # -- all edges leaving a state at once ----------------------------------------------------
    def _forward_fused(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                       edge_scales: torch.Tensor | None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        inputs: list[_InputState] = []
        first_edge = [i * (i + 3) // 2 for i in range(NUM_NODES)]  # edge index of (node i, state 0)
        out: dict[int, torch.Tensor] = {}

        def leave(j: int) -> None:  # the edges out of state j: into nodes max(0, j - 1) .. NUM_NODES - 1
            edges = [first_edge[i] + j for i in range(max(0, j - 1), NUM_NODES)]
            inputs.append(_InputState(self, states[j], j, self.stride_from(j)))
            ys = self._edges_from(inputs[j], edges, weights, edge_scales)
            out.update(zip(edges, ys.unbind(1)))

        leave(0)
        leave(1)
        for i in range(NUM_NODES):
            node = None
            for j in range(i + 2):  # the official order of the sum
                node = plus(node, out.pop(first_edge[i] + j))
            if self.partial_k > 1:
                node = self._with_bypass(node, inputs, first_edge[i], edge_scales)
            states.append(node)
            if i + 1 < NUM_NODES:
                leave(i + 2)
        return torch.cat(states[-self.multiplier:], dim=1)

    def _with_bypass(self, mixed: torch.Tensor, inputs: list[_InputState], first: int,
                     edge_scales: torch.Tensor | None) -> torch.Tensor:
        """PC-DARTS's node from the sum of its edges' (scaled) mixed ops: ``sum_j s_j * shuffle(cat([m_j, b_j]))``
        is ``shuffle(cat([sum_j s_j * m_j, sum_j s_j * b_j]))``, the same products summed in the same order, with
        one concatenation and shuffle per node instead of one per edge, and the edge scale multiplying only the
        mixed 1/K of the channels per edge, not all of them."""
        bypass = None
        for j, state in enumerate(inputs):
            rest = state.get("bypass")
            bypass = plus(bypass, rest) if edge_scales is None else plus_product(bypass, edge_scales[first + j], rest)
        return interleave_groups(mixed, bypass, self.partial_k)

    def _edges_from(self, state: _InputState, edges: list[int], weights: torch.Tensor,
                    edge_scales: torch.Tensor | None) -> torch.Tensor:
        """The mixed ops of ``edges`` (all reading ``state``), stacked: (B, E, C, H, W)."""
        n = len(edges)
        index = self._edge_index(edges, weights.device)
        relu = state.get("relu")
        rows = _EdgeRows(relu, n, state.get(POOL_OPS[0]))
        # per op but 'none' (it adds exactly zero), its E edges' weights as rows: w[k - 1] is op k's
        w = rows.weights(weights.index_select(0, index)[:, 1:].t())
        side_by_side = repeat_channels(relu, n)  # (B, E*C, H, W): edge e reads channels e*C .. (e+1)*C
        y = None
        for name in PRIMITIVES[1:]:  # official order; 'none' adds exactly zero
            if name in CONV_OPS:
                convs = [self.edges[e].convs[name] for e in edges]
                op = rows.stacked(parallel_sequential(convs, side_by_side, start=1))
            elif name in POOL_OPS:
                op = rows.shared(state.get(name))
            elif state.stride == 1:  # skip_connect
                op = rows.shared(state.part)
            else:
                op = rows.stacked(self._reduces(state, [self.edges[e].reduce for e in edges]))
            y = plus_product(y, w[_INDEX[name] - 1], op)
        if edge_scales is not None:  # PC-DARTS: on the mixed channels; the bypass is scaled per node (_with_bypass)
            y = rows.weights(edge_scales.index_select(0, index).unsqueeze(0))[0] * y
        return rows.unflatten(y)

    @staticmethod
    def _reduces(state: _InputState, reduces: list[FactorizedReduce]) -> torch.Tensor:
        """The factorized reduces of E strided edges side by side (B, E*C, H/2, W/2). Subsampling (CPU, channels-last):
        each of the two 1x1 convs of all E edges as one conv (their weights concatenated, as they read the same
        pixels), the halves interleaved per edge, one batch norm."""
        relu = state.get("relu")
        if not FactorizedReduce.by_subsampling(relu):
            return torch.cat([r.forward_relu_applied(relu) for r in reduces], dim=1)
        even, odd = state.get("subsampled")
        halves = [F.conv2d(even, torch.cat([r.conv_1.weight for r in reduces])),
                  F.conv2d(odd, torch.cat([r.conv_2.weight for r in reduces]))]
        e = len(reduces)
        if halves[0].stride(1) == 1:  # channels-last: edge e's channels [conv_1's, conv_2's], in (B, H, W, C) order
            y = torch.stack([h.permute(0, 2, 3, 1).unflatten(3, (e, -1)) for h in halves], dim=4)
            y = y.flatten(3).permute(0, 3, 1, 2)
        else:
            y = torch.stack([h.unflatten(1, (e, -1)) for h in halves], dim=2).flatten(1, 3)
        return parallel_batch_norm([r.bn for r in reduces], y)

    def _edge_index(self, edges: list[int], device: torch.device) -> torch.Tensor:
        """``edges`` as an index tensor, made once per device (not a buffer: nothing to save)."""
        key = (tuple(edges), device)
        if key not in self._index_cache:
            # not an inference tensor, though the first forward may be Lightning's sanity check under inference
            # mode: index_select saves its index for backward, which an inference tensor refuses
            with torch.inference_mode(False):
                self._index_cache[key] = torch.tensor(edges, device=device)
        return self._index_cache[key]


class _EdgeRows:
    """Per-edge weighting of stacked edge outputs (B, E, C, H, W), computed on them as one row per sample in memory
    order (channels-last: H, W, E, C) against a weight materialised in the same order. PyTorch's CPU kernels for a
    broadcast (1, E, 1, 1, 1) weight run inner loops of C (4-16) elements, and the weight's gradient, a sum that
    keeps the edge dimension, was as slow: the weighting with its backward took 1.5-4.6x longer. The sum of the
    weighted ops stays in rows, unflattened once (each op unflattened was 5-8% slower, same-process A/B); the
    weights of all ops are materialised in one go (the per-op view / expand / copy was ~6% of a PC-DARTS step's ops).
    In NCHW the rows are (B, E, C, H, W) tensors and the weights broadcast: inner loops run over H*W already."""

    def __init__(self, like: torch.Tensor, edges: int, out: torch.Tensor):
        self.nhwc = like.stride(1) == 1 and like.shape[1] > 1  # (B, C, H, W) channels-last
        b, c, h, width = out.shape  # one edge's output
        self.shape = (b, edges, c, h, width)

    def weights(self, w: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per row of ``w`` (K, E): its E edge weights laid out as the rows."""
        b, n, c, h, width = self.shape
        k = w.shape[0]
        if not self.nhwc:
            return w.view(k, 1, n, 1, 1, 1).unbind(0)
        return w.view(k, 1, n, 1).expand(k, h * width, n, c).reshape(k, 1, -1).unbind(0)

    def stacked(self, x: torch.Tensor) -> torch.Tensor:
        """Edge outputs side by side (B, E*C, H, W), edge e on channels e*C .. (e+1)*C, as rows."""
        b, n, c, h, width = self.shape
        return x.permute(0, 2, 3, 1).reshape(b, -1) if self.nhwc else x.unflatten(1, (n, c))

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """One output (B, C, H, W) that every edge has (pooling, skip), as rows: copied E times in channels-last."""
        b, n, c, h, width = self.shape
        if not self.nhwc:
            return x.unsqueeze(1)
        return x.permute(0, 2, 3, 1).unsqueeze(3).expand(b, h, width, n, c).reshape(b, -1)

    def unflatten(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows back to (B, E, C, H, W) (a view)."""
        b, n, c, h, width = self.shape
        return rows.view(b, h, width, n, c).permute(0, 3, 4, 1, 2) if self.nhwc else rows


class DartsSupernet(nn.Module):
    """The search network: stem, ``layers`` search cells (reductions at 1/3 and 2/3), classifier.

    Architecture parameters are ``nn.Parameter``s (DDP averages their gradients, checkpoints hold
    them): ``alpha_normal``/``alpha_reduce`` (14 x 8) and, with edge normalisation,
    ``beta_normal``/``beta_reduce`` (14).
    """

    def __init__(self, num_classes: int, input_shape: tuple[int, int, int], init_channels: int = 16,
                 layers: int = 8, network: str = "cifar", stem_multiplier: int = 3, partial_k: int = 1,
                 edge_normalization: bool = False, fuse_edges: bool = False):
        super().__init__()
        in_channels = input_shape[0]
        c = init_channels
        if network == "cifar":
            c_stem = stem_multiplier * c
            self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(c_stem))
            reduction_prev = False
        elif network == "imagenet":
            # model_search_imagenet.py: the mobile stems at 3C channels (the evaluation network's are at C)
            c_stem = stem_multiplier * c
            self.stem0, self.stem1 = imagenet_stems(in_channels, c_stem)
            reduction_prev = True
        else:
            raise ConfigError(f"unknown supernet network {network!r}; valid: cifar, imagenet (setting: space.network)")
        self.network = network
        self.cells, channels = stack_cells(
            lambda *args: SearchCell(*args, partial_k=partial_k, fuse_edges=fuse_edges), layers, c, c_stem,
            reduction_prev)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels[-1], num_classes)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, len(PRIMITIVES)))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, len(PRIMITIVES)))
        if edge_normalization:
            self.beta_normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES))
            self.beta_reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES))
        else:
            self.beta_normal = self.beta_reduce = None

    # -- parameter groups ----------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """In ``named_parameters`` order (a module's own parameters come first), without walking the ~3,000
        submodules: several calls a step took ~2% of a PC-DARTS step."""
        return [p for p in (self.alpha_normal, self.alpha_reduce, self.beta_normal, self.beta_reduce) if p is not None]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith(("alpha_", "beta_"))]

    def alphas(self) -> dict[str, nn.Parameter]:
        return {"normal": self.alpha_normal, "reduce": self.alpha_reduce}

    def edge_scales(self) -> dict[str, torch.Tensor] | None:
        """PC-DARTS edge normalisation: per node, softmax of beta over its incoming edges."""
        if self.beta_normal is None:
            return None
        out = {}
        for kind, beta in (("normal", self.beta_normal), ("reduce", self.beta_reduce)):
            parts, start = [], 0
            for i in range(NUM_NODES):
                parts.append(F.softmax(beta[start:start + i + 2], dim=-1))
                start += i + 2
            out[kind] = torch.cat(parts)
        return out

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor] | None = None,
                sampled: dict[str, list[int]] | None = None) -> torch.Tensor:
        """``weights``: per cell type, the (14, 8) op weights (default: softmax(alpha));
        ``sampled``: per cell type, the op index computed on each edge (GDAS)."""
        if weights is None:
            weights = {kind: F.softmax(a, dim=-1) for kind, a in self.alphas().items()}
        scales = self.edge_scales()
        if self.network == "cifar":
            s0 = s1 = self.stem(x)
        else:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        for cell in self.cells:
            kind = CELL_TYPES[cell.reduction]
            s0, s1 = s1, cell(s0, s1, weights[kind], None if scales is None else scales[kind],
                              None if sampled is None else sampled[kind])
        return self.classifier(self.global_pooling(s1).flatten(1))
