"""The Architecture value: the one contract between search and training.

An architecture is ``{"space": <name>, "genotype": <space-specific JSON>}``. Its genotype is
validated and put in canonical form by its space, so equal architectures serialise to the
same bytes and can be hashed, cached and de-duplicated.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from lsnas.errors import UserError
from lsnas.utils.io import atomic_write_text

ARCH_FILENAME = "arch.json"


class ArchitectureError(UserError, ValueError):
    """A malformed architecture, arch file or unknown zoo name."""


class Architecture:

    def __init__(self, space: str, genotype: Any):
        from lsnas.spaces import get_space  # the registry imports this module

        if not isinstance(space, str):
            raise ArchitectureError(f"'space' must be a string naming a search space, got {space!r}")
        try:
            space_obj = get_space(space)
        except UserError as e:
            raise ArchitectureError(e.args[0]) from None
        canonical = space_obj.canonical_genotype(genotype)
        self.space = space
        self._json = json.dumps({"space": space, "genotype": canonical}, sort_keys=True, separators=(",", ":"))

    # -- value semantics -------------------------------------------------------------------
    @property
    def genotype(self) -> dict:
        """A fresh copy of the canonical genotype (the value itself is immutable)."""
        return json.loads(self._json)["genotype"]

    def to_dict(self) -> dict:
        return json.loads(self._json)

    def to_json(self) -> str:
        """The canonical serialisation: equal architectures give equal strings."""
        return self._json

    @cached_property
    def digest(self) -> str:
        """A short stable id (for caches, journals and run names)."""
        return hashlib.sha256(self._json.encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Architecture) and self._json == other._json

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        return f"Architecture(space={self.space!r}, digest={self.digest})"

    # -- I/O -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Architecture:
        if not isinstance(data, Mapping):
            raise ArchitectureError(f"{source}: expected a JSON object with keys 'space' and 'genotype', "
                                    f"got {type(data).__name__}")
        missing = [k for k in ("space", "genotype") if k not in data]
        if missing:
            raise ArchitectureError(f"{source}: missing key(s) {missing}; an architecture is "
                                    '{"space": ..., "genotype": ...}')
        try:
            return cls(data["space"], data["genotype"])
        except (ArchitectureError, ValueError) as e:
            raise ArchitectureError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Architecture:
        path = Path(path)
        if path.is_dir():
            path = path / ARCH_FILENAME
        if not path.is_file():
            raise ArchitectureError(f"{path}: no such architecture file")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ArchitectureError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


# -- the zoo of published architectures -------------------------------------------------------
def zoo_names() -> list[str]:
    return sorted(p.name[: -len(".json")] for p in resources.files("lsnas.zoo").iterdir()
                  if p.name.endswith(".json"))


def from_zoo(name: str) -> Architecture:
    key = name.strip().lower().replace("-", "_")
    if key not in zoo_names():
        raise ArchitectureError(f"unknown architecture {name!r}: not a file and not in the zoo. "
                                f"Known names: {', '.join(zoo_names())}")
    text = resources.files("lsnas.zoo").joinpath(f"{key}.json").read_text()
    return Architecture.from_dict(json.loads(text), source=f"zoo:{key}")


def resolve_arch(spec: str | os.PathLike) -> Architecture:
    """``spec`` is a zoo name (case-insensitive), an arch.json path, or a run dir holding arch.json."""
    spec_str = str(spec)
    looks_like_path = os.sep in spec_str or spec_str.endswith(".json") or Path(spec_str).exists()
    return Architecture.load(spec_str) if looks_like_path else from_zoo(spec_str)
