"""Experiment loggers. W&B is the logger of record; without credentials it runs offline, never prompting."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger


def wandb_has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc (where ``wandb login`` stores it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        hosts = netrc.netrc(str(path)).hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


def wandb_logger(save_dir: str, project: str = "lsnas", mode: str = "auto", **kwargs) -> WandbLogger:
    """``mode``: auto (online with credentials, else offline), online, offline or disabled.

    Run files go under ``save_dir`` (the Hydra run dir); ``wandb sync <save_dir>/wandb/offline-run-*``
    uploads an offline run later.
    """
    if mode not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"logger.mode must be auto, online, offline or disabled, got {mode!r}")
    if mode == "auto":
        mode = "online" if wandb_has_credentials() else "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    if mode == "disabled":
        kwargs["mode"] = "disabled"
    return WandbLogger(save_dir=save_dir, project=project, offline=mode == "offline", **kwargs)
