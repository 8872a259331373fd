"""Training studies: train one model with each gradient method and compare what it learns.

`TrainingCase` -> `run_training` -> `TrainingRecord` mirrors `Case` -> `run_case` -> `Record`; the
studies themselves live in the `odebench.studies` registry.
"""

from odebench.training.case import CURVE_COLUMNS, TrainingCase, TrainingRecord, resolve
from odebench.training.run import run_training

__all__ = ["CURVE_COLUMNS", "TrainingCase", "TrainingRecord", "resolve", "run_training"]
