"""BigNAS's coarse-to-fine selection of children under MACs targets, as a multi-trial strategy.

Coarse: a grid of skeletons, each a resolution with one level of depth, width and kernel applied to every
stage (depth at its minimum, middle or maximum, widths and kernels at their minimum or maximum), so the grid
spans the space's cost range; skeletons above the largest target are not evaluated. Fine: for each target in
turn, ``num_fine`` one-step mutations (``space.mutate``) of the best child found so far within the target,
each kept within it. Every proposal is tagged with its phase and, in the fine phase, its target. A child's MACs
are counted on the network it builds (``count_macs``: torch's flop counter) for ``num_classes`` outputs.
"""

from __future__ import annotations

import itertools
import random

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods.multitrial.strategy import DONE, Proposal, SearchState, Strategy
from lsnas.spaces.bignas import BigNASSpace
from lsnas.training.complexity import count_macs

DEPTH_LEVELS, WIDTH_LEVELS, KERNEL_LEVELS = (0.0, 0.5, 1.0), (0.0, 1.0), (0.0, 1.0)


def skeleton(space: BigNASSpace, resolution: int, depth: float, width: float, kernel: float) -> Architecture:
    def level(choices, x):
        return choices[int(round(x * (len(choices) - 1)))]

    return space.architecture({"resolution": resolution, "widths": [level(c, width) for c in space.widths],
                               "depths": [level(c, depth) for c in space.depths],
                               "kernels": [level(c, kernel) for c in space.kernels]})


class CoarseToFine(Strategy):
    requires = ("mutate",)

    def __init__(self, targets: list[float], num_fine: int = 10, num_classes: int = 1000, in_channels: int = 3,
                 mutation_tries: int = 200, num_trials: int | None = None):
        if not targets or any(t <= 0 for t in targets):
            raise ConfigError(f"method.selection.targets are MACs budgets (> 0), got {targets}")
        self.targets = sorted(float(t) for t in targets)
        self.num_fine, self.num_classes, self.in_channels = int(num_fine), int(num_classes), int(in_channels)
        self.mutation_tries = int(mutation_tries)
        self._macs: dict[str, int] = {}
        super().__init__(num_trials or 1)  # the real budget is known once the grid is (check_space)

    def check_space(self, space) -> None:
        if not isinstance(space, BigNASSpace):
            raise ConfigError(f"the coarse-to-fine selection needs space=bignas_mbconv, not {space.name!r}")
        super().check_space(space)
        self.num_trials = len(self.grid(space)) + self.num_fine * len(self.targets)

    def macs(self, arch: Architecture) -> int:
        if arch.digest not in self._macs:
            space = BigNASSpace.single(arch.genotype)
            net = space.build(arch, self.num_classes, (self.in_channels, 8, 8))
            size = arch.genotype["resolution"]
            self._macs[arch.digest] = count_macs(net, (self.in_channels, size, size))
        return self._macs[arch.digest]

    def grid(self, space: BigNASSpace) -> list[Architecture]:
        """The coarse skeletons within the largest target, cheapest first."""
        archs = {}
        for r, d, w, k in itertools.product(space.resolutions, DEPTH_LEVELS, WIDTH_LEVELS, KERNEL_LEVELS):
            arch = skeleton(space, r, d, w, k)
            if self.macs(arch) <= self.targets[-1]:
                archs.setdefault(arch.digest, arch)
        if not archs:
            raise ConfigError(f"no skeleton of the space fits the largest MACs target {self.targets[-1]:,.0f} (the "
                              f"smallest child has {self.macs(space.architecture(space.min_genotype())):,}); raise "
                              "method.selection.targets")
        return sorted(archs.values(), key=self.macs)

    def best_within(self, state: SearchState, target: float):
        fits = [t for t in state.completed() if self.macs(t.arch) <= target]
        return max(fits, key=lambda t: (t.score, -t.k), default=None)

    def ask(self, state: SearchState, rng: random.Random):
        seen = state.seen()
        for arch in self.grid(state.space):
            if arch.digest not in seen:
                return Proposal(arch, {"phase": "coarse", "macs": self.macs(arch)})
        if state.num_pending:
            return None  # the fine phase starts from the finished grid
        for target in self.targets:
            fine = [t for t in state.trials if t.tags.get("phase") == "fine" and t.tags.get("target") == target]
            if len(fine) >= self.num_fine:
                continue
            parent = self.best_within(state, target)
            if parent is None:  # nothing evaluated fits this target
                continue
            for _ in range(self.mutation_tries):
                child = state.space.mutate(parent.arch, rng)
                if child.digest not in seen and self.macs(child) <= target:
                    return Proposal(child, {"phase": "fine", "target": target, "parent": parent.k,
                                            "macs": self.macs(child)})
            # no unseen neighbour within the target this time: the next target
        return DONE
