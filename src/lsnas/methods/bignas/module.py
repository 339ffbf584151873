"""BigNAS supernet training (Yu et al., ECCV 2020) as a one-shot method: the sandwich rule and inplace distillation.

Each step trains, on the same batch, the biggest child, the smallest and ``num_random`` random children (the
sandwich rule), each at its own input resolution (the batch resized), accumulating their gradients before one
update. The biggest child learns from the labels (with label smoothing), the others from its soft predictions
(inplace distillation; ``distill: false`` trains them on the labels). Weight decay and dropout act on the biggest
child only: dropout is switched off for the others, and weight decay (conv and linear weights, not BN or biases)
is added once to the accumulated gradient. The learning rate warms up, then decays exponentially and ends
constant at 5% of its initial value (``lsnas.training.schedules.exponential_to_constant``). The random
children of step t are drawn from (seed, t), so a resumed run trains the children the uninterrupted one would.
Logged per child kind: ``train/loss_{biggest,smallest,random}``, ``train/top1_...``, and the validation top-1
of the biggest and smallest children on the supernet's running BN statistics (``val/top1`` is the biggest's),
so a collapsing supernet shows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import ClassVar

import torch
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy

from lsnas.arch import Architecture
from lsnas.methods.oneshot.base import OneShotMethod
from lsnas.training.schedules import exponential_to_constant, scale_lr

KINDS = ("biggest", "smallest", "random")


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    return -(target_probs * F.log_softmax(logits, dim=-1)).sum(-1).mean()


class BigNAS(OneShotMethod):
    spaces: ClassVar[tuple[str, ...]] = ("bignas_mbconv",)
    find_unused_parameters: ClassVar[bool] = True  # the smaller children leave weights unused

    def __init__(self, num_classes: int, input_shape: Sequence[int], space: dict, optimizer: Callable,
                 num_random: int = 2, distill: bool = True, label_smoothing: float = 0.1, weight_decay: float = 1e-5,
                 dropout: float = 0.2, grad_clip: float | None = None, warmup_epochs: float = 0.0, gamma: float = 0.97,
                 decay_epochs: float = 1.0, lr_floor: float = 0.05, batch_size: int = 64,
                 lr_reference_batch: int | None = None, seed: int = 0, channels_last: bool = True):
        self._dropout = dropout
        super().__init__(num_classes, input_shape, space, channels_last=channels_last)
        self.save_hyperparameters(ignore=["optimizer", "space"])  # the space: in the run's config
        self.optimizer_factory = optimizer
        self.top1 = torch.nn.ModuleDict({k: MulticlassAccuracy(num_classes, average="micro") for k in KINDS})
        self.val_small_top1 = MulticlassAccuracy(num_classes, average="micro")
        self.sandwich_calls: list[dict] = []  # the children of the last step (tests, the benchmark)

    def supernet_variant(self) -> dict:
        return {"dropout": self._dropout}

    # -- the sandwich step ---------------------------------------------------------------------
    def sandwich(self, step: int) -> list[tuple[str, dict]]:
        """The children of step ``step``: biggest, smallest, then ``num_random`` drawn from (seed, step)."""
        rng = random.Random((int(self.hparams.seed) << 32) + int(step))
        children = [("biggest", self.space.max_genotype()), ("smallest", self.space.min_genotype())]
        return children + [("random", self.space.sample(rng).genotype) for _ in range(self.hparams.num_random)]

    def child_forward(self, genotype: dict, x: torch.Tensor) -> torch.Tensor:
        self.supernet.set_active_subnet(genotype)
        size = genotype["resolution"]
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return self.supernet(x.contiguous(memory_format=self.memory_format))

    def sandwich_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Forward and backward of every child of the step, gradients accumulated (no optimiser step)."""
        losses, soft = {}, None
        self.sandwich_calls = []
        children = self.sandwich(step)
        for i, (kind, genotype) in enumerate(children):
            self.supernet.dropout.p = self.hparams.dropout if kind == "biggest" else 0.0
            logits = self.child_forward(genotype, x)
            if kind == "biggest" or not self.hparams.distill:
                loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
            else:
                loss = soft_cross_entropy(logits, soft)
            if kind == "biggest":
                soft = F.softmax(logits.detach(), dim=-1)
            self.backward_child(loss, last=i == len(children) - 1)
            self.sandwich_calls.append(genotype)
            losses.setdefault(kind, []).append(loss.detach())
            self.top1[kind](logits.detach(), y)
        self.supernet.dropout.p = self.hparams.dropout
        return {kind: torch.stack(values).mean() for kind, values in losses.items()}

    def backward_child(self, loss: torch.Tensor, last: bool) -> None:
        """One child's backward. Under DDP only the last one all-reduces: the earlier ones accumulate locally
        (``no_sync``), so a step costs one all-reduce, not one per child. The sum is the same, and DDP counts a
        weight as used if any child of the step used it (its ``find_unused_parameters`` bookkeeping spans the
        ``no_sync`` backwards), so a block only the biggest child runs is still reduced."""
        if self._trainer is None:
            loss.backward()
            return
        block = getattr(self.trainer.strategy, "block_backward_sync", None)  # DDP's; other strategies have none
        with nullcontext() if last or block is None else block():
            self.manual_backward(loss)

    def add_weight_decay(self) -> None:
        """Weight decay, once per step (the biggest child's): conv and linear weights, not BN or biases."""
        if not self.hparams.weight_decay:
            return
        for p in self.supernet.parameters():
            if p.grad is not None and p.dim() > 1:
                p.grad.add_(p.detach(), alpha=self.hparams.weight_decay)

    def training_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        opt = self.optimizers()
        opt.zero_grad()
        losses = self.sandwich_step(x, y, self.global_step)
        self.add_weight_decay()
        if self.hparams.grad_clip:
            self.clip_gradients(opt, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")
        opt.step()
        self.lr_schedulers().step()
        for kind, loss in losses.items():
            self.log(f"train/loss_{kind}", loss, prog_bar=kind == "biggest", on_step=True, on_epoch=True,
                     sync_dist=True)
            self.log(f"train/top1_{kind}", self.top1[kind], on_step=False, on_epoch=True)
        self.log("train/lr", opt.optimizer.param_groups[0]["lr"], on_step=True, on_epoch=False)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        for genotype, metric, name in ((self.space.max_genotype(), self.val_top1, "val/top1"),
                                       (self.space.min_genotype(), self.val_small_top1, "val/top1_smallest")):
            logits = self.child_forward(genotype, x)
            metric(logits, y)
            self.log(name, metric, prog_bar=True, on_epoch=True)
            if name == "val/top1":
                self.log("val/loss", self.criterion(logits, y), on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        optimizer = scale_lr(self.optimizer_factory(self.supernet.parameters()), self.hparams.batch_size,
                             self.trainer, self.hparams.lr_reference_batch)
        epochs = max(int(self.trainer.max_epochs or 1), 1)
        steps_per_epoch = max(int(self.trainer.estimated_stepping_batches) // epochs, 1)
        scheduler = exponential_to_constant(optimizer, steps_per_epoch, self.hparams.warmup_epochs,
                                            self.hparams.gamma, self.hparams.lr_floor, self.hparams.decay_epochs)
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]

    # -- the result ----------------------------------------------------------------------------
    def architecture(self) -> Architecture:
        """The biggest child (the selection of children under MACs targets is a step of its own)."""
        return self.space.architecture(self.space.max_genotype())
