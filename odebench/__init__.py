"""odebench: which gradient method to trust for a Neural ODE, and what it costs."""

from odebench import methods, solvers
from odebench.errors import OdebenchError
from odebench.measure.nfe import CountedField

__version__ = "0.1.0"

__all__ = ["CountedField", "OdebenchError", "__version__", "methods", "solvers"]
