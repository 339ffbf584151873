"""The unrolled (second-order) DARTS step against an exact double-backward computation."""

import torch
from torch.func import functional_call

from lsnas.methods.oneshot import DARTS

SPACE = {"name": "darts", "network": "cifar", "init_channels": 4, "layers": 3}


def make(order=2):
    torch.manual_seed(0)
    method = DARTS(num_classes=3, input_shape=(3, 8, 8), space=SPACE, order=order,
                   w_optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=3e-4),
                   a_optimizer=lambda p: torch.optim.Adam(p, lr=3e-4)).double()
    with torch.no_grad():  # alphas far from uniform, so the second-order term is not negligible
        for p in method.supernet.arch_parameters():
            p.normal_(0, 0.5)
    return method


def exact_unrolled_gradient(method, opt, x_w, y_w, x_a, y_a):
    net = method.supernet
    names = [n for n, _ in net.named_parameters() if not n.startswith("alpha_")]
    weights, alphas = net.weight_parameters(), net.arch_parameters()
    group = opt.param_groups[0]
    xi, m, wd = group["lr"], group["momentum"], group["weight_decay"]
    loss = method.criterion(net(x_w), y_w)
    grads = torch.autograd.grad(loss, weights, create_graph=True)  # depends on alpha
    unrolled = [w - xi * (g + wd * w + m * opt.state[w]["momentum_buffer"]) for w, g in zip(weights, grads)]
    params = {**dict(zip(names, unrolled)), "alpha_normal": net.alpha_normal, "alpha_reduce": net.alpha_reduce}
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    val = method.criterion(functional_call(net, {**params, **buffers}, (x_a,)), y_a)
    return torch.autograd.grad(val, alphas)


def test_unrolled_step_matches_exact_double_backward():
    method = make()
    opt = torch.optim.SGD(method.supernet.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(1)
    x_w, x_a = torch.randn(6, 3, 8, 8, generator=g).double(), torch.randn(6, 3, 8, 8, generator=g).double()
    y_w, y_a = torch.randint(0, 3, (6,), generator=g), torch.randint(0, 3, (6,), generator=g)
    # one real SGD step so the momentum buffers are non-zero, as mid-search
    method.criterion(method.supernet(x_w), y_w).backward()
    opt.step()
    opt.zero_grad()

    exact = exact_unrolled_gradient(method, opt, x_w, y_w, x_a, y_a)
    # The paper's eps = 0.01/||v|| probes far enough to cross ReLU / max-pool kinks of a 6-image 8x8
    # network (so does 1e-4); in float64 a 1e-6 probe isolates the formula, which is what is under test.
    assert method.hvp_eps == 0.01
    method.hvp_eps = 1e-6
    before = [w.detach().clone() for w in method.supernet.weight_parameters()]
    approx = method.unrolled_arch_gradients(x_w, y_w, x_a, y_a, opt)
    for a, e in zip(approx, exact):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-8)
    # the finite-difference probes restore the weights
    for w, b in zip(method.supernet.weight_parameters(), before):
        torch.testing.assert_close(w, b, rtol=0, atol=1e-12)
    # and the second-order term matters here: first order differs
    first = DARTS.arch_gradients(make(order=1), x_w, y_w, x_a, y_a, opt)
    assert max((f - e).abs().max() for f, e in zip(first, exact)) > 1e-4
