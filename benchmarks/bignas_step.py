"""Seconds and peak memory of one BigNAS sandwich step against four separate training steps of the same children.

    python benchmarks/bignas_step.py [--space table|small] [--resolution-scale 1.0] [--batch 32] [--steps 5]

The sandwich step (``BigNAS.sandwich_step``: biggest, smallest and two random children on one batch, their
gradients accumulated, then one optimiser step) is timed against the same four children trained as four
separate steps (zero_grad, forward, backward, step each; the children after the biggest learn from its soft
predictions in both). Each mode runs in a fresh process so that its peak memory is its own: CUDA's
max_memory_allocated on a GPU, the process's peak resident set on a CPU. ``--space small`` is the reduced
supernet of ``budget=small``; ``table`` is the paper's, at its resolutions times ``--resolution-scale``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from torch.nn import functional as F

SMALL = {"resolutions": [32, 40, 48], "depths": [[1, 2]] * 7,
         "widths": [[8, 16], [8, 16], [8, 16], [16, 24], [16, 24], [24, 32], [24, 32], [32, 40], [64, 72]]}


def measure(args) -> dict:
    from lsnas.methods.bignas import BigNAS
    from lsnas.methods.bignas.module import soft_cross_entropy
    from lsnas.spaces.bignas.space import TABLE

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    space = {"name": "bignas_mbconv", "_target_": "lsnas.spaces.bignas.BigNASSpace",
             **(SMALL if args.space == "small" else TABLE)}
    if args.space == "table":
        space["resolutions"] = [max(32, int(r * args.resolution_scale) // 8 * 8) for r in TABLE["resolutions"]]
    torch.manual_seed(0)
    m = BigNAS(1000 if args.space == "table" else 10, (3, 224, 224), space,
               optimizer=lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), weight_decay=0.0).to(device)
    m.supernet.train()
    opt = torch.optim.SGD(m.supernet.parameters(), lr=0.01, momentum=0.9)
    size = max(m.space.resolutions)
    x = torch.randn(args.batch, 3, size, size, device=device)
    y = torch.randint(0, m.supernet.classifier.out_features, (args.batch,), device=device)

    def sandwich(step):
        opt.zero_grad()
        m.sandwich_step(x, y, step)
        opt.step()

    def separate(step):
        soft = None
        for i, (_, genotype) in enumerate(m.sandwich(step)):
            opt.zero_grad()
            logits = m.child_forward(genotype, x)
            loss = F.cross_entropy(logits, y) if i == 0 else soft_cross_entropy(logits, soft)
            soft = F.softmax(logits.detach(), -1) if i == 0 else soft
            loss.backward()
            opt.step()

    run = sandwich if args.mode == "sandwich" else separate
    run(0)  # warm-up (allocator, oneDNN / cuDNN plans)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        run(step)
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": args.mode, "device": str(device), "seconds_per_step": (time.perf_counter() - started) / args.steps,
            "peak_bytes": peak, "supernet_params": sum(p.numel() for p in m.supernet.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=["table", "small"], default="small")
    parser.add_argument("--resolution-scale", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--mode", choices=["sandwich", "separate"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args)))
        return
    rows = []
    for mode in ("sandwich", "separate"):
        cmd = [sys.executable, __file__, "--mode", mode, "--space", args.space, "--batch", str(args.batch),
               "--steps", str(args.steps), "--resolution-scale", str(args.resolution_scale)]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1]))
    print(f"space {args.space}, batch {args.batch}, {args.steps} steps after one warm-up, {rows[0]['device']}, "
          f"{rows[0]['supernet_params']:,} supernet parameters\n")
    print("| mode | s / step | peak memory (MiB) |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['seconds_per_step']:.3f} | {r['peak_bytes'] / 2**20:.0f} |")


if __name__ == "__main__":
    main()
