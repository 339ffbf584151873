"""The official repositories' search step against lsnas's, alternated in one process (the issue's side-by-side).

    git clone https://github.com/quark0/darts /tmp/darts
    git clone https://github.com/yuhuixu1993/PC-DARTS /tmp/pcdarts
    python benchmarks/official_step.py --darts /tmp/darts --pcdarts /tmp/pcdarts --methods pcdarts darts1 darts2

The official code runs as its train_search.py drives it: ``Architect.step`` (first order: the validation loss
back-propagated into every parameter; ``darts2``: the unrolled step with a new network each step) on the validation
batch, then the weight step (cross-entropy, ``loss.backward()``, gradient clipping at 5, SGD). Its ``.cuda()`` calls
are made no-ops so it runs on CPU; nothing else is changed. Its optimiser settings are its defaults (DARTS: SGD 0.025,
Adam 3e-4; PC-DARTS: SGD 0.1, Adam 6e-4; both momentum 0.9, weight decay 3e-4, Adam betas (0.5, 0.999) and weight
decay 1e-3). lsnas's step is ``search_step.make_step``'s; ``--reference`` adds lsnas's own "official way"
(``search_step.py --baseline``) to the alternation, to check that yardstick against the real code.
CIFAR supernet (C=16, 8 cells, 32 px, 10 classes), random data, batch 32 by default; median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_step import make_step, timed  # noqa: E402

SETTINGS = {  # method: (repository argument, source folder in it, weight lr, arch lr, unrolled)
    "darts1": ("darts", "cnn", 0.025, 3e-4, False),
    "darts2": ("darts", "cnn", 0.025, 3e-4, True),
    "pcdarts": ("pcdarts", ".", 0.1, 6e-4, False),
}


def official_step(repo: Path, folder: str, lr: float, arch_lr: float, unrolled: bool, batch: int):
    """The official train_search.py step on a fresh official network (seed 0), as a closure."""
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # the official code calls .cuda() throughout
    nn.Module.cuda = lambda self, *args, **kwargs: self
    source = str(repo / folder)
    for name in ("model_search", "operations", "genotypes", "architect", "utils"):
        sys.modules.pop(name, None)  # the two repositories use the same module names
    sys.path.insert(0, source)
    try:
        model_search, architect = importlib.import_module("model_search"), importlib.import_module("architect")
    finally:
        sys.path.remove(source)
    torch.manual_seed(0)
    criterion = nn.CrossEntropyLoss()
    model = model_search.Network(16, 10, 8, criterion)
    optimizer = torch.optim.SGD(model.parameters(), lr, momentum=0.9, weight_decay=3e-4)
    args = SimpleNamespace(momentum=0.9, weight_decay=3e-4, arch_learning_rate=arch_lr, arch_weight_decay=1e-3,
                           unrolled=unrolled)
    arch = architect.Architect(model, args)
    x, y, x_val, y_val = (torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,)),
                          torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,)))

    def step():
        arch.step(x, y, x_val, y_val, lr, optimizer, unrolled=unrolled)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--darts", type=Path, help="a checkout of github.com/quark0/darts")
    parser.add_argument("--pcdarts", type=Path, help="a checkout of github.com/yuhuixu1993/PC-DARTS")
    parser.add_argument("--methods", nargs="+", choices=sorted(SETTINGS), default=["pcdarts", "darts1"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true", help="also time search_step.py --baseline's way")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, {args.threads} threads, {args.rounds} rounds after a warm-up round, alternated")
    print(f"{'method':<8} {'official s':>10} {'lsnas s':>8} {'speed-up':>9} {'min-max':>11}"
          + (f" {'reference s':>11} {'official / reference':>20}" if args.reference else ""))
    for method in args.methods:
        repo_arg, folder, lr, arch_lr, unrolled = SETTINGS[method]
        repo = getattr(args, repo_arg)
        if repo is None:
            parser.error(f"{method} needs --{repo_arg} <a checkout of the official repository>")
        steps = {"official": official_step(repo, folder, lr, arch_lr, unrolled, args.batch),
                 "lsnas": make_step(method, args.batch, channels_last=True)}
        if args.reference:
            steps["reference"] = make_step(method, args.batch, channels_last=False, baseline=True)
        times = {name: [] for name in steps}
        for round_ in range(args.rounds + 1):
            for name, step in steps.items():
                seconds = timed(step)
                if round_:  # the first round warms up
                    times[name].append(seconds)
        ratios = [o / ls for o, ls in zip(times["official"], times["lsnas"])]
        official, lsnas = statistics.median(times["official"]), statistics.median(times["lsnas"])
        line = (f"{method:<8} {official:>10.2f} {lsnas:>8.2f} {statistics.median(ratios):>8.2f}x "
                f"{min(ratios):>5.2f}-{max(ratios):<5.2f}")
        if args.reference:
            reference = statistics.median(times["reference"])
            against = statistics.median([o / r for o, r in zip(times["official"], times["reference"])])
            line += f" {reference:>11.2f} {against:>19.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
