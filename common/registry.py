"""One registry helper: the names of one kind of component (score functions, LR models, calibrators,
bounders, LR systems, detectors) and what each name stands for.

A registry owns its names: settings, schema ``choices`` and every other list derive from
``registry.names()`` or are checked against it by a test (tests/test_registries.py). An unknown name
is an error of the registry's type naming what was asked and the known names.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any


def import_target(target: str) -> Any:
    """``"package.module:Name"`` imported (modules are imported only when their entry is asked for)."""
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


class Registry:
    """``name -> entry`` for one kind of component, in declaration order.

    ``unknown``: the message for an unknown name, formatted with ``name`` (repr of the name asked
    for) and ``names`` (the known names joined by ", "); ``error``: the exception type raised.
    ``load``: turns a stored entry into the component (e.g. "module:Class" imported on demand)."""

    def __init__(self, what: str, entries: dict[str, Any] | None = None, unknown: str | None = None,
                 error: type[Exception] = ValueError, load: Callable[[Any], Any] | None = None):
        self.what = what
        self._entries: dict[str, Any] = dict(entries or {})
        self.unknown = unknown or f"unknown {what} {{name}}; choose one of {{names}}"
        self.error = error
        self.load = load

    def register(self, name: str, entry: Any) -> Any:
        self._entries[name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def get(self, name: str) -> Any:
        """The component of ``name`` (its entry, through ``load`` when given)."""
        if name not in self._entries:
            raise self.error(self.unknown.format(name=repr(name), names=", ".join(self._entries)))
        entry = self._entries[name]
        return self.load(entry) if self.load else entry

    def raw(self) -> dict[str, Any]:
        """The stored entries (a copy)."""
        return dict(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
