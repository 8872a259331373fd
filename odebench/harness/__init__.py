"""The harness: run one case (`run_case`), isolate it in a worker, sweep many.

`run_case` and friends are imported on first use, so the executors and the worker plumbing
(what a Dask worker process imports) do not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Prepared", "prepare", "run_case"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'odebench.harness' has no attribute {name!r}")
    from odebench.harness import run

    return getattr(run, name)
