"""PC-DARTS (Xu et al., 2020): partial channel connections and edge normalisation over DARTS."""

from __future__ import annotations

from lsnas.methods.oneshot.darts import DARTS


class PCDARTS(DARTS):
    """K=4 at CIFAR scale, K=2 at ImageNet scale; architecture updates start after a warm-up
    (15 of 50 epochs on CIFAR, 35 on ImageNet: ``warmup_fraction``)."""

    def __init__(self, *args, partial_channels: int = 4, **kwargs):
        self._partial_channels = partial_channels
        super().__init__(*args, **kwargs)

    def supernet_variant(self) -> dict:
        return {**super().supernet_variant(), "partial_k": self._partial_channels, "edge_normalization": True}
