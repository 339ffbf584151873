"""Learning-rate schedules the configs name that torch does not ship as one class."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(optimizer: Optimizer, T_max: int, eta_min: float = 0.0, warmup_epochs: int = 0,
                  batch_size: int | None = None, warmup_above_batch: int = 0) -> LambdaLR:
    """Per-epoch cosine annealing from each group's lr to ``eta_min`` over ``T_max`` epochs, with the linear
    warm-up of PC-DARTS's ImageNet search: in epoch e < ``warmup_epochs`` the lr is ``lr * (e + 1) /
    warmup_epochs``. train_search_imagenet.py applies the warm-up only when the batch is larger than 256:
    ``batch_size`` and ``warmup_above_batch`` keep that rule, so a scaled-down budget does not warm up.

    The official script steps its scheduler at the start of each epoch (PyTorch 0.4 style), so its cosine
    runs one epoch ahead of this one (and of every other lsnas schedule); the warm-up values are the same.
    """
    if batch_size is not None and batch_size <= warmup_above_batch:
        warmup_epochs = 0

    def factor(base_lr: float):
        def f(epoch: int) -> float:
            if epoch < warmup_epochs:
                return (epoch + 1) / warmup_epochs
            cosine = eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2
            return cosine / base_lr
        return f

    return LambdaLR(optimizer, [factor(group["lr"]) for group in optimizer.param_groups])


def exponential_to_constant(optimizer: Optimizer, steps_per_epoch: int, warmup_epochs: float = 0.0,
                            gamma: float = 0.97, floor: float = 0.05) -> LambdaLR:
    """BigNAS's schedule, stepped per batch: a linear warm-up over ``warmup_epochs``, then exponential decay by
    ``gamma`` per epoch (continuously, per step) until the rate reaches ``floor`` times the initial one, where it
    stays constant."""
    warmup = max(int(round(warmup_epochs * steps_per_epoch)), 0)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(gamma ** ((step - warmup) / steps_per_epoch), floor)

    return LambdaLR(optimizer, f)
