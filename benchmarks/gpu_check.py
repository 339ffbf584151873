"""The GPU check: what a session with a GPU runs once (about 5 minutes on one GPU) and records in docs/benchmarks.md.

    python benchmarks/gpu_check.py                       # on the first GPU
    python benchmarks/gpu_check.py --device cpu --tiny   # the same code paths, tiny sizes (tests run this)
    python benchmarks/gpu_check.py --sections 3 5        # only those (a run a time limit cut short)

It prints, each section as soon as it is measured:
1. the one-shot search step (architecture step + weight step, first order) of DARTS and PC-DARTS on the CIFAR
   supernet (C=16, 8 cells, 32 px) at batch 64 and 256, in fp32 and bf16-mixed: seconds per step, peak memory,
   and the bf16 speed-up (goal: >= 1.8x); also the bf16 step with ``method.module.fuse_edges`` flipped
   (default: on for PC-DARTS, off for DARTS, chosen on CPU), to decide that setting's default on GPUs;
2. the projected wall time of the full PC-DARTS CIFAR-10 search: 50 epochs of 25,000 / 256 steps at the
   bf16 step time (goal: < 1 GPU-hour);
3. final-training throughput in images/s, bf16-mixed: DARTS_V2's ImageNet network at 224 px and timm's ResNet-50
   through lsnas's training path (train.py's module, Trainer, callbacks and precision), next to the same timm
   model in a plain PyTorch loop (goal: lsnas within 10% of it); ResNet-50 again with ``compile.enabled=true``
   and the seconds its first steps took to compile, to decide that setting's default on GPUs;
4. one step of DDP on one device with every warning it raises (goal: none);
5. the empirical NTK with BN in train mode on a DARTS CIFAR network (C=16, 8 cells) at batch 64 and 256: the
   official loop (one backward pass per row) against ``proxy.ntk_rows_per_pass`` rows per batched backward,
   seconds and peak memory (goal: >= 5x the loop at batch 64 within 4 GB), to decide that setting's GPU default.
Random data throughout: the numbers are the computation's, not a loader's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def autocast(device: torch.device, precision: str):
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


class Repeat(torch.utils.data.IterableDataset):
    """The same batch ``times`` times (no loading cost); use with ``DataLoader(..., batch_size=None)``."""

    def __init__(self, batch, times: int):
        self.batch, self.times = batch, times

    def __iter__(self):
        return iter([self.batch] * self.times)

    def __len__(self) -> int:
        return self.times


def timed(step, device: torch.device, steps: int) -> float:
    step()  # warm-up: allocator, cuDNN / oneDNN algorithm choice, optimiser state
    sync(device)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# -- 1. the search step --------------------------------------------------------------------------------------------
def search_step(method: str, batch: int, precision: str, device: torch.device, tiny: bool, steps: int,
                fuse_edges: bool | None = None) -> dict:
    from lsnas.methods.oneshot import DARTS, PCDARTS

    torch.manual_seed(0)
    cls, extra = (DARTS, {}) if method == "darts" else (PCDARTS, {"partial_channels": 4})
    fuse_edges = (method == "pcdarts") if fuse_edges is None else fuse_edges  # None: the method config's default
    space = {"name": "darts", "network": "cifar", "init_channels": 4 if tiny else 16, "layers": 3 if tiny else 8}
    m = cls(num_classes=10, input_shape=(3, 32, 32), space=space, order=1,
            w_optimizer=lambda p: torch.optim.SGD(p, lr=0.025, momentum=0.9, weight_decay=3e-4),
            a_optimizer=lambda p: torch.optim.Adam(p, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3),
            fuse_edges=fuse_edges, **extra)
    m.to(device)
    net, fmt = m.supernet, m.memory_format
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    x_w, x_a = (torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=fmt) for _ in range(2))
    y_w, y_a = (torch.randint(0, 10, (batch,), device=device) for _ in range(2))

    def step():  # OneShotMethod.training_step's mathematics, under the precision Lightning would apply
        with autocast(device, precision):
            grads = m.arch_gradients(x_w, y_w, x_a, y_a, w_opt)
        for p, g in zip(net.arch_parameters(), grads):
            p.grad = g
        a_opt.step()
        a_opt.zero_grad(set_to_none=True)
        w_opt.zero_grad()
        with autocast(device, precision):
            loss = m.criterion(m.search_forward(x_w), y_w)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
        w_opt.step()

    reset_peak(device)
    seconds = timed(step, device, steps)
    return {"method": method, "batch": batch, "precision": precision, "s_per_step": seconds,
            "peak_gib": peak_gib(device), "alphas_fp32": all(p.dtype == torch.float32 for p in net.arch_parameters())}


# -- 3. final-training throughput ----------------------------------------------------------------------------------
def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import lsnas.cli  # noqa: F401  (the resolvers the configs use)

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides))


class Throughput:
    """A callback timing the training batches after the first ``warmup``."""

    def __init__(self, warmup: int):
        import lightning as L

        class _Timer(L.Callback):
            def __init__(inner):
                inner.fit_started, inner.started, inner.seen, inner.images = None, None, 0, 0

            def on_train_start(inner, trainer, pl_module):
                inner.fit_started = time.perf_counter()

            def on_train_batch_start(inner, trainer, pl_module, batch, batch_idx):
                if batch_idx == warmup:
                    sync(pl_module.device)
                    inner.started = time.perf_counter()

            def on_train_batch_end(inner, trainer, pl_module, outputs, batch, batch_idx):
                if batch_idx >= warmup:
                    inner.images += len(batch[1])

        self.callback = _Timer()

    def images_per_s(self, device: torch.device) -> float:
        sync(device)
        return self.callback.images / (time.perf_counter() - self.callback.started)

    @property
    def warmup_s(self) -> float:
        """Seconds of the warm-up steps (with torch.compile: mostly the compilation)."""
        return self.callback.started - self.callback.fit_started


def lsnas_throughput(arch_name: str, resolution: int, batch: int, steps: int, device: torch.device,
                     precision: str, tiny: bool, compile: dict | None = None) -> tuple[float, float]:
    """Images/s of train.py's training path (its module, make_trainer's Trainer and callbacks) on random data, and
    the seconds its warm-up steps took; ``compile``: torch.compile's options (train.py's ``compile`` setting)."""
    from lsnas.arch import resolve_arch
    from lsnas.training.runner import build_network, make_module
    from lsnas.training.trainer import make_trainer

    protocol = ["protocol=darts_imagenet"] + (["protocol.model.init_channels=8", "protocol.model.layers=5",
                                               "protocol.model.auxiliary=false"] if tiny
                                              else [])
    cfg = compose(f"arch={arch_name}", "dataset=imagenet1k", *protocol, "logger=none", f"trainer.precision={precision}",
                  f"trainer.accelerator={device.type}", "trainer.devices=1")
    arch = resolve_arch(cfg.arch)
    data = SimpleNamespace(num_classes=1000 if not tiny else 10, input_shape=(3, resolution, resolution))
    net = build_network(arch, data, cfg.protocol)
    module = make_module(net, data.num_classes, cfg.protocol, arch, compile=compile)
    warmup = 3
    x = torch.randn(batch, 3, resolution, resolution)
    y = torch.randint(0, data.num_classes, (batch,))
    many = torch.utils.data.DataLoader(Repeat((x, y), warmup + steps), batch_size=None)
    timer = Throughput(warmup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tempfile

        with tempfile.TemporaryDirectory() as run_dir:
            trainer, _ = make_trainer(cfg, run_dir, max_epochs=1, callbacks=[timer.callback], checkpoints=False,
                                      progress=False, gradient_clip_val=cfg.protocol.grad_clip or None,
                                      enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
            trainer.fit(module, train_dataloaders=many)
    return timer.images_per_s(device), timer.warmup_s


def plain_timm_throughput(resolution: int, batch: int, steps: int, device: torch.device, precision: str,
                          tiny: bool) -> float:
    """Images/s of timm's ResNet-50 in a plain loop: forward, cross-entropy, backward, SGD step."""
    import timm

    model = timm.create_model("resnet18" if tiny else "resnet50", num_classes=10 if tiny else 1000).to(device)
    model = model.to(memory_format=torch.channels_last) if device.type == "cuda" else model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-5)
    x = torch.randn(batch, 3, resolution, resolution, device=device)
    y = torch.randint(0, 10 if tiny else 1000, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return batch / timed(step, device, steps)


# -- 5. the NTK with BN in train mode ---------------------------------------------------------------------------------
def ntk_train_bn(batch: int, rows_per_pass: int, device: torch.device, tiny: bool) -> dict:
    import random

    from lsnas.proxies.ntk import empirical_ntk
    from lsnas.spaces import get_space

    space = get_space("darts")
    torch.manual_seed(0)
    channels, layers = (4, 3) if tiny else (16, 8)
    net = space.build(space.sample(random.Random(0)), 10, (3, 32, 32), network="cifar", init_channels=channels,
                      layers=layers).to(device).train()
    x = torch.randn(batch, 3, 32, 32, device=device)
    empirical_ntk(net, x, rows_per_pass=rows_per_pass)  # warm-up
    sync(device)
    reset_peak(device)
    started = time.perf_counter()
    theta = empirical_ntk(net, x, rows_per_pass=rows_per_pass)
    sync(device)
    return {"seconds": time.perf_counter() - started, "peak_gib": peak_gib(device), "theta": theta.cpu()}


# -- 4. DDP on one device --------------------------------------------------------------------------------------------
def ddp_warnings(device: torch.device, tiny: bool) -> list[str]:
    """The warnings of a few DDP steps of a one-shot search on one device (one process)."""
    import lightning as L

    from lsnas.methods.oneshot import DARTS

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    space = {"name": "darts", "network": "cifar", "init_channels": 4 if tiny else 16, "layers": 3 if tiny else 8}
    m = DARTS(num_classes=10, input_shape=(3, 32, 32), space=space, order=1,
              w_optimizer=lambda p: torch.optim.SGD(p, lr=0.025, momentum=0.9),
              a_optimizer=lambda p: torch.optim.Adam(p, lr=3e-4))
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    batch = {"weights": (x, y), "arch": (x, y)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = L.Trainer(accelerator=device.type, devices=1, strategy="ddp", max_steps=3, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, num_sanity_val_steps=0)
        trainer.fit(m, train_dataloaders=torch.utils.data.DataLoader(Repeat(batch, 3), batch_size=None))
    ignored = ("does not have many workers", "smaller than the logging interval", "LeafSpec", "is deprecated",
               "limit_val_batches", "no `val_dataloader`", "`IterableDataset` has `__len__`")  # (this check's own)
    messages = [str(w.message) for w in caught if not any(text in str(w.message) for text in ignored)]
    grouped = [m for m in messages if "when logging on epoch level in distributed setting" in m]
    found = sorted({m.splitlines()[0][:160] for m in messages if m not in grouped})
    if grouped:
        found.append(f"{len(set(grouped))} metrics logged per epoch without sync_dist=True (Lightning's advice)")
    return found


def search_steps(device: torch.device, tiny: bool, steps: int, batches: tuple[int, ...]) -> dict:
    print("\n1. one-shot search step (first order), CIFAR supernet")
    print(f"{'method':<8} {'batch':>5} {'fp32 s':>8} {'bf16 s':>8} {'speed-up':>8} {'fp32 GiB':>9} {'bf16 GiB':>9} "
          f"{'bf16 s, fuse_edges flipped':>26}")
    bf16_steps = {}
    for method in ("darts", "pcdarts"):
        for batch in batches:
            r32, r16 = (search_step(method, batch, p, device, tiny, steps) for p in ("32-true", "bf16-mixed"))
            flipped = search_step(method, batch, "bf16-mixed", device, tiny, steps, fuse_edges=method != "pcdarts")
            assert r16["alphas_fp32"], "architecture parameters left fp32"
            bf16_steps[(method, batch)] = r16["s_per_step"]
            gib = [f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-" for r in (r32, r16)]
            print(f"{method:<8} {batch:>5} {r32['s_per_step']:>8.3f} {r16['s_per_step']:>8.3f} "
                  f"{r32['s_per_step'] / r16['s_per_step']:>7.2f}x {gib[0]:>9} {gib[1]:>9} "
                  f"{flipped['s_per_step']:>26.3f}", flush=True)
    return bf16_steps


def projected_search(step_s: float, batch: int) -> None:
    steps_per_epoch = 25_000 // 256
    hours = 50 * steps_per_epoch * step_s / 3600
    print(f"\n2. full PC-DARTS CIFAR-10 search (50 epochs x {steps_per_epoch} steps of 256, bf16, "
          f"from the batch-{batch} step): {hours:.2f} h projected", flush=True)


def final_training(device: torch.device, tiny: bool, steps: int) -> None:
    resolution, batch = (32, 8) if tiny else (224, 128)
    print(f"\n3. final training, bf16-mixed, {resolution} px, batch {batch}: images/s")
    darts, _ = lsnas_throughput("darts_v2", resolution, batch, steps, device, "bf16-mixed", tiny)
    resnet_name = "resnet18" if tiny else "resnet50"
    resnet, _ = lsnas_throughput(resnet_name, resolution, batch, steps, device, "bf16-mixed", tiny)
    plain = plain_timm_throughput(resolution, batch, steps, device, "bf16-mixed", tiny)
    print(f"DARTS_V2 ImageNet network, lsnas: {darts:9.1f}")
    print(f"ResNet-50, lsnas (train.py path): {resnet:9.1f}")
    print(f"ResNet-50, timm in a plain loop:  {plain:9.1f}   lsnas / plain = {resnet / plain:.2f}", flush=True)
    # tiny: aot_eager traces as inductor does without needing a C++ compiler on the test machine
    compiled, compile_s = lsnas_throughput(resnet_name, resolution, batch, steps, device, "bf16-mixed", tiny,
                                           compile={"backend": "aot_eager" if tiny else "inductor"})
    print(f"ResNet-50, lsnas, compile.enabled=true: {compiled:9.1f}   compiled / eager = {compiled / resnet:.2f}, "
          f"first 3 steps {compile_s:.0f} s", flush=True)


def ntk_rows(device: torch.device, tiny: bool) -> None:
    print("\n5. empirical NTK, BN in train mode, DARTS CIFAR network: rows per backward pass (1: the official loop)")
    print(f"{'batch':>5} {'rows/pass':>9} {'s':>8} {'GiB':>6} {'vs loop':>8} {'max rel diff':>12}")
    for batch in (8, 16) if tiny else (64, 256):
        loop = ntk_train_bn(batch, 1, device, tiny)
        for rows in (1, 8, 32):
            r = loop if rows == 1 else ntk_train_bn(batch, rows, device, tiny)
            diff = float((r["theta"] - loop["theta"]).abs().max() / loop["theta"].abs().max())
            gib = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
            print(f"{batch:>5} {rows:>9} {r['seconds']:>8.2f} {gib:>6} {loop['seconds'] / r['seconds']:>7.2f}x "
                  f"{diff:>12.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny networks and batches (a CPU smoke run)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sections", type=int, nargs="+", choices=range(1, 6), default=[1, 2, 3, 4, 5],
                        help="which sections to run (2 needs 1): to finish a run that a time limit cut short")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu --tiny for a smoke run")
    if 2 in args.sections and 1 not in args.sections:
        parser.error("section 2 projects section 1's step time: --sections 1 2")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    steps = 2 if args.tiny else args.steps
    batches = (8, 16) if args.tiny else (64, 256)
    print(f"lsnas GPU check on {name} (torch {torch.__version__}){' [tiny]' if args.tiny else ''}", flush=True)
    if 1 in args.sections:
        bf16_steps = search_steps(device, args.tiny, steps, batches)
        if 2 in args.sections:
            projected_search(bf16_steps[("pcdarts", batches[-1])], batches[-1])
    if 3 in args.sections:
        final_training(device, args.tiny, steps)
    if 4 in args.sections:
        print("\n4. DDP, one device, 3 steps of a DARTS search: warnings")
        found = ddp_warnings(device, args.tiny)
        print("\n".join(f"  {w}" for w in found) if found else "  none")
    if 5 in args.sections:
        ntk_rows(device, args.tiny)


if __name__ == "__main__":
    main()
