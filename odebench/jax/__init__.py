"""The JAX side of odebench: torch problems translated to JAX, solved and differentiated by diffrax.

Optional (``pip install 'odebench[jax]'``): nothing here is imported by ``import odebench``.
`load` imports JAX once, configured as the harness runs torch: float64 enabled and XLA's CPU
runtime on one thread (set through ``XLA_FLAGS`` before the first import; a JAX imported earlier
by the caller keeps its own threading, which `threading_pinned` reports).
"""

from __future__ import annotations

import importlib.metadata
import os

#: What a plain install is missing, named in every refusal.
INSTALL_HINT = "pip install 'odebench[jax]'"
#: The distributions the backend needs, in import order.
PACKAGES = ("jax", "jaxlib", "equinox", "diffrax")
#: XLA's CPU runtime on one thread, as torch runs with ``torch.set_num_threads(1)``.
ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

_state: dict[str, bool] = {}


def missing() -> str | None:
    """Why the JAX backend cannot be used here (a one-line reason with the install hint), or
    None when every distribution of `PACKAGES` is installed. Reads the installed distributions
    without importing them (a folder named ``jax`` on the path is not an install)."""
    absent = []
    for name in PACKAGES:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            absent.append(name)
    if absent:
        return f"{', '.join(absent)} not installed ({INSTALL_HINT})"
    return None


def load():
    """Import and configure JAX (float64 on, one CPU thread) and return the ``jax`` module."""
    if "jax" not in _state:
        import sys

        _state["threading_pinned"] = "jax" not in sys.modules
        if _state["threading_pinned"] and "intra_op_parallelism_threads" not in os.environ.get(
            "XLA_FLAGS", ""
        ):
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {ONE_THREAD_FLAGS}".strip()
        import jax

        jax.config.update("jax_enable_x64", True)
        _state["jax"] = True
    import jax

    return jax


def threading_pinned() -> bool | None:
    """Whether `load` set XLA's one-thread flags itself (None before `load`)."""
    return _state.get("threading_pinned")
