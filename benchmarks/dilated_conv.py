"""Milliseconds per call of the DARTS dil_conv depthwise convolutions: torch's kernel against
``lsnas.spaces.darts.ops.dilated_conv2d`` (a dense conv of the pixels read, or of each dilation phase).

    python benchmarks/dilated_conv.py                  # the supernet's shapes at batch 32, channels-last
    python benchmarks/dilated_conv.py --batch 64 --contiguous

For each shape: forward + full backward (input and weight gradients: a weight step) and forward + backward to the
input only (an architecture step), median of ``--repeats`` calls after two warm-up calls, the two ways alternated
shape by shape in one process. Also checks that both give the same numbers.

glibc is told to keep freed memory (no mmap per large block, no trimming), as it ends up doing in a long search
process: otherwise a call's fresh multi-megabyte tensors are mapped anew each time and the page faults, not the
convolutions, dominate the small timings (up to 6x here).
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time

import torch
from torch.nn import functional as F

from lsnas.spaces.darts.ops import dilated_conv2d

# (channels, size, kernel, stride): the dil_conv ops of the CIFAR supernet (C=16, 8 cells) on normal edges
# (stride 1) at the three resolutions, and on reduction edges (stride 2).
SHAPES = [(16, 32, 3, 1), (16, 32, 5, 1), (32, 16, 3, 1), (32, 16, 5, 1), (64, 8, 3, 1), (64, 8, 5, 1),
          (32, 32, 3, 2), (32, 32, 5, 2), (64, 16, 3, 2), (64, 16, 5, 2)]


def median_ms(fn, repeats: int) -> float:
    fn(), fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--contiguous", action="store_true", help="NCHW instead of channels-last")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: no mmap per block below 1 GiB
        libc.mallopt(-1, 1 << 34)  # M_TRIM_THRESHOLD: keep freed memory
    except OSError:  # not glibc
        pass
    fmt = torch.contiguous_format if args.contiguous else torch.channels_last
    print(f"batch {args.batch}, {'NCHW' if args.contiguous else 'channels-last'}, {args.threads} threads, "
          f"ms per call (median of {args.repeats})")
    print(f"{'ch':>3s} {'px':>3s} {'k':>2s} {'s':>2s} | {'full bwd: torch':>15s} {'lsnas':>6s} {'x':>5s} | "
          f"{'input bwd: torch':>16s} {'lsnas':>6s} {'x':>5s} | max diff")
    for channels, size, kernel, stride in SHAPES:
        full, inp, diff = compare(args.batch, channels, size, kernel, stride, fmt, args.repeats)
        print(f"{channels:3d} {size:3d} {kernel:2d} {stride:2d} | {full['torch']:15.2f} {full['lsnas']:6.2f} "
              f"{full['torch'] / full['lsnas']:5.2f} | {inp['torch']:16.2f} {inp['lsnas']:6.2f} "
              f"{inp['torch'] / inp['lsnas']:5.2f} | {diff:.1e}", flush=True)


def compare(batch: int, channels: int, size: int, kernel: int, stride: int, fmt, repeats: int):
    """(full backward ms, input backward ms, each {'torch', 'lsnas'}), and the largest output difference."""
    dilation, padding = 2, kernel - 1  # DARTS's dil_conv: dilation 2, padding 2 (3x3) or 4 (5x5)
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(channels, 1, kernel, kernel, requires_grad=True)
    ways = {"torch": lambda t: F.conv2d(t, w, None, stride, padding, dilation, channels),
            "lsnas": lambda t: dilated_conv2d(t, w, None, (stride,) * 2, (padding,) * 2, (dilation,) * 2, channels)}
    g = torch.randn_like(ways["torch"](x))
    diff = (ways["torch"](x) - ways["lsnas"](x)).abs().max().item()
    full = {k: median_ms(lambda f=f: torch.autograd.backward(f(x), g), repeats) for k, f in ways.items()}
    inp = {k: median_ms(lambda f=f: torch.autograd.grad(f(x), x, g), repeats) for k, f in ways.items()}
    return full, inp, diff


if __name__ == "__main__":
    main()
