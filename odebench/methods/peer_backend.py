"""What the wrappers of other packages' methods share: registration and the wrapped field.

A peer is registered as ``method@backend`` when its package imports and has the entry points
the wrapper calls; otherwise it is registered as unavailable with the reason, so a missing or
broken install never breaks ``import odebench``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

from torch import nn

from odebench.registry import Registry


def register_peers(
    registry: Registry,
    backend: str,
    entry_points: Sequence[str],
    supported: str,
    peers: Mapping[str, type],
) -> None:
    """Register every class of `peers` under its name if `backend` can be used; otherwise each
    name as unavailable with the reason.

    `backend` is both the module imported and the PyPI distribution (`backend_version` reads its
    version); `entry_points` must be callable in it; `supported` is the version the wrappers are
    written against, named when an entry point is missing.
    """
    register_each(registry, peers, _backend_problem(backend, entry_points, supported))


def register_each(registry: Registry, peers: Mapping[str, type], reason: str | None) -> None:
    """Register an instance of every class of `peers` under its name, or, with a `reason` the
    backend cannot be used, every name as unavailable with it."""
    for name, cls in peers.items():
        if reason is None:
            registry.register(name, cls())
        else:
            registry.register_unavailable(name, reason)


def _backend_problem(backend: str, entry_points: Sequence[str], supported: str) -> str | None:
    """Why `backend` cannot be used here, or None when it can."""
    try:
        module = importlib.import_module(backend)
        missing = [name for name in entry_points if not callable(getattr(module, name, None))]
    except ModuleNotFoundError as exc:
        if exc.name not in (None, backend):
            return f"{backend} is installed but its import failed: {type(exc).__name__}: {exc}"
        return f"{backend} is not installed (pip install 'odebench[peers]')"
    except Exception as exc:  # a broken install must not break `import odebench`
        return f"{backend} is installed but its import failed: {type(exc).__name__}: {exc}"
    if missing:
        return f"{backend} lacks {', '.join(missing)}; version {supported} is supported"
    return None


class TrainableParameters(nn.Module):
    """Holds `func` without registering it and registers only its parameters that require grad,
    so a backend that differentiates every tensor ``parameters()`` yields never asks for the
    gradient of a frozen one. Subclasses define ``forward`` as the backend calls the field."""

    def __init__(self, func: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "func", func)
        for i, p in enumerate(p for p in func.parameters() if p.requires_grad):
            self.register_parameter(f"p{i}", p)
