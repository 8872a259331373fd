"""The report's figures: each function draws one figure, saves it, and returns it with a caption."""

from odebench.report.plots.cost import accuracy_vs_cost
from odebench.report.plots.memory import memory_scaling
from odebench.report.plots.time_split import time_split
from odebench.report.plots.tolerance import error_vs_tolerance
from odebench.report.plots.training import training_curves

__all__ = ["accuracy_vs_cost", "error_vs_tolerance", "memory_scaling", "time_split", "training_curves"]
