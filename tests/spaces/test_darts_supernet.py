"""The supernet's shared-work forward against the straightforward per-edge computation.

The reference below is the official model_search.py written out plainly: every edge runs all 8
ops on its own (each conv op with its own ReLU, each pool with its own BN, 'none' included) and
PC-DARTS slices/bypasses/shuffles per edge. It reuses the supernet's parameters, so outputs and
gradients must agree.
"""

import pytest
import torch
from torch.nn import functional as F

from lsnas.spaces.darts.genotype import CELL_TYPES, NUM_NODES
from lsnas.spaces.darts.ops import PRIMITIVES
from lsnas.spaces.darts.supernet import DartsSupernet, channel_shuffle


def reference_mixed(edge, x, w, k):
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
            outs.append(edge.convs[name](part))  # the full op, its own ReLU included
    y = sum(wk * o for wk, o in zip(w, outs))
    if k > 1:
        rest = x[:, c:] if edge.stride == 1 else F.max_pool2d(x[:, c:], 2, 2)
        y = channel_shuffle(torch.cat([y, rest], 1), k)
    return y


def reference_forward(net: DartsSupernet, x):
    weights = {kind: F.softmax(a, -1) for kind, a in net.alphas().items()}
    scales = net.edge_scales()
    s0 = s1 = net.stem(x)
    for cell in net.cells:
        kind = CELL_TYPES[cell.reduction]
        states = [cell.preprocess0(s0), cell.preprocess1(s1)]
        e = 0
        for _ in range(NUM_NODES):
            terms = []
            for h in states:
                y = reference_mixed(cell.edges[e], h, weights[kind][e], cell.partial_k)
                terms.append(y if scales is None else scales[kind][e] * y)
                e += 1
            states.append(sum(terms))
        s0, s1 = s1, torch.cat(states[-4:], 1)
    return net.classifier(net.global_pooling(s1).flatten(1))


@pytest.mark.parametrize("partial_k, edge_norm", [(1, False), (4, True)])
def test_shared_work_forward_matches_the_straightforward_one(partial_k, edge_norm):
    torch.manual_seed(0)
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=4, partial_k=partial_k,
                        edge_normalization=edge_norm).double()
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_(0, 1)
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    y = torch.randint(0, 5, (4,))
    outs, grads = [], []
    for forward in (net, lambda inp: reference_forward(net, inp)):
        net.zero_grad()
        out = forward(x)
        F.cross_entropy(out, y).backward()
        outs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-12)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-9, atol=1e-12, msg=name)


def test_gdas_computes_only_the_sampled_op_and_still_trains_alphas():
    torch.manual_seed(0)
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3)
    x = torch.randn(2, 3, 16, 16)
    pool = PRIMITIVES.index("max_pool_3x3")
    sampled = {kind: [pool] * 14 for kind in CELL_TYPES}
    weights = {kind: F.one_hot(torch.tensor(s), 8).float().requires_grad_() for kind, s in sampled.items()}
    net(x, weights, sampled).sum().backward()
    conv_grads = [p.grad for c in net.cells for e in c.edges for p in e.convs.parameters()]
    assert all(g is None for g in conv_grads)  # no conv op ran
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights.values())


def test_partial_channels_must_divide():
    with pytest.raises(ValueError, match="method.partial_channels"):
        DartsSupernet(5, (3, 16, 16), init_channels=6, layers=3, partial_k=4)


def test_imagenet_supernet_runs():
    net = DartsSupernet(7, (3, 64, 64), init_channels=8, layers=3, network="imagenet")
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_arch_parameters_are_parameters():
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3, partial_k=2, edge_normalization=True)
    names = {n for n, _ in net.named_parameters()}
    assert {"alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce"} <= names
    assert len(net.arch_parameters()) == 4
    assert len(net.weight_parameters()) + 4 == len(list(net.parameters()))


def test_channels_last_layout_computes_the_same_numbers():
    torch.manual_seed(0)
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3, partial_k=2, edge_normalization=True).double()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        net.to(memory_format=fmt)
        net.zero_grad()
        out = net(x.contiguous(memory_format=fmt))
        out.square().sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-10, atol=1e-12)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
