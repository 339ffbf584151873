"""Seconds per search step (architecture step + weight step) and peak memory of the one-shot methods.

    python benchmarks/search_step.py                 # the table: 4 methods x batch 32, 64
    python benchmarks/search_step.py --threads 2 --steps 3 --batch 32 --methods darts1

CIFAR resolution (32x32), supernet C=16 with 8 cells, 10 classes, random data (``--network imagenet``: the ImageNet
supernet, PC-DARTS's stems, 224x224, 1000 classes). Each configuration runs in a fresh process, so peak RSS
(ru_maxrss) is that configuration's own.

``--baseline`` times the same mathematics computed the official way instead: every edge on its
own (lsnas.spaces.darts.reference), NCHW, and architecture and weight steps that back-propagate into all
parameters (``loss.backward()``) as the official code does. For second-order DARTS that is the
official architect.py's unrolled step: a new network built and loaded with the virtual-step weights
every step, its validation loss back-propagated into every parameter, then the finite-difference
Hessian-vector product. Run both on the same machine at the same time for a speed-up that does not
depend on how busy the machine is.

``--paired`` runs the official way and lsnas in one process, alternating their steps, and prints the median of
the per-pair speed-ups: on a shared machine whose speed drifts between runs, the least noisy comparison.

    python benchmarks/search_step.py --paired --methods darts1 darts2 pcdarts --batch 32 --steps 5
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time

NETWORKS = {"cifar": (10, 32), "imagenet": (1000, 224)}  # classes, input size
METHODS = {
    "darts1": ("lsnas.methods.oneshot.DARTS", {"order": 1}),
    "darts2": ("lsnas.methods.oneshot.DARTS", {"order": 2}),
    "pcdarts": ("lsnas.methods.oneshot.PCDARTS", {"order": 1, "partial_channels": 4}),
    "gdas": ("lsnas.methods.oneshot.GDAS", {}),
}


def official_unrolled_gradients(m, w_opt, train: tuple, valid: tuple) -> list:
    """The second-order architecture gradient as the official architect.py's _backward_step_unrolled computes it,
    on the reference (per-edge) forward of ``m.supernet``: a new network built and loaded with the virtual-step
    weights, its validation loss back-propagated into every parameter, then the finite-difference
    Hessian-vector product on the original network."""
    import torch

    from lsnas.spaces.darts.reference import reference_forward

    net, (x_w, y_w), (x_a, y_a) = m.supernet, train, valid
    group = w_opt.param_groups[0]
    xi, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
    weights = net.weight_parameters()
    theta = torch.cat([w.detach().flatten() for w in weights])
    buffers = [w_opt.state.get(w, {}).get("momentum_buffer") for w in weights]
    moment = (torch.cat([b.flatten() for b in buffers]) * momentum if all(b is not None for b in buffers)
              else torch.zeros_like(theta))
    loss = m.criterion(reference_forward(net, x_w), y_w)
    dtheta = torch.cat([g.flatten() for g in torch.autograd.grad(loss, weights)]) + wd * theta
    new_theta = theta - xi * (moment + dtheta)
    unrolled = copy.deepcopy(net)  # model.new(): a network of the same construction
    for module in unrolled.modules():  # ... freshly initialised, as the official new() builds it
        if module is not unrolled and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    state, offset = net.state_dict(), 0
    for name, w in net.named_parameters():
        if not name.startswith(("alpha_", "beta_")):
            state[name] = new_theta[offset:offset + w.numel()].view_as(w)
            offset += w.numel()
    unrolled.load_state_dict(state)  # the alphas too
    m.criterion(reference_forward(unrolled, x_a), y_a).backward()
    d_alpha = [a.grad for a in unrolled.arch_parameters()]
    vector = [w.grad if w.grad is not None else torch.zeros_like(w) for w in unrolled.weight_parameters()]
    r = 0.01 / torch.cat([v.flatten() for v in vector]).norm()
    grads = []
    for sign in (1, -2):  # w + r v, then w - r v
        with torch.no_grad():
            for w, v in zip(weights, vector):
                w.add_(v, alpha=float(sign * r))
        grads.append(torch.autograd.grad(m.criterion(reference_forward(net, x_w), y_w), net.arch_parameters()))
    with torch.no_grad():
        for w, v in zip(weights, vector):
            w.add_(v, alpha=float(r))
    return [da - xi * (gp - gn) / (2 * r) for da, gp, gn in zip(d_alpha, *grads)]


def make_step(method: str, batch: int, channels_last: bool, baseline: bool = False, fuse_edges: bool | None = None,
              network: str = "cifar"):
    """The search step of ``method`` on a fresh supernet (seed 0) and two fixed random batches, as a closure."""
    import torch
    from hydra.utils import get_class

    from lsnas.spaces.darts.reference import reference_forward

    torch.manual_seed(0)
    target, kwargs = METHODS[method]
    if fuse_edges is None:  # the method's config default
        fuse_edges = method == "pcdarts"
    space = {"name": "darts", "network": network, "init_channels": 16, "layers": 8}
    classes, size = NETWORKS[network]
    m = get_class(target)(num_classes=classes, input_shape=(3, size, size), space=space,
                          w_optimizer=lambda p: torch.optim.SGD(p, lr=0.025, momentum=0.9, weight_decay=3e-4),
                          a_optimizer=lambda p: torch.optim.Adam(p, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3),
                          channels_last=channels_last, fuse_edges=fuse_edges, **kwargs)
    if method == "gdas":
        m.tau = 10.0
    fmt = m.memory_format
    net = m.supernet
    weights = net.weight_parameters()
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    data = [(torch.randn(batch, 3, size, size).contiguous(memory_format=fmt), torch.randint(0, classes, (batch,)))
            for _ in range(2)]
    (x_w, y_w), (x_a, y_a) = data

    if baseline:
        if method == "gdas":
            raise SystemExit("--baseline covers DARTS (first and second order) and PC-DARTS")
        m.search_forward = lambda x: reference_forward(net, x)

    def arch_step():
        if baseline and method == "darts2":
            grads = official_unrolled_gradients(m, w_opt, (x_w, y_w), (x_a, y_a))
        elif baseline:  # official: loss.backward() fills every parameter's gradient
            a_opt.zero_grad()
            m.criterion(m.search_forward(x_a), y_a).backward()
            return
        else:
            grads = m.arch_gradients(x_w, y_w, x_a, y_a, w_opt)
        for p, g in zip(net.arch_parameters(), grads):
            p.grad = g

    def step():
        # The same mathematics as OneShotMethod.training_step, without a Trainer around it.
        arch_step()
        a_opt.step()
        a_opt.zero_grad(set_to_none=True)
        w_opt.zero_grad()
        loss = m.criterion(m.search_forward(x_w), y_w)
        loss.backward() if baseline else loss.backward(inputs=weights)  # lsnas: no alpha gradients here
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()

    return step


def timed(step) -> float:
    t = time.perf_counter()
    step()
    return time.perf_counter() - t


def one(method: str, batch: int, steps: int, threads: int, channels_last: bool, baseline: bool = False,
        fuse_edges: bool | None = None, network: str = "cifar") -> dict:
    import torch

    torch.set_num_threads(threads)
    step = make_step(method, batch, channels_last, baseline, fuse_edges, network)
    step()  # warm-up (allocator, oneDNN primitive caches, momentum buffers for order 2)
    times = [timed(step) for _ in range(steps)]
    return {"method": method, "batch": batch, "threads": threads, "channels_last": channels_last, "baseline": baseline,
            "fuse_edges": fuse_edges,
            "s_per_step": statistics.median(times), "min_s": min(times),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}


def paired(method: str, batch: int, steps: int, threads: int, channels_last: bool, fuse_edges: bool | None,
           network: str) -> dict:
    """The official way and lsnas in one process, their steps alternated: each pair of steps sees the same machine
    state, so the ratio of a pair is a speed-up that does not drift with the machine's load. No per-way memory."""
    import torch

    torch.set_num_threads(threads)
    official = make_step(method, batch, False, True, None, network)
    ours = make_step(method, batch, channels_last, False, fuse_edges, network)
    official(), ours()  # warm-up
    pairs = [(timed(official), timed(ours)) for _ in range(steps)]
    ratios = [a / b for a, b in pairs]
    return {"method": method, "batch": batch, "official_s": statistics.median(a for a, _ in pairs),
            "lsnas_s": statistics.median(b for _, b in pairs), "speedup_median": statistics.median(ratios),
            "speedup_min": min(ratios), "speedup_max": max(ratios)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--batch", nargs="+", type=int, default=[32, 64])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--contiguous", action="store_true", help="NCHW instead of the default channels_last")
    ap.add_argument("--baseline", action="store_true", help="the official per-edge computation (NCHW)")
    ap.add_argument("--fuse-edges", choices=["default", "on", "off"], default="default",
                    help="method.module.fuse_edges (default: the method's config, on for PC-DARTS only)")
    ap.add_argument("--network", choices=list(NETWORKS), default="cifar",
                    help="the supernet: CIFAR (32 px, 10 classes) or ImageNet (PC-DARTS's stems, 224 px, 1000 classes)")
    ap.add_argument("--paired", action="store_true",
                    help="the official way and lsnas alternated step by step in one process per configuration: "
                         "per-pair speed-ups (median, min, max), no memory figures")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    fuse_edges = {"default": None, "on": True, "off": False}[args.fuse_edges]
    if args.paired:
        print(f"{args.network} supernet, {args.threads} threads, official way (NCHW, per edge) and lsnas "
              f"({'NCHW' if args.contiguous else 'channels_last'}, fuse_edges {args.fuse_edges}) alternated, "
              f"{args.steps} pairs after one warm-up pair")
        print(f"{'method':8s} {'batch':>5s} {'official s':>11s} {'lsnas s':>8s} {'speed-up':>9s} {'min-max':>11s}")
        for method in args.methods:
            for batch in args.batch:
                r = paired(method, batch, args.steps, args.threads, not args.contiguous, fuse_edges, args.network)
                print(f"{method:8s} {batch:5d} {r['official_s']:11.2f} {r['lsnas_s']:8.2f} {r['speedup_median']:8.2f}x "
                      f"{r['speedup_min']:5.2f}-{r['speedup_max']:.2f}", flush=True)
        return
    if args.one:
        print(json.dumps(one(args.methods[0], args.batch[0], args.steps, args.threads,
                             not (args.contiguous or args.baseline), args.baseline,
                             fuse_edges, args.network)))
        return
    layout = "official per-edge computation, NCHW" if args.baseline else "NCHW" if args.contiguous else "channels_last"
    layout += f", fuse_edges {args.fuse_edges}" if not args.baseline else ""
    print(f"{args.network} supernet, {args.threads} threads, {layout}, "
          f"median of {args.steps} steps after one warm-up step")
    print(f"{'method':8s} {'batch':>5s} {'s/step':>8s} {'min s':>8s} {'peak RSS GB':>12s}")
    for method in args.methods:
        for batch in args.batch:
            cmd = [sys.executable, __file__, "--one", "--methods", method, "--batch", str(batch),
                   "--steps", str(args.steps), "--threads", str(args.threads)]
            cmd += ["--contiguous"] * args.contiguous + ["--baseline"] * args.baseline
            cmd += ["--fuse-edges", args.fuse_edges, "--network", args.network]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"{method:8s} {batch:5d} {r['s_per_step']:8.2f} {r['min_s']:8.2f} {r['peak_rss_gb']:12.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
