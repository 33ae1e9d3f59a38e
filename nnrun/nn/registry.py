"""Registries: name -> class, filled by a decorator, read by the schema, the builder and errors.

One type serves every family (layers, activations, losses, optimisers, schedules, initialisers,
datasets), so an unknown name is reported in one wording everywhere:

    unknown activation 'rlu' (did you mean 'relu'?); known: linear, tanh, relu, ...
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """' (did you mean 'relu'?)' when a known name is close to name, else ''."""
    match = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown_message(kind: str, name: Any, known: Iterable[str]) -> str:
    """The one wording of "no such name": the closest known name (if any is close) and all."""
    known = list(known)
    return f"unknown {kind} {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}"


class UnknownName(ValueError):
    """A name that is not in a registry (or another list of known names)."""

    def __init__(self, kind: str, name: Any, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, list(known)
        super().__init__(unknown_message(kind, name, self.known))


class Registry(Mapping[str, T], Generic[T]):
    """Names -> entries in registration order, for one kind ("layer type", "loss", ...).

    A read-only Mapping (`in`, iteration, `items()`, `len`, `reg[name]` raising KeyError), plus
    `register(name)`, a decorator that adds a class (or function) and sets its `attribute` to
    the name, and `get(name)`, which raises UnknownName with the closest known name instead of
    returning a default.
    """

    def __init__(self, kind: str, attribute: str = "name"):
        self.kind = kind
        self.attribute = attribute
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register entry under name; a name can be registered only once."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered "
                             f"(as {self._entries[name]!r})")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """`@REGISTRY.register("relu")`: add the decorated class and set its name attribute."""

        def decorate(entry: T) -> T:
            setattr(entry, self.attribute, name)
            return self.add(name, entry)

        return decorate

    def get(self, name: Any) -> T:  # type: ignore[override]  # raises instead of a default
        """The entry registered as name; an unknown name raises UnknownName."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a config file
            raise UnknownName(self.kind, name, self._entries) from None

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
