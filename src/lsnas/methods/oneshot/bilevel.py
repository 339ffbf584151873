"""The bilevel loop of the DARTS family (manual optimisation): DARTS, PC-DARTS, GDAS.

Each training step gets a batch from each half of the training set: ``weights`` (for the
network weights) and ``arch`` (for the architecture parameters). A method supplies how the
supernet is weighted in the forward pass and how the architecture gradient is computed.

Under DDP the architecture gradient is averaged across ranks explicitly, so every rank holds
the same alphas and derives the same genotype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from lsnas.arch import Architecture
from lsnas.methods.oneshot.base import OneShotMethod
from lsnas.spaces.darts.genotype import CELL_TYPES, derive_genotype
from lsnas.spaces.darts.ops import PRIMITIVES
from lsnas.training.callbacks import GenotypeTrace
from lsnas.utils.io import atomic_write_json
from lsnas.viz import plot_cell, plot_edge_weights


class BilevelMethod(OneShotMethod):
    spaces: ClassVar[tuple[str, ...]] = ("darts",)
    needs_arch_split: ClassVar[bool] = True
    arch_first: ClassVar[bool] = True  # DARTS: architecture step, then weight step, on each batch pair

    def __init__(self, num_classes: int, input_shape: Sequence[int], space: dict, w_optimizer: Callable,
                 a_optimizer: Callable, w_scheduler: Callable | None = None, grad_clip: float = 5.0,
                 warmup_fraction: float = 0.0, channels_last: bool = True, arch_grad_clip: float | None = None,
                 fuse_edges: bool = False):
        self._fuse_edges = fuse_edges  # read by supernet_variant, which the base __init__ calls
        super().__init__(num_classes, input_shape, space, channels_last=channels_last)
        self.save_hyperparameters(ignore=["w_optimizer", "a_optimizer", "w_scheduler"])
        self.w_optimizer_factory, self.a_optimizer_factory = w_optimizer, a_optimizer
        self.w_scheduler_factory = w_scheduler
        # DDP leaves the architecture parameters alone: the architecture step averages their gradients itself and the
        # weight step computes none (torch's DistributedDataParallel reads this attribute)
        arch = {id(p) for p in self.supernet.arch_parameters()}
        self._ddp_params_and_buffers_to_ignore = [n for n, p in self.named_parameters() if id(p) in arch]

    def on_fit_start(self) -> None:
        # DDP broadcasts rank 0's weights but not the ignored alphas: every rank starts from rank 0's too
        strategy = self.trainer.strategy
        if strategy.world_size > 1:
            with torch.no_grad():
                for p in self.supernet.arch_parameters():
                    p.copy_(strategy.broadcast(p.detach().cpu()).to(p.device))

    def supernet_variant(self) -> dict:
        return {"fuse_edges": self._fuse_edges}

    # -- what a method defines ---------------------------------------------------------------
    def search_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The supernet forward used in both steps (DARTS: softmax-weighted mix)."""
        return self.supernet(x)

    def arch_gradients(self, x_w, y_w, x_a, y_a, w_optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
        """First order: the gradient of the validation loss w.r.t. the architecture parameters."""
        loss = self.criterion(self.search_forward(x_a), y_a)
        self._log_epoch("search/arch_loss", loss.detach())
        return self._grad(loss, self.supernet.arch_parameters())

    # -- shared machinery --------------------------------------------------------------------
    @property
    def warmup_epochs(self) -> int:
        epochs = self.trainer.max_epochs if self._trainer is not None else 0
        return int(round(self.hparams.warmup_fraction * epochs))

    def _grad(self, loss: torch.Tensor, params: Sequence[torch.Tensor], **kwargs) -> tuple[torch.Tensor, ...]:
        """autograd.grad, loss-scaled under 16-bit mixed precision like manual_backward would be."""
        scaler = getattr(self._trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        if scaler is None:
            return torch.autograd.grad(loss, params, **kwargs)
        grads = torch.autograd.grad(scaler.scale(loss), params, **kwargs)
        inv = 1.0 / scaler.get_scale()
        return tuple(g * inv for g in grads)

    def _arch_step(self, x_w, y_w, x_a, y_a, w_opt, a_opt) -> None:
        params = self.supernet.arch_parameters()
        grads = self.arch_gradients(x_w, y_w, x_a, y_a, w_opt.optimizer)
        strategy = self.trainer.strategy
        for p, g in zip(params, grads):
            p.grad = strategy.reduce(g.detach(), reduce_op="mean") if strategy.world_size > 1 else g.detach()
        if self.hparams.arch_grad_clip:  # PC-DARTS's ImageNet search clips the architecture gradient's norm
            torch.nn.utils.clip_grad_norm_(params, self.hparams.arch_grad_clip)
        if all(torch.isfinite(p.grad).all() for p in params):  # skip overflowed fp16 steps, as GradScaler does
            a_opt.optimizer.step()
        a_opt.optimizer.zero_grad(set_to_none=True)

    def _weight_step(self, x, y, w_opt) -> None:
        w_opt.zero_grad()
        logits = self.search_forward(x)
        loss = self.criterion(logits, y)
        # Only the weights' gradients: the official code's loss.backward() also fills the alphas', which its
        # architecture step zeroes unread. Skipping them saves a product and a sum per mixed-op term (DARTS's step
        # 3-5%); the alphas are left out of DDP for it (``__init__``).
        self.manual_backward(loss, inputs=[p for group in w_opt.param_groups for p in group["params"]])
        self.clip_gradients(w_opt, gradient_clip_val=self.hparams.grad_clip or None, gradient_clip_algorithm="norm")
        w_opt.step()
        self.train_top1(logits.detach(), y)
        self.log("train/loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        self.log("train/top1", self.train_top1, prog_bar=True, on_step=False, on_epoch=True)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        (x_w, y_w), (x_a, y_a) = batch["weights"], batch["arch"]
        x_w, x_a = x_w.contiguous(memory_format=self.memory_format), x_a.contiguous(memory_format=self.memory_format)
        w_opt, a_opt = self.optimizers()
        update_arch = self.current_epoch >= self.warmup_epochs
        if update_arch and self.arch_first:
            self._arch_step(x_w, y_w, x_a, y_a, w_opt, a_opt)
        self._weight_step(x_w, y_w, w_opt)
        if update_arch and not self.arch_first:
            self._arch_step(x_w, y_w, x_a, y_a, w_opt, a_opt)

    def on_train_epoch_end(self) -> None:
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        weights = self.edge_weights()
        for kind in CELL_TYPES:
            w = weights[kind]
            p = w / w.sum(-1, keepdims=True)
            entropy = float(-(p * np.log(np.clip(p, 1e-12, None))).sum(-1).mean())
            # the same on every rank (DDP averages the alphas' gradients); reduced all the same, as Lightning asks
            self.log(f"alpha/{kind}_entropy", entropy, sync_dist=True)
            for e, row in enumerate(w):
                for k, op in enumerate(PRIMITIVES):
                    self.log(f"alpha/{kind}/edge{e:02d}_{op}", float(row[k]), sync_dist=True)
        genotype = self.genotype()
        self.log("genotype/normal_skip_connects", float(sum(op == "skip_connect" for op, _ in genotype["normal"])),
                 sync_dist=True)

    def configure_optimizers(self):
        w_opt = self.w_optimizer_factory(self.supernet.weight_parameters())
        a_opt = self.a_optimizer_factory(self.supernet.arch_parameters())
        if self.w_scheduler_factory is None:
            return [w_opt, a_opt]
        return [w_opt, a_opt], [self.w_scheduler_factory(w_opt)]

    # -- the result --------------------------------------------------------------------------
    @torch.no_grad()
    def edge_weights(self) -> dict[str, np.ndarray]:
        """Per cell type, the (14, 8) weights the genotype is derived from (softmax(alpha), times the
        edge normalisation for PC-DARTS)."""
        scales = self.supernet.edge_scales()
        out = {}
        for kind, alpha in self.supernet.alphas().items():
            w = F.softmax(alpha.float(), dim=-1)
            if scales is not None:
                w = w * scales[kind].float()[:, None]
            out[kind] = w.cpu().numpy()
        return out

    def genotype(self) -> dict:
        w = self.edge_weights()
        return derive_genotype(w["normal"], w["reduce"])

    def architecture(self) -> Architecture:
        return self.space.architecture(self.genotype())

    def consistency_tensors(self) -> list[torch.Tensor]:
        return self.supernet.arch_parameters()

    def callbacks(self, run_dir: Path) -> list:
        return [GenotypeTrace(run_dir / "genotypes.jsonl")]

    def write_outputs(self, run_dir: Path, title: str) -> None:
        weights = self.edge_weights()
        genotype = self.genotype()
        for kind in CELL_TYPES:
            plot_cell(genotype, kind, run_dir / f"cell_{kind}.png")
        plot_edge_weights(weights, run_dir / "alphas.png", title=title)
        atomic_write_json(run_dir / "alphas.json", {k: v.tolist() for k, v in weights.items()})
