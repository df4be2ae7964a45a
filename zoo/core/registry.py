"""A name -> entry registry with the errors a user needs: a misspelt name gets "did you mean".

Models, tasks and (later) pretrained weights each keep one ``Registry``; entries register themselves
where they are defined (timm's ``@register_model``, lm-eval's task registry), and ``providers`` names
the modules whose import registers the built-in entries, imported the first time the registry is read.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, providers: tuple[str, ...] = ()):
        self.kind = kind  # "model", "task" ...: used in messages
        self._providers = providers
        self._loaded = False
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T, replace: bool = False) -> T:
        """Register ``entry`` under ``name``; registering a different entry twice is an error (two
        modules claiming one name), re-registering the same one (a module imported twice) is not."""
        old = self._entries.get(name)
        if old is not None and old != entry and not replace:
            raise ValueError(f"{self.kind} {name!r} is registered twice with different definitions")
        self._entries[name] = entry
        return entry

    def registered(self, name: str) -> T | None:
        """The entry registered under ``name`` so far (providers not imported), or None."""
        return self._entries.get(name)

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # before importing: a provider that reads the registry must not recurse
            for module in self._providers:
                importlib.import_module(module)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), list(self._entries), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
        return f"unknown {self.kind} {name!r}{hint} Available: {', '.join(sorted(self._entries)) or 'none'}"

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
