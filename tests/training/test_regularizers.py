import torch

from lsnas.training.regularizers import cutout


def test_cutout_zeros_one_clipped_square_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.ones(64, 3, 32, 32)
    out = cutout(x, 16, generator=g)
    zeros = (out[:, 0] == 0)
    assert (out[:, 0] == out[:, 1]).all()  # same square on every channel
    for mask in zeros:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert 0 < len(rows) <= 16 and 0 < len(cols) <= 16
        assert mask.sum() == len(rows) * len(cols)  # a rectangle (a square clipped at the border)
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
    assert (zeros.sum((1, 2)) == 256).any()  # some squares lie fully inside
    assert (zeros.sum((1, 2)) < 256).any()   # some are clipped


def test_cutout_length_zero_is_identity():
    x = torch.randn(2, 3, 8, 8)
    assert cutout(x, 0) is x
