"""A discrete DARTS cell built from a genotype (the official ``model.Cell``)."""

from __future__ import annotations

import torch
from torch import nn

from lsnas.spaces.darts.ops import FactorizedReduce, ReLUConvBN, drop_path, make_op, plus


class Cell(nn.Module):
    def __init__(self, genotype: dict, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        # A previous reduction halved s1 but not s0: bring s0 to s1's resolution.
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, 1, 0))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        kind = "reduce" if reduction else "normal"
        edges = genotype[kind]
        self.concat = list(genotype[f"{kind}_concat"])
        self.multiplier = len(self.concat)
        self.indices = [inp for _, inp in edges]
        # Only edges reading the cell inputs are strided in a reduction cell.
        self.ops = nn.ModuleList(make_op(op, c, 2 if reduction and inp < 2 else 1) for op, inp in edges)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float | torch.Tensor = 0.0) -> torch.Tensor:
        """``drop_prob``: a float, or under torch.compile a 0-d tensor (always applied, 0 keeping every path)."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        dropping = self.training and (torch.is_tensor(drop_prob) or drop_prob > 0.0)
        for node in range(len(self.ops) // 2):
            total = None
            for k in (2 * node, 2 * node + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                # Drop-path never drops an identity edge (official DARTS).
                if dropping and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = plus(total, h)
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)
