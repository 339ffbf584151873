"""Experiment loggers. W&B is the logger of record; without credentials it runs offline, never prompting."""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger

from lsnas.errors import ConfigError


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


def wandb_logger(save_dir: str, project: str = "lsnas", mode: str = "auto", tags: Sequence[str] = (),
                 cell: Mapping | None = None, **kwargs) -> WandbLogger:
    """``mode``: auto (online with credentials, else offline), online, offline or disabled.

    Run files go under ``save_dir`` (the Hydra run dir); ``wandb sync <save_dir>/wandb/offline-run-*``
    uploads an offline run later. ``tags`` like ``method=`` with no value (a setting this kind of run
    does not have) are dropped; W&B limits a tag to 64 characters. ``cell``: a study's axes for this run
    (method, source, target, ...), each set one added as a ``source=...`` tag so a dashboard can filter by it.
    """
    if mode not in ("auto", "online", "offline", "disabled"):
        raise ConfigError(f"logger.wandb.mode must be auto, online, offline or disabled, got {mode!r}")
    if mode == "auto":
        mode = "online" if wandb_has_credentials() else "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    if mode == "disabled":
        kwargs["mode"] = "disabled"
    tags = [*tags, *(f"{k}={v}" for k, v in (cell or {}).items() if k != "job_type" and v is not None)]
    tags = list(dict.fromkeys(str(t)[:64] for t in tags if t and not str(t).endswith("=")))
    logger = WandbLogger(save_dir=save_dir, project=project, offline=mode == "offline", tags=tags, **kwargs)
    # Lightning passes anonymous=None, which wandb >= 0.22 answers with a deprecation warning on every run.
    logger._wandb_init.pop("anonymous", None)
    return logger
