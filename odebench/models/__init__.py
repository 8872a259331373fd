"""Vector fields for Neural-ODE tasks."""

from odebench.models.mlp import MLP

__all__ = ["MLP"]
