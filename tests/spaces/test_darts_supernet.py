"""The supernet's shared-work forward against the straightforward per-edge computation
(lsnas.spaces.darts.reference, the official model_search.py written out plainly). It reuses the
supernet's parameters, so outputs and gradients must agree."""

import pytest
import torch
from torch.nn import functional as F

from lsnas.spaces.darts import ops, supernet
from lsnas.spaces.darts.genotype import CELL_TYPES
from lsnas.spaces.darts.ops import PRIMITIVES
from lsnas.spaces.darts.reference import reference_forward
from lsnas.spaces.darts.supernet import DartsSupernet


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("network, partial_k, edge_norm, size",
                         [("cifar", 1, False, 16), ("cifar", 4, True, 16), ("imagenet", 2, True, 64)])
def test_shared_work_forward_matches_the_straightforward_one(network, partial_k, edge_norm, size, fuse, fmt):
    torch.manual_seed(0)
    net = DartsSupernet(5, (3, size, size), init_channels=8, layers=4, partial_k=partial_k,
                        edge_normalization=edge_norm, network=network, fuse_edges=fuse).double()
    net.to(memory_format=fmt)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_(0, 1)
    x = torch.randn(4, 3, size, size, dtype=torch.float64).contiguous(memory_format=fmt)
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


def test_dilated_convs_of_one_state_share_its_phase_split(monkeypatch):
    """In channels-last, the normal edges' dil_conv ops run by phases, and the ReLU of a state is split into phases
    once for all of them, not once per op."""
    calls = {"split": 0, "conv": 0}

    def counted(name, f):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return f(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(supernet, "split_phases", counted("split", supernet.split_phases))
    monkeypatch.setattr(ops, "conv_phases", counted("conv", ops.conv_phases))
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3).to(memory_format=torch.channels_last)
    net(torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last))
    # The normal cell at 16 px: 14 edges with two dil_conv ops each read 5 stride-1 states
    assert calls["split"] >= 5 and calls["conv"] >= 28
    assert calls["conv"] >= 2 * calls["split"]


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


def test_imagenet_supernet_is_the_official_pcdarts_imagenet_search_network():
    """model_search_imagenet.Network(16, 1000, 8) of yuhuixu1993/PC-DARTS has 956,512 weights (its alphas
    and betas are unregistered Variables). Run beside ours with its state dict mapped in (edge ops by name,
    pool BNs shared), it gave bit-identical float64 logits at 224 px."""
    net = DartsSupernet(1000, (3, 224, 224), init_channels=16, layers=8, network="imagenet", partial_k=2,
                        edge_normalization=True)
    assert sum(p.numel() for p in net.weight_parameters()) == 956_512
    # The stems run at 3C = 48 channels, module for module: conv 3->24 s2, BN, ReLU, conv 24->48 s2, BN;
    # then ReLU, conv 48->48 s2, BN. Cell 0 reads them through a factorized reduce.
    convs = [(m.in_channels, m.out_channels, m.stride) for m in [*net.stem0, *net.stem1]
             if isinstance(m, torch.nn.Conv2d)]
    assert convs == [(3, 24, (2, 2)), (24, 48, (2, 2)), (48, 48, (2, 2))]
    assert [type(m).__name__ for m in net.stem0] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]
    assert [type(m).__name__ for m in net.stem1] == ["ReLU", "Conv2d", "BatchNorm2d"]
    assert type(net.cells[0].preprocess0).__name__ == "FactorizedReduce"
    assert net(torch.randn(2, 3, 224, 224)).shape == (2, 1000)


@pytest.mark.parametrize("edge_norm", [False, True])
def test_arch_parameters_are_parameters(edge_norm):
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3, partial_k=2, edge_normalization=edge_norm)
    arch = [p for n, p in net.named_parameters() if n.startswith(("alpha_", "beta_"))]
    assert len(arch) == (4 if edge_norm else 2)
    assert [id(p) for p in net.arch_parameters()] == [id(p) for p in arch]  # the named_parameters order
    assert len(net.weight_parameters()) + len(arch) == len(list(net.parameters()))


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


