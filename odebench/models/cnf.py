"""Continuous normalising flow field: a velocity with the exact trace of its Jacobian."""

from __future__ import annotations

import torch
from torch import nn


class CNFField(nn.Module):
    """``d/dt (z, a) = (g(t, z), -tr(dg/dz))`` for a velocity ``g`` on ``d`` dimensions.

    The state is ``[z, a]`` along the last axis (``d + 1`` entries); with ``a(0) = 0`` the flow
    from data ``x = z(0)`` gives ``log p(x) = log p_base(z(T)) - a(T)``. The trace is exact: the
    velocity (a tanh `MLP`, or `odebench.models.ConcatSquashMLP`) carries the Jacobian ``dh/dz``
    (``width x d`` per sample) forward through its layers next to the activations
    (`MLP.value_and_trace`), so no nested autograd is needed and the field evaluates under
    ``no_grad`` like any other. The cost is ``d`` extra matrix products per layer, cheap for the
    2-D densities of the CNF literature; Hutchinson's estimator is what FFJORD uses in high
    dimension.

    Args:
        velocity: the velocity ``g``, with ``dim`` (``d``) and ``value_and_trace(t, z)``.

    Reference: Chen et al., Neural Ordinary Differential Equations, NeurIPS 2018 (CNF);
    Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud, "FFJORD", ICLR 2019.
    """

    def __init__(self, velocity: nn.Module) -> None:
        super().__init__()
        self.velocity = velocity
        self.dim = velocity.dim

    def velocity_and_trace(self, t: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g(t, z), tr(dg/dz))`` for a batch ``z`` of shape ``(..., d)``."""
        return self.velocity.value_and_trace(t, z)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        velocity, trace = self.velocity_and_trace(t, y[..., : self.dim])
        return torch.cat([velocity, -trace.unsqueeze(-1)], dim=-1)
