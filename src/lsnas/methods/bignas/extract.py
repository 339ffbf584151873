"""A BigNAS child as a standalone network with its inherited weights, for ``train.py`` to evaluate or fine-tune.

    python -m lsnas.methods.bignas.extract <bignas run dir> [--arch <child arch.json>] [--out <dir>]
                                           [--calib-batches 64]

The child (default: the run's arch.json, the biggest child) is activated on the supernet, its BN statistics are
re-estimated on training batches of the run's dataset at the child's resolution, and its slice of the weights
is saved as ``<out>/weights.pt`` beside ``<out>/arch.json``. Then::

    python train.py arch=<out>/arch.json init_weights=<out>/weights.pt dataset=<the run's> protocol.epochs=0
    # the test accuracy of the inherited weights; protocol.epochs=N fine-tunes them
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

from lsnas.arch import ARCH_FILENAME, Architecture
from lsnas.evaluators.supernet import calibrate, load_supernet
from lsnas.evaluators.train import datamodule_for


def extract(run_dir: str | Path, arch: Architecture, out: str | Path, calib_batches: int = 64,
            batch_size: int = 64) -> Path:
    net, space, cfg = load_supernet(run_dir)
    space.check_within(arch.genotype)
    net.set_active_subnet(arch.genotype)
    data = datamodule_for(OmegaConf.to_container(cfg.dataset, resolve=True), batch_size)
    data.setup("fit")
    calibrate(net, data, arch.genotype["resolution"], calib_batches)
    child = net.extract_subnet()
    out = Path(out)
    arch.save(out / ARCH_FILENAME)
    torch.save(child.state_dict(), out / "weights.pt")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--arch", help="the child's arch.json (default: the run's)")
    parser.add_argument("--out", help="output folder (default: <run dir>/child)")
    parser.add_argument("--calib-batches", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    arch = Architecture.load(args.arch or run_dir / ARCH_FILENAME)
    out = extract(run_dir, arch, args.out or run_dir / "child", args.calib_batches, args.batch_size)
    cfg = load_supernet(run_dir)[2]
    print(f"child written to {out}; evaluate (or fine-tune with protocol.epochs=N) with:\n"
          f"  python train.py arch={out / ARCH_FILENAME} init_weights={out / 'weights.pt'} dataset={cfg.dataset.name} "
          f"dataset.resolution={arch.genotype['resolution']} protocol.epochs=0")


if __name__ == "__main__":
    main()
