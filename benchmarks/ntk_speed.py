"""Seconds and peak memory to compute the empirical NTK of a batch of 64 on a DARTS-space CIFAR network
(C=16, 8 cells, 32 px): lsnas's ``empirical_ntk`` (per-sample gradients under torch.func's vmap when BN is
in eval mode) against one backward pass per sample (the official code's way).

    python benchmarks/ntk_speed.py [--batch 64] [--chunk 0] [--repeats 3] [--bn eval|train] [--rows-per-pass 1]
    python benchmarks/ntk_speed.py --scaling    # the train-mode bound: a backward's cost per sample by batch size

Each way runs in its own process, so its peak memory (max RSS on CPU, max allocated on a GPU) is its own.
``--chunk`` bounds how many rows are computed at once (0: all), trading speed for memory. With BN in train
mode the samples are coupled and lsnas, too, takes one backward pass per row of the kernel (``--rows-per-pass``
rows at once: ``proxy.ntk_rows_per_pass``). The largest absolute difference between the two kernels, relative to
the largest entry, is printed too.

``--scaling`` prints why batching rows cannot beat the loop where a backward's cost per sample does not fall
with the batch size: each row's backward is a whole batch's (BN couples the samples), so r rows at once cost a
backward of r x the batch.
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


def network(device: str, train: bool) -> torch.nn.Module:
    from lsnas.spaces import get_space

    space = get_space("darts")
    torch.manual_seed(0)
    return space.build(space.sample(random.Random(0)), 10, (3, 32, 32), network="cifar", init_channels=16,
                       layers=8).to(device).train(train)


def scaling(device: str) -> None:
    """Seconds per sample of one backward pass by batch size, and one kernel row's backward against the summed
    batch's (BN in train mode)."""
    from lsnas.proxies.ntk import batch_statistics_only, ntk_parameters

    net = network(device, train=True)
    params = list(ntk_parameters(net).values())
    print(f"BN in train mode, DARTS CIFAR network C=16, 8 cells, {device}, best of 3")
    for batch in (64, 128, 256, 512):
        x = torch.randn(batch, 3, 32, 32, device=device)
        with batch_statistics_only(net):
            logits = net(x).sum(1)
            rows, whole = [], []
            for _ in range(3):
                for target, times in ((logits[0], rows), (logits.sum(), whole)):
                    started = time.perf_counter()
                    torch.autograd.grad(target, params, retain_graph=True)
                    if device == "cuda":
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - started)
        print(f"batch {batch:4d}: backward of the batch {min(whole):7.3f} s ({min(whole) / batch * 1e3:5.2f} ms per "
              f"sample); backward of one kernel row {min(rows):7.3f} s", flush=True)


def measure(way: str, batch: int, chunk: int, repeats: int, bn: str, kernel_out: str | None = None,
            rows_per_pass: int = 1) -> dict:
    from lsnas.proxies.ntk import empirical_ntk, ntk_loop, ntk_parameters

    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = network(device, train=bn == "train")
    x = torch.randn(batch, 3, 32, 32, device=device)
    if way == "lsnas":
        def compute():
            return empirical_ntk(net, x, chunk_size=chunk or None, rows_per_pass=rows_per_pass)
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
    parser.add_argument("--rows-per-pass", type=int, default=1,
                        help="BN in train mode: kernel rows per batched backward (proxy.ntk_rows_per_pass)")
    parser.add_argument("--scaling", action="store_true", help="a backward's cost per sample by batch size")
    parser.add_argument("--way", choices=["lsnas", "loop"], help=argparse.SUPPRESS)  # one measurement (child)
    parser.add_argument("--kernel-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling:
        scaling("cuda" if torch.cuda.is_available() else "cpu")
        return
    if args.way:
        print(json.dumps(measure(args.way, args.batch, args.chunk, args.repeats, args.bn, args.kernel_out,
                                 args.rows_per_pass)))
        return
    rows, kernels = [], []
    with tempfile.TemporaryDirectory() as folder:
        for way in ("lsnas", "loop"):
            path = f"{folder}/{way}.pt"
            child = [sys.executable, __file__, "--way", way, "--batch", str(args.batch), "--chunk", str(args.chunk),
                     "--repeats", str(args.repeats), "--bn", args.bn, "--kernel-out", path,
                     "--rows-per-pass", str(args.rows_per_pass)]
            out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            kernels.append(torch.load(path, weights_only=True))
    per_pass = f", {args.rows_per_pass} rows per pass" if args.bn == "train" else ""
    print(f"NTK of a batch of {args.batch}, DARTS CIFAR network C=16, 8 cells ({rows[0]['weights']} weights in the "
          f"kernel), BN in {args.bn} mode{per_pass}, {rows[0]['device']}, best of {args.repeats}")
    for r in rows:
        print(f"{r['way']:<5} {r['seconds']:8.2f} s   peak {r['peak_bytes'] / 2**30:6.2f} GiB")
    print(f"speed-up of lsnas over the loop: {rows[1]['seconds'] / rows[0]['seconds']:.1f}x")
    fast, slow = kernels
    print(f"max |difference| / max |entry|: {float((fast - slow).abs().max() / slow.abs().max()):.1e}")


if __name__ == "__main__":
    main()
