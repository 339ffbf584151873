"""Search methods. One-shot methods are LightningModules trained over a supernet (``oneshot/``);
multi-trial methods are strategies run by one ask/tell loop (``multitrial/``). A method's config names
the runner that executes it (``method.run._target_``), so ``search.py`` treats them alike."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_method
from omegaconf import DictConfig

from lsnas.errors import ConfigError


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Run the configured method (what ``search.py`` does)."""
    target = (cfg.method.get("run") or {}).get("_target_")
    if not target:
        raise ConfigError(f"method {cfg.method.get('name')!r} names no runner (setting: method.run._target_)")
    return get_method(target)(cfg, run_dir)


def print_train_command(cfg: DictConfig, arch_path: Path) -> None:
    """The next step: the train.py command for the searched architecture (an experiment's pairing, if set)."""
    then = cfg.get("then_train") or {}
    protocol = f" protocol={then['protocol']}" if then.get("protocol") else ""
    print(f"architecture written to {arch_path}; train it with:\n"
          f"  python train.py arch={arch_path} dataset={then.get('dataset') or cfg.dataset.name}{protocol}")
