"""What every one-shot method shares, whatever its space: a LightningModule that owns the space's supernet.

A method trains the supernet (``training_step``, manual optimisation) and says what the run's answer is:
``architecture()`` (the space decodes the supernet's state into an Architecture: DARTS's alphas, BigNAS's
biggest child), ``consistency_tensors()`` (what every rank must hold identically before it is written),
``callbacks(run_dir)`` (per-epoch traces) and ``write_outputs(run_dir, title)`` (its plots and files). The
runner (``lsnas.methods.oneshot.runner``) knows nothing more of it. ``needs_arch_split``: the method reads a
``weights`` and an ``arch`` half of the training set each step (bilevel methods), else plain batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lsnas.arch import Architecture
from lsnas.spaces import space_from_config
from lsnas.spaces.base import SearchSpace


class OneShotMethod(L.LightningModule):
    spaces: ClassVar[tuple[str, ...]] = ()
    needs_arch_split: ClassVar[bool] = False
    find_unused_parameters: ClassVar[bool] = False  # GDAS computes one op per edge

    def __init__(self, num_classes: int, input_shape: Sequence[int], space: dict | SearchSpace,
                 channels_last: bool = True):
        super().__init__()
        self.automatic_optimization = False
        # a space config with a _target_ arrives built (Hydra instantiates it with the method) and holds its own
        # settings; a plain one (darts: name and supernet settings) gives its settings to the supernet
        if isinstance(space, SearchSpace):
            self.space, supernet_kwargs = space, {}
        else:
            settings = dict(space)
            self.space = space_from_config(settings)
            supernet_kwargs = {} if settings.get("_target_") else {k: v for k, v in settings.items() if k != "name"}
        self.supernet = self.space.supernet(num_classes, tuple(input_shape), **supernet_kwargs,
                                            **self.supernet_variant())
        # NHWC: oneDNN's depthwise convolutions (and their backward) run ~2x faster on CPU; cuDNN likes it too.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.supernet.to(memory_format=self.memory_format)
        self.criterion = nn.CrossEntropyLoss()
        self.train_top1 = MulticlassAccuracy(num_classes, average="micro")
        self.val_top1 = MulticlassAccuracy(num_classes, average="micro")

    def supernet_variant(self) -> dict:
        """Extra keyword arguments of ``space.supernet`` that the method decides (PC-DARTS's partial channels)."""
        return {}

    def eval_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.search_forward(x)

    def _log_epoch(self, name: str, value) -> None:
        if self._trainer is not None:  # the step functions are also called directly (tests, benchmarks)
            self.log(name, value, on_step=False, on_epoch=True, sync_dist=True)  # each rank's own batches

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        x = x.contiguous(memory_format=self.memory_format)
        logits = self.eval_forward(x)
        self.val_top1(logits, y)
        self.log("val/loss", self.criterion(logits, y), on_epoch=True, sync_dist=True)
        self.log("val/top1", self.val_top1, prog_bar=True, on_epoch=True)

    # -- the result --------------------------------------------------------------------------
    def architecture(self) -> Architecture:
        raise NotImplementedError

    def consistency_tensors(self) -> list[torch.Tensor]:
        return list(self.supernet.parameters())

    def callbacks(self, run_dir: Path) -> list:
        return []

    def write_outputs(self, run_dir: Path, title: str) -> None:
        """The method's own files in the run dir (rank 0), besides arch.json and the summary."""