@pytest.mark.parametrize("partial_k, edge_norm, fmt", [(1, False, torch.contiguous_format),
                                                       (4, True, torch.channels_last)])
def test_fused_edges_compute_the_per_edge_numbers_and_running_statistics(partial_k, edge_norm, fmt):
    """All edges leaving a state as grouped convolutions: the same outputs, gradients and BN running
    statistics (written back to each edge's own buffers) as one edge at a time, in training and in eval."""
    results = []
    for fuse in (False, True):
        torch.manual_seed(0)
        net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3, partial_k=partial_k,
                            edge_normalization=edge_norm, fuse_edges=fuse).double().to(memory_format=fmt)
        with torch.no_grad():
            for p in net.arch_parameters():
                p.normal_(0, 1)
        x = torch.randn(4, 3, 16, 16, dtype=torch.float64).contiguous(memory_format=fmt)
        out = net(x)
        out.square().sum().backward()
        net.eval()
        with torch.no_grad():
            evaluated = net(x)
        results.append((out.detach(), evaluated, dict(net.named_parameters()), net.state_dict()))
    (out0, eval0, params0, state0), (out1, eval1, params1, state1) = results
    torch.testing.assert_close(out1, out0, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(eval1, eval0, rtol=1e-10, atol=1e-12)
    for name, p in params0.items():
        torch.testing.assert_close(params1[name].grad, p.grad, rtol=1e-9, atol=1e-12, msg=name)
    assert state0.keys() == state1.keys()
    running = [k for k in state0 if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert any(".edges." in k for k in running)
    for k in running:
        torch.testing.assert_close(state1[k], state0[k], rtol=1e-10, atol=1e-12, msg=k)
        if k.endswith("num_batches_tracked"):
            assert int(state1[k]) == 1, k


@pytest.mark.parametrize("partial_k", [1, 2])
@pytest.mark.parametrize("fuse", [False, True])
def test_every_gradient_has_its_parameters_strides_in_channels_last(partial_k, fuse):
    """DDP's gradient buckets are laid out as the parameters are; a gradient in other strides (even only in
    size-1 dimensions) makes it copy and warn "grad strides do not match bucket view strides"."""
    torch.manual_seed(0)
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3, partial_k=partial_k,
                        edge_normalization=partial_k > 1, fuse_edges=fuse).to(memory_format=torch.channels_last)
    net(torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last)).sum().backward()
    mismatched = [n for n, p in net.named_parameters() if p.grad is not None and p.grad.stride() != p.stride()]
    assert not mismatched


@pytest.mark.parametrize("fmt", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("partial_k", [1, 4])
def test_cells_keep_their_inputs_layout(partial_k, fuse, fmt):
    """PC-DARTS's channel shuffle written as view/transpose/reshape returns NCHW: every later cell then ran on
    NCHW activations against channels-last weights, and each convolution converted its input."""
    torch.manual_seed(0)
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3, partial_k=partial_k,
                        edge_normalization=partial_k > 1, fuse_edges=fuse).to(memory_format=fmt)
    layouts = []
    for cell in net.cells:
        cell.register_forward_hook(lambda m, args, out: layouts.append(out.is_contiguous(memory_format=fmt)))
    net(torch.randn(2, 3, 16, 16).contiguous(memory_format=fmt))
    assert layouts == [True] * len(net.cells)


def test_fused_edges_train_after_a_forward_in_inference_mode():
    """Lightning's sanity check runs the first forward under inference mode; what the fused edges cache then must
    still serve a training forward and backward."""
    net = DartsSupernet(5, (3, 16, 16), init_channels=8, layers=3, partial_k=2, edge_normalization=True,
                        fuse_edges=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        net(x)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.arch_parameters())
