"""torch.compile against eager: seconds per training step of the PC-DARTS search supernet and of a final network.

    python benchmarks/compile_step.py                        # both, eager and compiled, batch 32
    python benchmarks/compile_step.py --what supernet --batch 64

``supernet``: the PC-DARTS CIFAR supernet (C=16, 8 cells, K=4, fused edges, channels_last), one weight step
(forward, backward, SGD). ``final``: DARTS_V2's CIFAR network as train.py builds it under protocol=darts_cifar
(C=36, 20 cells, auxiliary head), one SGD step. 32x32 random data. Each (what, mode) runs in a fresh process;
it prints the first step (for compiled: the compilation) and the median of the steps after it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

import torch


def network(what: str) -> torch.nn.Module:
    if what == "supernet":
        from lsnas.spaces.darts.supernet import DartsSupernet

        net = DartsSupernet(10, (3, 32, 32), init_channels=16, layers=8, partial_k=4, edge_normalization=True,
                            fuse_edges=True)
        return net.to(memory_format=torch.channels_last)
    from gpu_check import compose  # (this script's folder is on the path when it runs)

    from lsnas.arch import resolve_arch
    from lsnas.training.runner import build_network

    cfg = compose("arch=darts_v2", "dataset=cifar10", "protocol=darts_cifar", "logger=none")
    return build_network(resolve_arch(cfg.arch), SimpleNamespace(num_classes=10, input_shape=(3, 32, 32)),
                         cfg.protocol)


def one(what: str, compiled: bool, batch: int, steps: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = network(what)
    model = torch.compile(net) if compiled else net
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last if what == "supernet"
                                                   else torch.contiguous_format)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        torch.nn.functional.cross_entropy(logits, y).backward()
        opt.step()

    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return {"what": what, "compiled": compiled, "first_s": first, "s_per_step": statistics.median(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", nargs="+", default=["supernet", "final"], choices=["supernet", "final"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", choices=["eager", "compiled"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.what[0], args.one == "compiled", args.batch, args.steps, args.threads)))
        return
    print(f"batch {args.batch}, {args.threads} threads, median of {args.steps} steps after the first")
    print(f"{'network':9s} {'mode':9s} {'first step s':>12s} {'s / step':>9s}")
    for what in args.what:
        for mode in ("eager", "compiled"):
            cmd = [sys.executable, __file__, "--one", mode, "--what", what, "--batch", str(args.batch),
                   "--steps", str(args.steps), "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print(f"{what:9s} {mode:9s} failed: {out.stderr.strip().splitlines()[-1][:100]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{what:9s} {mode:9s} {r['first_s']:12.1f} {r['s_per_step']:9.3f}", flush=True)


if __name__ == "__main__":
    main()
