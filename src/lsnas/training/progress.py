"""A Rich progress bar that fits an 80-column terminal: a short bar, the time left, and the few metrics
that matter under short names (``loss 2.194 top1 0.188 val 0.125``)."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import (
    BatchesProcessedColumn,
    CustomBarColumn,
    RichProgressBarTheme,
)
from rich.progress import TextColumn, TimeRemainingColumn

# Logged name -> shown name; metrics logged with prog_bar=True under other names are shown as logged.
SHORT_NAMES = {"train/loss": "loss", "train/top1": "top1", "val/top1": "val", "val/top5": "val5",
               "val/loss": "val_loss"}
MAX_METRICS = 3


def short_metrics(items: dict) -> dict:
    """Drop Lightning's version number, prefer per-step over per-epoch values, shorten the names."""
    out = {}
    for key, value in items.items():
        if key == "v_num":
            continue
        base = key.removesuffix("_step").removesuffix("_epoch")
        if key.endswith("_epoch") and f"{base}_step" in items:
            continue
        out[SHORT_NAMES.get(base, base)] = value
    first = {name: i for i, name in enumerate(SHORT_NAMES.values())}  # loss, top1, val before the rest
    return dict(sorted(out.items(), key=lambda kv: first.get(kv[0], len(first)))[:MAX_METRICS])


class CompactProgressBar(RichProgressBar):
    def __init__(self, bar_width: int = 16, **kwargs):
        kwargs.setdefault("leave", True)
        kwargs.setdefault("theme", RichProgressBarTheme(metrics_format=".3f"))
        super().__init__(**kwargs)
        self.bar_width = bar_width

    def configure_columns(self, trainer) -> list:
        return [
            TextColumn("[progress.description]{task.description}"),
            CustomBarColumn(bar_width=self.bar_width, complete_style=self.theme.progress_bar,
                            finished_style=self.theme.progress_bar_finished, pulse_style=self.theme.progress_bar_pulse),
            BatchesProcessedColumn(style=self.theme.batch_progress),
            TimeRemainingColumn(compact=True),
        ]

    def get_metrics(self, trainer, pl_module) -> dict:
        return short_metrics(super().get_metrics(trainer, pl_module))
