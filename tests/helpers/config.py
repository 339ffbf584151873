"""Compose the project's configs as the entry points do, without running them."""

from pathlib import Path

from hydra import compose, initialize_config_dir

import lsnas.cli  # noqa: F401  (registers the resolvers the configs use)

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def compose_config(name: str, *overrides: str, hydra: bool = False):
    """``name``: search | train | shards. ``hydra=True`` keeps the hydra node (launcher settings)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=hydra)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))
