"""Learning-rate schedules the configs name that torch does not ship as one class."""

from __future__ import annotations

import logging
import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

log = logging.getLogger(__name__)


def scale_lr(optimizer: Optimizer, batch_size: int, trainer, reference_batch: int | None) -> Optimizer:
    """The linear scaling rule (Goyal et al. 2017): a configured lr is the rate for ``reference_batch`` images
    per step; the run's rate is lr x global batch / reference_batch, where the global batch is ``batch_size``
    per process x processes x gradient accumulation. ``reference_batch`` None: the lr is used as given. Call
    before the scheduler is built (it reads each group's lr as the initial one)."""
    if not reference_batch:
        return optimizer
    world = int(getattr(trainer, "world_size", 1) or 1)
    accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
    global_batch = int(batch_size) * world * accumulate
    factor = global_batch / float(reference_batch)
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
    log.info("learning rate %.4g (lr %.4g per %d images, scaled linearly to the global batch %d = %d x %d "
             "processes x %d accumulated)", optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["lr"] / factor,
             reference_batch, global_batch, batch_size, world, accumulate)
    return optimizer


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
                            gamma: float = 0.97, floor: float = 0.05, decay_epochs: float = 1.0) -> LambdaLR:
    """BigNAS's schedule, stepped per batch: a linear warm-up over ``warmup_epochs``, then exponential decay by
    ``gamma`` every ``decay_epochs`` epochs (continuously, per step) until the rate reaches ``floor`` times the
    initial one, where it stays constant."""
    warmup = max(int(round(warmup_epochs * steps_per_epoch)), 0)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(gamma ** ((step - warmup) / (steps_per_epoch * decay_epochs)), floor)

    return LambdaLR(optimizer, f)
