"""BigNAS supernet training: the sandwich step, inplace distillation, the schedule's constant end, exact resume."""

import json

import pytest
import torch
from torch.nn import functional as F

from lsnas.methods.bignas import BigNAS
from lsnas.methods.bignas.module import soft_cross_entropy
from lsnas.training.schedules import exponential_to_constant
from tests.helpers.config import compose_config
from tests.test_search_cli import run as run_cli


def method(**kwargs) -> BigNAS:
    from omegaconf import OmegaConf

    space = OmegaConf.to_container(compose_config("search", "method=bignas").space, resolve=True)
    torch.manual_seed(0)
    return BigNAS(10, (3, 32, 32), space, optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
                  dropout=0.0, weight_decay=0.0, channels_last=False, **kwargs)


def test_the_sandwich_step_trains_four_children_and_accumulates_their_gradients():
    m = method(num_random=2)
    x, y = torch.randn(6, 3, 48, 48), torch.randint(0, 10, (6,))
    losses = m.sandwich_step(x, y, step=5)
    space = m.space
    calls = m.sandwich_calls
    assert len(calls) == 4 and calls[0] == space.max_genotype() and calls[1] == space.min_genotype()
    assert calls[2:] == [g for _, g in m.sandwich(5)[2:]] and calls[2] != calls[3]
    assert set(losses) == {"biggest", "smallest", "random"}
    accumulated = [p.grad.clone() for p in m.supernet.parameters()]  # None would fail here
    # the same children one by one: the biggest on the labels, the others on its soft predictions
    m.supernet.zero_grad(set_to_none=True)
    total = [torch.zeros_like(p) for p in m.supernet.parameters()]
    soft = None
    for i, genotype in enumerate(calls):
        logits = m.child_forward(genotype, x)
        if i == 0:
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            soft = F.softmax(logits.detach(), -1)
        else:
            loss = soft_cross_entropy(logits, soft)
        grads = torch.autograd.grad(loss, list(m.supernet.parameters()), allow_unused=True)
        total = [t + (g if g is not None else 0) for t, g in zip(total, grads)]
    for a, b in zip(accumulated, total):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(g.abs().sum() > 0 for g in accumulated[:3])  # (every weight had a gradient: the biggest child's)


def test_without_distillation_every_child_learns_from_the_labels():
    m = method(num_random=0, distill=False, label_smoothing=0.0)
    x, y = torch.randn(4, 3, 48, 48), torch.randint(0, 10, (4,))
    losses = m.sandwich_step(x, y, step=0)
    logits = m.child_forward(m.space.min_genotype(), x)
    torch.testing.assert_close(losses["smallest"], F.cross_entropy(logits, y).detach(), rtol=1e-5, atol=1e-6)


def test_the_schedule_warms_up_decays_and_ends_constant_at_the_floor():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = exponential_to_constant(opt, steps_per_epoch=10, warmup_epochs=1, gamma=0.5, floor=0.05)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert lrs[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert lrs[10] == 1.0 and lrs[20] == pytest.approx(0.5) and lrs[30] == pytest.approx(0.25)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[60:] == pytest.approx([0.05] * 40)  # 0.5 ** 5 < 0.05: constant from then on


@pytest.mark.slow
def test_supernet_training_resumes_exactly(tmp_path):
    common = ["method=bignas", "logger=none", "method.epochs=2", "trainer.limit_train_batches=3",
              "trainer.limit_val_batches=1", "method.batch_size=8"]
    run_cli("search.py", *common, f"hydra.run.dir={tmp_path / 'whole'}")
    run_cli("search.py", *common, "stop_after_epochs=1", f"hydra.run.dir={tmp_path / 'parts'}")
    run_cli("search.py", *common, "ckpt_path=last", f"hydra.run.dir={tmp_path / 'parts'}")
    whole, parts = (json.loads((tmp_path / d / "search_summary.json").read_text()) for d in ("whole", "parts"))
    assert whole["epochs"] == parts["epochs"] == 2
    assert whole["weight_digests"] == parts["weight_digests"]
    assert (tmp_path / "whole" / "arch.json").exists()
