"""Continuous normalising flow field: an MLP velocity with the exact trace of its Jacobian."""

from __future__ import annotations

import torch
from torch import nn

from odebench.models.mlp import MLP


class CNFField(nn.Module):
    """``d/dt (z, a) = (g(t, z), -tr(dg/dz))`` for a tanh `MLP` velocity ``g`` on ``d`` dimensions.

    The state is ``[z, a]`` along the last axis (``d + 1`` entries); with ``a(0) = 0`` the flow
    from data ``x = z(0)`` gives ``log p(x) = log p_base(z(T)) - a(T)``. The trace is exact: the
    Jacobian ``dh/dz`` (``width x d`` per sample) is carried forward through the layers next to
    the activations (``J <- (1 - h^2) * (W J)``), so no nested autograd is needed and the field
    evaluates under ``no_grad`` like any other. The cost is ``d`` extra matrix products per
    layer, cheap for the 2-D densities of the CNF literature; Hutchinson's estimator is what
    FFJORD uses in high dimension.

    Args:
        velocity: the MLP ``g`` (its ``dim`` is ``d``; ``time_input`` as it was built).

    Reference: Chen et al., Neural Ordinary Differential Equations, NeurIPS 2018 (CNF);
    Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud, "FFJORD", ICLR 2019.
    """

    def __init__(self, velocity: MLP) -> None:
        super().__init__()
        self.velocity = velocity
        self.dim = velocity.dim

    def velocity_and_trace(self, t: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g(t, z), tr(dg/dz))`` for a batch ``z`` of shape ``(..., d)``."""
        mlp = self.velocity
        h = z
        if mlp.time_input:
            h = torch.cat([z, t.to(z).expand(*z.shape[:-1], 1)], dim=-1)
        first = mlp.layers[0]
        # dh/dz of the first pre-activation: the weight's columns for z, same for every sample.
        jac = first.weight[:, : self.dim].expand(*z.shape[:-1], -1, -1)
        h = first(h)
        for layer in mlp.layers[1:]:
            h = torch.tanh(h)
            jac = (1 - h * h).unsqueeze(-1) * jac
            h = layer(h)
            jac = layer.weight @ jac
        trace = jac.diagonal(dim1=-2, dim2=-1).sum(-1)
        return h, trace

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        velocity, trace = self.velocity_and_trace(t, y[..., : self.dim])
        return torch.cat([velocity, -trace.unsqueeze(-1)], dim=-1)
