"""benchmarks/search_step.py times lsnas against the official way of computing the same step; the official
second-order step it times must compute lsnas's second-order architecture gradient."""

import importlib.util

import torch

from lsnas.methods.oneshot import DARTS
from tests.test_search_cli import ROOT


def load_benchmark():
    spec = importlib.util.spec_from_file_location("search_step", ROOT / "benchmarks" / "search_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_official_unrolled_step_gives_the_second_order_gradient_of_darts():
    torch.manual_seed(0)
    space = {"name": "darts", "network": "cifar", "init_channels": 4, "layers": 3}
    m = DARTS(num_classes=10, input_shape=(3, 16, 16), space=space, w_optimizer=None, a_optimizer=None,
              channels_last=False, order=2)
    net = m.supernet.double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_()
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    train = torch.randn(4, 3, 16, 16, dtype=torch.float64), torch.randint(0, 10, (4,))
    valid = torch.randn(4, 3, 16, 16, dtype=torch.float64), torch.randint(0, 10, (4,))
    m.criterion(net(train[0]), train[1]).backward()
    w_opt.step()  # momentum buffers, which the virtual step uses
    w_opt.zero_grad()
    weights = [w.detach().clone() for w in net.weight_parameters()]

    ours = m.arch_gradients(*train, *valid, w_opt)
    official = load_benchmark().official_unrolled_gradients(m, w_opt, train, valid)

    assert len(ours) == len(official) == 2
    for a, b in zip(ours, official):
        assert b.abs().max() > 1e-3  # a real gradient, not zeros on both sides
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    for w, before in zip(net.weight_parameters(), weights):  # the finite-difference shifts are undone
        torch.testing.assert_close(w.detach(), before, rtol=0, atol=1e-15)
