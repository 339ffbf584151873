"""The LightningModule that trains a final (discrete) architecture under a protocol."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from lsnas.training.regularizers import cutout
from lsnas.training.schedules import scale_lr


def accuracy_metrics(num_classes: int, prefix: str) -> MetricCollection:
    return MetricCollection({"top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
                             "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")},
                            prefix=prefix)


class PerClassAccuracy(Metric):
    """Top-1 accuracy of each class with its support (summed across ranks), for long-tailed data
    (ImageNet-22K) where the mean hides the tail. Classes absent from the data have support 0."""

    full_state_update = False

    def __init__(self, num_classes: int):
        super().__init__()
        self.add_state("correct", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("support", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        hit = (logits.argmax(dim=1) == target).long()
        self.correct.index_add_(0, target, hit)
        self.support.index_add_(0, target, torch.ones_like(target))

    def compute(self) -> dict[str, torch.Tensor]:
        return {"correct": self.correct, "support": self.support}


class ClassificationModule(L.LightningModule):
    """Cross-entropy training with the DARTS extras: auxiliary loss, cutout, drop-path ramped linearly
    from 0 to ``drop_path_prob`` over the epochs, label smoothing. Optimiser and scheduler are partials
    from the protocol config. ``compile``: ``torch.compile``'s options for the network's forward in the training,
    validation and test steps (None: eager); the network itself is not wrapped, so checkpoints and state dicts
    are the same either way."""

    def __init__(self, net: nn.Module, num_classes: int, optimizer: Callable, scheduler: Callable | None = None,
                 label_smoothing: float = 0.0, aux_weight: float = 0.0, cutout: int = 0,
                 drop_path_prob: float = 0.0, arch: dict | None = None, batch_size: int | None = None,
                 lr_reference_batch: int | None = None, compile: dict | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")
        self.test_per_class = PerClassAccuracy(num_classes)
        self.per_class_result: dict[str, torch.Tensor] | None = None
        self._compiled_outputs = None  # made at setup when asked: a compiled function does not pickle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def setup(self, stage: str) -> None:
        if self.hparams.compile and self._compiled_outputs is None:
            # Dynamo's caches hold every compiled graph of this method, across instances: a multirun sweep training
            # one network after another in one process would soon reach its recompilation limit and run eager.
            torch._dynamo.reset()
            self._compiled_outputs = torch.compile(self._network_outputs, **self.hparams.compile)

    def _outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return (self._compiled_outputs or self._network_outputs)(x)

    def _network_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and, where the network has an auxiliary head, its logits (None outside training)."""
        if hasattr(self.net, "forward_with_aux"):
            return self.net.forward_with_aux(x)
        return self.net(x), None

    def on_train_epoch_start(self) -> None:
        if hasattr(self.net, "drop_path_prob"):
            self.net.drop_path_prob = self.hparams.drop_path_prob * self.current_epoch / self.trainer.max_epochs
            self.log("train/drop_path_prob", self.net.drop_path_prob, on_step=False, on_epoch=True)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        x = cutout(x, self.hparams.cutout)  # on the device, after normalisation, as DARTS
        logits, logits_aux = self._outputs(x)
        loss = self.criterion(logits, y)
        if logits_aux is not None and self.hparams.aux_weight > 0:
            loss = loss + self.hparams.aux_weight * self.criterion(logits_aux, y)
        self.train_top1(logits, y)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        self.log("train/top1", self.train_top1, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def _eval_step(self, batch, metrics: MetricCollection, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self._outputs(x)[0]
        self.log(f"{stage}/loss", self.criterion(logits, y), on_epoch=True, sync_dist=True)
        metrics(logits, y)
        self.log_dict(metrics, prog_bar=stage == "val", on_epoch=True)
        return logits

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        logits = self._eval_step(batch, self.test_metrics, "test")
        self.test_per_class.update(logits, batch[1])

    def on_test_epoch_start(self) -> None:
        self.test_per_class.reset()

    def on_test_epoch_end(self) -> None:
        result = {k: v.cpu() for k, v in self.test_per_class.compute().items()}
        present = result["support"] > 0
        class_mean = (result["correct"][present].double() / result["support"][present]).mean()
        # the metric's states are already summed across ranks, so every rank holds the same value
        self.log("test/top1_class_mean", float(class_mean), sync_dist=True)
        self.per_class_result = result

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.hparams.lr_reference_batch:  # the protocol's lr is for that many images per step
            scale_lr(optimizer, self.hparams.batch_size, self.trainer, self.hparams.lr_reference_batch)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "epoch"}}
