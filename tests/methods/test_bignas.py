"""BigNAS supernet training: the sandwich step, inplace distillation, the schedule's constant end, exact resume."""

import csv
import json
import shlex
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from lsnas.methods.bignas import BigNAS
from lsnas.methods.bignas.module import soft_cross_entropy
from lsnas.training.schedules import exponential_to_constant, scale_lr
from tests.helpers.config import compose_config
from tests.test_search_cli import ROOT
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


def test_the_default_schedule_is_the_papers_and_the_lr_scales_with_the_global_batch():
    cfg = compose_config("search", "method=bignas", "budget=full").method.module
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optimizer.lr)
    trainer = type("Trainer", (), {"world_size": 32, "accumulate_grad_batches": 1})()
    scale_lr(opt, cfg.batch_size, trainer, cfg.lr_reference_batch)  # 64 x 32 processes = 2,048 images
    assert opt.param_groups[0]["lr"] == pytest.approx(0.8)  # 0.1 per 256, as AttentiveNAS and mmrazor
    schedule = exponential_to_constant(opt, steps_per_epoch=1, warmup_epochs=cfg.warmup_epochs, gamma=cfg.gamma,
                                       floor=cfg.lr_floor, decay_epochs=cfg.decay_epochs)
    lrs = []
    for _ in range(360):
        lrs.append(opt.param_groups[0]["lr"] / 0.8)
        opt.step()
        schedule.step()
    floor_epoch = next(e for e, lr in enumerate(lrs) if lr <= 0.05 + 1e-12)
    assert 235 <= floor_epoch <= 245  # 0.97 every 2.4 epochs: the floor at epoch 5 + 236, not 103
    assert lrs[5 + 24] == pytest.approx(0.97 ** 10)
    space = compose_config("search", "method=bignas", "budget=full").space
    assert list(space.resolutions) == [192, 224, 288, 320]
    assert compose_config("search", "method=bignas", "budget=full").method.selection.calib_batches * 64 >= 4096


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


class MacsScore:
    """A stand-in for the supernet evaluator: bigger children score higher (as trained supernets tend to)."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, arch):
        return self.strategy.macs(arch) / 1e7 + 0.01 * arch.genotype["resolution"] / 48


def test_the_coarse_to_fine_selection_respects_its_macs_targets(tmp_path):
    from lsnas.evaluators import Evaluator, Result
    from lsnas.methods.bignas.selection import CoarseToFine
    from lsnas.methods.multitrial.executors import InProcessExecutor
    from lsnas.methods.multitrial.journal import Journal, TrialLog
    from lsnas.methods.multitrial.loop import SearchLoop
    from lsnas.methods.multitrial.strategy import SearchState

    space = method().space
    strategy = CoarseToFine([1.0e6, 2.0e6], num_fine=4, num_classes=10)
    strategy.check_space(space)
    score = MacsScore(strategy)

    class Scored(Evaluator):
        def settings(self):
            return {}

        def evaluate(self, arch, ctx):
            return Result(score=score(arch), cost={"macs": strategy.macs(arch)})

    with Journal(tmp_path) as journal:
        state = SearchState(TrialLog.replay(journal.read()), space)
        SearchLoop(journal, state, strategy, Scored(), InProcessExecutor(), seed=0).run()
    coarse = [t for t in state.trials if t.tags["phase"] == "coarse"]
    fine = [t for t in state.trials if t.tags["phase"] == "fine"]
    assert len(coarse) == len(strategy.grid(space)) and all(strategy.macs(t.arch) <= 2.0e6 for t in coarse)
    assert {t.tags["target"] for t in fine} == {1.0e6, 2.0e6} and len(fine) == 8
    assert all(strategy.macs(t.arch) <= t.tags["target"] for t in fine)
    for target in strategy.targets:
        best = strategy.best_within(state, target)
        assert strategy.macs(best.arch) <= target
        assert best.score == max(t.score for t in state.completed() if strategy.macs(t.arch) <= target)
    # the skeletons span the space: the smallest child is one of them
    assert space.architecture(space.min_genotype()) in [t.arch for t in coarse]


@pytest.mark.slow
def test_a_supernet_run_selects_children_that_train_py_evaluates(tmp_path):
    proc = run_cli("search.py", "method=bignas", "logger=none", "method.epochs=1", "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=1", "method.selection.num_fine=2", "method.selection.eval_batches=2",
            f"hydra.run.dir={tmp_path}")
    rows = list(csv.DictReader((tmp_path / "selection" / "selection.csv").read_text().splitlines()))
    assert [int(r["target_macs"]) for r in rows] == [1_000_000, 2_000_000]
    assert all(int(r["macs"]) <= int(r["target_macs"]) for r in rows)
    assert (tmp_path / "selection" / "selection.png").stat().st_size > 0
    summary = json.loads((tmp_path / "search_summary.json").read_text())
    assert len(summary["selection"]) == 2
    # the output: the selection table first, then each chosen child's extract and train commands, which work
    out = proc.stdout
    assert out.index("| MACs target |") < out.index("python -m lsnas.methods.bignas.extract")
    assert "train it with" not in out  # no command for the biggest child before the selection
    commands = [line.strip() for line in out.splitlines() if line.strip().startswith("python ")]
    assert len(commands) == 4 and str(tmp_path / "selection" / "target_1000000") in commands[0]
    extract_args = shlex.split(commands[0])[3:] + ["--calib-batches", "2"]
    subprocess.run([sys.executable, "-m", "lsnas.methods.bignas.extract", *extract_args], check=True,
                   capture_output=True, cwd=ROOT)
    train_args = shlex.split(commands[1])[2:]
    run_cli("train.py", *train_args, "logger=none", f"hydra.run.dir={tmp_path / 'eval'}")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["params"] == int(rows[0]["params"]) and metrics["macs"] == int(rows[0]["macs"])


@pytest.mark.slow
def test_under_ddp_a_sandwich_step_all_reduces_once_with_the_same_result():
    def run(*flags):
        out = subprocess.run([sys.executable, "-m", "tests.helpers.bignas_ddp_allreduces", *flags], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    once, every_child = run(), run("--sync-every-child")
    assert once["steps"] == every_child["steps"] == 3 and once["children"] == 4
    assert once["calls"] > 0 and every_child["calls"] == once["children"] * once["calls"]
    assert once["digest"] == every_child["digest"]  # the same sum of the children's gradients
