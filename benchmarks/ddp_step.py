"""Seconds per training step of the one-shot methods under Lightning's DDP on CPU: N processes against one.

    python benchmarks/ddp_step.py                         # darts, pcdarts, bignas; 1 and 2 processes
    python benchmarks/ddp_step.py --methods bignas --processes 1 2 --steps 8

Every process gets one thread and the same per-process batch (weak scaling), so with N processes on N free
cores the ideal step time equals the one-process time; ``efficiency`` = time(1 process) / time(N) says how much
of that DDP keeps (gradient all-reduce over gloo, the stop-decision and logging collectives, the Python
overhead of the wrapper). One process runs without DDP. DARTS / PC-DARTS: C=16, 8 cells, 32x32 inputs;
BigNAS: its default space at its resolutions; random data (no loading cost). The median step after
``--warmup`` steps, timed on rank 0; also the DDP warnings seen (goal: none).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import torch
from gpu_check import Repeat  # (this script's folder is on the path when it runs)

METHODS = ("darts", "pcdarts", "bignas")


def build(method: str, batch: int):
    from omegaconf import OmegaConf

    from lsnas.methods.bignas import BigNAS
    from lsnas.methods.oneshot import DARTS, PCDARTS

    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    if method == "bignas":
        from hydra import compose, initialize_config_dir

        with initialize_config_dir(os.path.join(os.path.dirname(__file__), "..", "conf"), version_base=None):
            space = OmegaConf.to_container(compose("search", ["method=bignas"]).space, resolve=True)
        return BigNAS(10, (3, 32, 32), space, optimizer=lambda p: torch.optim.SGD(p, lr=0.1)), (x, y)
    space = {"name": "darts", "network": "cifar", "init_channels": 16, "layers": 8}
    cls, kwargs = (DARTS, {"order": 1}) if method == "darts" else (PCDARTS, {"partial_channels": 4, "fuse_edges": True})
    m = cls(num_classes=10, input_shape=(3, 32, 32), space=space, **kwargs,
            w_optimizer=lambda p: torch.optim.SGD(p, lr=0.025, momentum=0.9, weight_decay=3e-4),
            a_optimizer=lambda p: torch.optim.Adam(p, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3))
    return m, {"weights": (x, y), "arch": (x, y)}


def one(method: str, processes: int, batch: int, steps: int, warmup: int) -> dict | None:
    import lightning as L

    torch.set_num_threads(1)
    module, data = build(method, batch)
    times: list[float] = []

    class StepTimer(L.Callback):
        def on_train_batch_start(self, trainer, *args):
            self.t = time.perf_counter()

        def on_train_batch_end(self, trainer, *args):
            times.append(time.perf_counter() - self.t)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy = "auto" if processes == 1 else "ddp_find_unused_parameters_true" if method == "bignas" else "ddp"
        trainer = L.Trainer(accelerator="cpu", devices=processes, strategy=strategy, max_steps=warmup + steps,
                            logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                            callbacks=[StepTimer()])
        loader = torch.utils.data.DataLoader(Repeat(data, warmup + steps), batch_size=None)
        trainer.fit(module, train_dataloaders=loader)
    if trainer.global_rank:
        return None
    ddp = sorted({str(w.message).splitlines()[0][:120] for w in caught
                  if "DDP" in str(w.message) or "bucket" in str(w.message) or "stride" in str(w.message)})
    return {"method": method, "processes": processes, "s_per_step": statistics.median(times[warmup:]),
            "ddp_warnings": ddp}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--processes", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--batch", type=int, default=32, help="per process")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # Lightning starts ranks > 0 by running this same command again
        r = one(args.methods[0], args.processes[0], args.batch, args.steps, args.warmup)
        if r is not None:
            print(json.dumps(r), flush=True)
        return
    print(f"{os.cpu_count()} cores; 1 thread and batch {args.batch} per process; median of {args.steps} steps "
          f"after {args.warmup}")
    print(f"{'method':8s} {'processes':>9s} {'s/step':>8s} {'efficiency':>10s}  DDP warnings")
    for method in args.methods:
        base = None
        for n in args.processes:
            cmd = [sys.executable, __file__, "--one", "--methods", method, "--processes", str(n),
                   "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
            lines = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.splitlines()
            r = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
            base = base or r["s_per_step"]
            print(f"{method:8s} {n:9d} {r['s_per_step']:8.3f} {base / r['s_per_step']:10.2f}  "
                  f"{'; '.join(r['ddp_warnings']) or 'none'}", flush=True)


if __name__ == "__main__":
    main()
