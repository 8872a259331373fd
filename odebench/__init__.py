"""odebench: which gradient method to trust for a Neural ODE, and what it costs.

Public API: the registries (`methods`, `solvers`, `tasks`, `suites`), one measurement (`Case` ->
`run_case` -> `Record`), your own model in one call (`compare_methods`), the results store
(`load`) and the counting wrapper (`CountedField`). The subpackages the docs name
(``odebench.results``, ``odebench.harness``, ``odebench.report``, ...) are reachable as attributes.
Everything is imported on first use, so ``import odebench`` (and the command line's parsing of
its arguments) does not import torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("odebench")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: Public name -> (module, attribute or None for the module itself).
_EXPORTS = {
    "Case": ("odebench.jobs.gradient", "Case"),
    "Record": ("odebench.jobs.gradient", "Record"),
    "CountedField": ("odebench.measure.nfe", "CountedField"),
    "OdebenchError": ("odebench.errors", "OdebenchError"),
    "run_case": ("odebench.jobs.gradient", "run_case"),
    "compare_methods": ("odebench.usermodel", "compare_methods"),
    "load": ("odebench.results", "load"),
    "methods": ("odebench.methods", None),
    "solvers": ("odebench.solvers", None),
    "tasks": ("odebench.tasks", None),
    "suites": ("odebench.suites", None),
}

#: Subpackages and modules the docs name as ``odebench.<name>``: reachable after ``import
#: odebench``, imported on first use, but not part of ``from odebench import *``.
_MODULES = (
    "claims",
    "cli",
    "comparison",
    "environment",
    "errors",
    "harness",
    "jobs",
    "measure",
    "models",
    "plugins",
    "policy",
    "references",
    "registry",
    "report",
    "results",
    "studies",
    "usermodel",
)

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"odebench.{name}")  # sets the attribute on the package
    if name not in _EXPORTS:
        raise AttributeError(f"module 'odebench' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_MODULES})
