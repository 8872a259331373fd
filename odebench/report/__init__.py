"""Reports over benchmark results: tables, figures, findings and HTML.

`write_report(frame, out_dir, command=..., sources=...)` writes report.md, report.html and
figures/. What changed between two runs (the regression gate) is `odebench.comparison`.
Its names are imported on first use: the comparison and a sweep's summary read the report's
tables and speed verdicts without loading the plotting stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "write_report": "odebench.report.build",
    "method_order": "odebench.report.style",
    "method_styles": "odebench.report.style",
}

__all__ = ["method_order", "method_styles", "write_report"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'odebench.report' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
