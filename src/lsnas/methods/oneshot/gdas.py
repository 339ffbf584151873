"""GDAS (Dong & Yang, 2019): hard Gumbel-softmax sampling, one op computed per edge."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lsnas.methods.oneshot.bilevel import BilevelMethod


def hard_gumbel_softmax(logits: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot samples (straight-through: gradients of the soft sample) and their indices, per row."""
    while True:
        gumbels = -torch.empty_like(logits).exponential_().log()
        probs = F.softmax((logits.log_softmax(dim=-1) + gumbels) / tau, dim=-1)
        if torch.isfinite(gumbels).all() and torch.isfinite(probs).all():
            break
    index = probs.argmax(dim=-1)
    hard = F.one_hot(index, logits.shape[-1]).to(probs.dtype)
    return hard - probs.detach() + probs, index


def temperature(epoch: int, epochs: int, tau_max: float, tau_min: float) -> float:
    """Linear annealing from tau_max (first epoch) to tau_min (last epoch)."""
    return tau_max - (tau_max - tau_min) * epoch / max(1, epochs - 1)


class GDAS(BilevelMethod):
    arch_first = False  # the official GDAS updates weights, then the architecture
    find_unused_parameters = True

    def __init__(self, *args, tau_max: float = 10.0, tau_min: float = 0.1, **kwargs):
        super().__init__(*args, **kwargs)
        self.tau_max, self.tau_min = tau_max, tau_min
        self.tau = tau_max

    def on_train_epoch_start(self) -> None:
        self.tau = temperature(self.current_epoch, self.trainer.max_epochs, self.tau_max, self.tau_min)
        self.log("search/tau", self.tau, sync_dist=True)  # the same on every rank

    def search_forward(self, x):
        weights, sampled = {}, {}
        for kind, alpha in self.supernet.alphas().items():  # one sample per forward, shared by all cells
            weights[kind], index = hard_gumbel_softmax(alpha, self.tau)
            sampled[kind] = index.tolist()
        return self.supernet(x, weights, sampled)

    def eval_forward(self, x):
        """The current argmax architecture (deterministic)."""
        weights, sampled = {}, {}
        for kind, alpha in self.supernet.alphas().items():
            index = alpha.argmax(dim=-1)
            weights[kind] = F.one_hot(index, alpha.shape[-1]).to(alpha.dtype)
            sampled[kind] = index.tolist()
        return self.supernet(x, weights, sampled)
