"""Regularisers of the DARTS training protocols that act on batches."""

from __future__ import annotations

import torch


def cutout(images: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DARTS cutout on a batch: zero one ``length``-sided square per image, centred uniformly at random
    and clipped at the border (``mask[y - l//2 : y + l//2, x - l//2 : x + l//2] = 0``)."""
    if length <= 0:
        return images
    b, _, h, w = images.shape
    cy = torch.randint(h, (b, 1), device=images.device, generator=generator)
    cx = torch.randint(w, (b, 1), device=images.device, generator=generator)
    rows = torch.arange(h, device=images.device)[None]
    cols = torch.arange(w, device=images.device)[None]
    in_y = (rows >= cy - length // 2) & (rows < cy + length // 2)  # (b, h)
    in_x = (cols >= cx - length // 2) & (cols < cx + length // 2)  # (b, w)
    keep = ~(in_y[:, :, None] & in_x[:, None, :])
    return images * keep[:, None].to(images.dtype)
