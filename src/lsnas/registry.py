"""One small name -> object registry for everything lsnas looks up by a name in a config or a file:
search spaces, indexed dataset families, and the strategies, evaluators and proxies that follow.

    SPACES = Registry("search space", setting="space")

    @SPACES.register("darts")
    class DartsSpace: ...

    SPACES.get("darts")      # the class; an unknown name is a ConfigError listing the known ones
    SPACES.names("dart*")    # sorted names, filtered by a shell-style pattern

Registering a name twice is an error (a silent overwrite would make the result depend on import order).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

from lsnas.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, setting: str):
        self.kind, self.setting = kind, setting
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice: {self._entries[name]!r} and {obj!r}")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r} (setting: {self.setting}); known: "
                              f"{', '.join(self.names())}") from None

    def name_of(self, obj: T) -> str | None:
        """The name ``obj`` is registered under (None when it is not)."""
        return next((name for name, entry in self._entries.items() if entry is obj), None)

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self._entries
