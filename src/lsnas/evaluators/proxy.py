"""Score a candidate by a training-free proxy on a few training minibatches (``evaluator=proxy``).

The network is built as ``protocol.model`` describes it and initialised from the trial's seed; the
batches are drawn from the training split (never validation or test) with ``data_seed``, the same for every
candidate. The score is ``sign * value`` of ``proxy`` (so a higher score is always better; ``ntk_cond``'s
sign is -1), averaged over ``num_batches``; the proxies named in ``also`` are recorded beside it, so one
search measures several.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from lsnas.arch import Architecture
from lsnas.evaluators.base import EVALUATORS, Evaluator, Result, TrialContext
from lsnas.evaluators.train import build_candidate
from lsnas.proxies import get_proxy


@EVALUATORS.register("proxy")
class ProxyEvaluator(Evaluator):
    def __init__(self, dataset: dict, protocol: dict, proxy: str = "lga", also: list[str] | None = None,
                 batch_size: int = 64, num_batches: int = 1, data_seed: int = 0, bn_mode: str = "train"):
        if bn_mode not in ("train", "eval"):
            raise ValueError(f"evaluator.bn_mode must be train or eval, got {bn_mode!r}")
        for name in (proxy, *(also or [])):
            get_proxy(name)  # an unknown name fails at start-up, listing the known ones
        self.dataset, self.protocol, self.proxy, self.also = dataset, protocol, proxy, list(also or [])
        self.batch_size, self.num_batches, self.data_seed, self.bn_mode = batch_size, num_batches, data_seed, bn_mode

    def batches(self, datamodule) -> list[tuple[torch.Tensor, torch.Tensor]]:
        datamodule.setup("fit")
        order = np.random.default_rng(self.data_seed).permutation(len(datamodule.train_set))
        size = self.batch_size
        return [default_collate([datamodule.train_set[int(i)] for i in order[b * size:(b + 1) * size]])
                for b in range(self.num_batches)]

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        torch.manual_seed(ctx.seed)
        datamodule, net, cost = build_candidate(self.dataset, self.protocol, arch, self.batch_size)
        net.train(self.bn_mode == "train")
        batches = self.batches(datamodule)  # the same minibatches for every proxy
        values = {name: float(np.mean([get_proxy(name)(net, x, y) for x, y in batches]))
                  for name in (self.proxy, *self.also)}
        metrics = {f"proxy/{name}": value for name, value in values.items()}
        return Result(score=get_proxy(self.proxy).sign * values[self.proxy], cost=cost, metrics=metrics)
