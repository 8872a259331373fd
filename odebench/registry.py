"""A small typed registry: the one mechanism behind methods, solvers and tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

from odebench.errors import DuplicateNameError, UnavailableError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; duplicates are refused, unknown names list the valid ones.

    An entry can also be registered as *unavailable* (an optional dependency is missing): it is
    not listed by `names()`, and `get()` explains why it cannot be used.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._unavailable: dict[str, str] = {}

    @overload
    def register(self, name: str) -> Callable[[type], type]: ...

    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name, entry=None):
        """Add `entry` under `name`; without `entry`, return a class decorator.

        The decorator instantiates the class with no arguments and registers the instance, so
        `@register("name")` works on a class whose constructor has defaults.
        """
        if entry is None:

            def decorator(cls: type) -> type:
                self.register(name, cls())
                return cls

            return decorator
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        self._refuse_duplicate(name)
        self._entries[name] = entry
        return entry

    def register_unavailable(self, name: str, reason: str) -> None:
        """Record that `name` exists but cannot be used here, and why."""
        self._refuse_duplicate(name)
        self._unavailable[name] = reason

    def _refuse_duplicate(self, name: str) -> None:
        if name in self._entries or name in self._unavailable:
            raise DuplicateNameError(f"{self.kind} {name!r} is already registered; choose another name")

    def unregister(self, name: str) -> None:
        """Remove `name` (plug-in tests use this to clean up)."""
        self._entries.pop(name, None)
        self._unavailable.pop(name, None)

    def get(self, name: str) -> T:
        """Return the entry registered as `name`."""
        if name in self._entries:
            return self._entries[name]
        if name in self._unavailable:
            raise UnavailableError(f"{self.kind} {name!r} is unavailable: {self._unavailable[name]}")
        valid = ", ".join(self.names()) or "(none)"
        raise UnknownNameError(f"unknown {self.kind} {name!r}; valid: {valid}")

    def names(self) -> list[str]:
        """Available names, in registration order."""
        return list(self._entries)

    def unavailable(self) -> dict[str, str]:
        """Names that are known but unusable here, with the reason for each."""
        return dict(self._unavailable)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
