import math

import pytest
import torch

from lsnas.training.schedules import warmup_cosine


def lrs(epochs, **kwargs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = warmup_cosine(opt, T_max=epochs, **kwargs)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_pcdarts_imagenet_warmup_then_cosine():
    got = lrs(50, warmup_epochs=5, batch_size=1024, warmup_above_batch=256)
    assert got[:5] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])  # lr * (e + 1) / 5
    assert got[5:] == pytest.approx([0.25 * (1 + math.cos(math.pi * e / 50)) for e in range(5, 50)])


def test_no_warmup_at_or_below_batch_256_matches_torch_cosine():
    got = lrs(10, warmup_epochs=5, batch_size=256, warmup_above_batch=256, eta_min=0.001)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10, eta_min=0.001)
    ref = []
    for _ in range(10):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        ref_sched.step()
    assert got == pytest.approx(ref)
