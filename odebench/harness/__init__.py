"""The harness: run one case (`run_case`), isolate it in a worker, sweep many."""

from odebench.harness.run import Prepared, prepare, run_case

__all__ = ["Prepared", "prepare", "run_case"]
