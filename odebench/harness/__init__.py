"""The harness: run one case (`run_case`), isolate it in a worker, sweep many."""

from odebench.harness.run import run_case

__all__ = ["run_case"]
