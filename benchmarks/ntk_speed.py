"""Seconds and peak memory to compute the empirical NTK of a batch of 64 on a DARTS-space CIFAR network
(C=16, 8 cells, 32 px): lsnas's ``empirical_ntk`` (per-sample gradients under torch.func's vmap when BN is
in eval mode) against one backward pass per sample (the official code's way).

    python benchmarks/ntk_speed.py [--batch 64] [--chunk 0] [--repeats 3] [--bn eval|train]

Each way runs in its own process, so its peak memory (max RSS on CPU, max allocated on a GPU) is its own.
``--chunk`` bounds how many rows are computed at once (0: all), trading speed for memory. With BN in train
mode the samples are coupled and lsnas, too, takes one backward pass per sample. The largest absolute
difference between the two kernels, relative to the largest entry, is printed too.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time

import torch


def measure(way: str, batch: int, chunk: int, repeats: int, bn: str, kernel_out: str | None = None) -> dict:
    from lsnas.proxies.ntk import empirical_ntk, ntk_loop, ntk_parameters
    from lsnas.spaces import get_space

    device = "cuda" if torch.cuda.is_available() else "cpu"
    space = get_space("darts")
    torch.manual_seed(0)
    net = space.build(space.sample(random.Random(0)), 10, (3, 32, 32), network="cifar", init_channels=16,
                      layers=8).to(device).train(bn == "train")
    x = torch.randn(batch, 3, 32, 32, device=device)
    if way == "lsnas":
        def compute():
            return empirical_ntk(net, x, chunk_size=chunk or None)
    else:
        def compute():
            return ntk_loop(net, x)
    theta = compute()  # warm-up
    if kernel_out:
        torch.save(theta.cpu(), kernel_out)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        compute()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"way": way, "bn": bn, "device": device, "seconds": min(times), "peak_bytes": peak,
            "weights": sum(p.numel() for p in ntk_parameters(net).values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bn", choices=["eval", "train"], default="eval",
                        help="BN mode: eval (samples independent) or train (batch statistics couple them)")
    parser.add_argument("--way", choices=["lsnas", "loop"], help=argparse.SUPPRESS)  # one measurement (child)
    parser.add_argument("--kernel-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:
        print(json.dumps(measure(args.way, args.batch, args.chunk, args.repeats, args.bn, args.kernel_out)))
        return
    rows, kernels = [], []
    with tempfile.TemporaryDirectory() as folder:
        for way in ("lsnas", "loop"):
            path = f"{folder}/{way}.pt"
            child = [sys.executable, __file__, "--way", way, "--batch", str(args.batch), "--chunk", str(args.chunk),
                     "--repeats", str(args.repeats), "--bn", args.bn, "--kernel-out", path]
            out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            kernels.append(torch.load(path, weights_only=True))
    print(f"NTK of a batch of {args.batch}, DARTS CIFAR network C=16, 8 cells ({rows[0]['weights']} weights in the "
          f"kernel), BN in {args.bn} mode, {rows[0]['device']}, best of {args.repeats}")
    for r in rows:
        print(f"{r['way']:<5} {r['seconds']:8.2f} s   peak {r['peak_bytes'] / 2**30:6.2f} GiB")
    print(f"speed-up of lsnas over the loop: {rows[1]['seconds'] / rows[0]['seconds']:.1f}x")
    fast, slow = kernels
    print(f"max |difference| / max |entry|: {float((fast - slow).abs().max() / slow.abs().max()):.1e}")


if __name__ == "__main__":
    main()
