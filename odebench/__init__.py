"""odebench: which gradient method to trust for a Neural ODE, and what it costs.

Public API: the registries (`methods`, `solvers`, `tasks`), one measurement (`Case` ->
`run_case` -> `Record`), the results store (`load`) and the counting wrapper (`CountedField`).
"""

__version__ = "0.1.0"

from odebench import methods, solvers, tasks
from odebench.errors import OdebenchError
from odebench.harness import run_case
from odebench.measure.nfe import CountedField
from odebench.record import Case, Record
from odebench.results import load

__all__ = [
    "Case",
    "CountedField",
    "OdebenchError",
    "Record",
    "__version__",
    "load",
    "methods",
    "run_case",
    "solvers",
    "tasks",
]
