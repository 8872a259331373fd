"""A ResNet's residual weights indexed by depth, as a time-dependent vector field."""

from __future__ import annotations

import math

import torch
from torch import nn


class DepthIndexedMLP(nn.Module):
    """``f(t, x) = V(t) tanh(W(t) x)``, ``V`` and ``W`` piecewise linear between layers at ``t_n = n/N``.

    `inner` ``(N, M, d)`` and `outer` ``(N, d, M)`` are the residual weights ``W_n``, ``V_n`` of
    a depth-N ResNet ``x_(n+1) = x_n + V_n tanh(W_n x_n) / N``, which is exactly Euler's method
    with step ``1/N`` on this field (it evaluates the field at ``t_n``, where the weights are
    layer n's); the same field solved accurately is the Neural ODE of the ResNet's weights. The
    weights are held at layer ``N - 1``'s on ``[t_(N-1), 1]``; times within 1e-9 of a grid time
    snap to it, so Euler's steps read the layers' own weights bitwise. The residual function is
    nonlinear in its weights, so weights that jump from layer to layer (independent draws) make
    the ResNet and the ODE differ by O(1) however deep (a linear one, ``A_n x``, would average
    the jumps away at first order).

    Reference: Sander, Ablin & Peyré, "Do Residual Neural Networks discretize Neural Ordinary
    Differential Equations?", NeurIPS 2022 (1/N scaling, distance to the ODE against depth); the
    residual ``V sigma(W x)`` is that of Marion, Wu, Sander & Biau, "Implicit regularization of
    deep residual networks towards neural ODEs", ICLR 2024.
    """

    def __init__(self, inner: torch.Tensor, outer: torch.Tensor) -> None:
        super().__init__()
        depth, hidden, dim = inner.shape
        if outer.shape != (depth, dim, hidden):
            raise ValueError(f"outer must have shape {(depth, dim, hidden)}, got {tuple(outer.shape)}")
        self.inner = nn.Parameter(inner.clone())
        self.outer = nn.Parameter(outer.clone())

    @property
    def depth(self) -> int:
        return self.inner.shape[0]

    def layer(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W(t), V(t))``."""
        position = min(max(_seconds(t) * self.depth, 0.0), float(self.depth - 1))
        nearest = round(position)
        if abs(position - nearest) < 1e-9:
            return self.inner[nearest], self.outer[nearest]
        lower = math.floor(position)
        share = position - lower
        return tuple((1 - share) * w[lower] + share * w[lower + 1] for w in (self.inner, self.outer))

    def roughness(self) -> float:
        """``N max_n |theta_(n+1) - theta_n|`` (2-norm over both weights): the weights' Lipschitz
        constant in depth, bounded in N for weights smooth in depth and growing like N for
        independent ones."""
        if self.depth < 2:
            return 0.0
        weights = torch.cat([self.inner.detach().flatten(1), self.outer.detach().flatten(1)], dim=1)
        return float(self.depth * (weights[1:] - weights[:-1]).norm(dim=1).max())

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        inner, outer = self.layer(t)
        return torch.tanh(x @ inner.transpose(0, 1)) @ outer.transpose(0, 1)


def _seconds(t: torch.Tensor | float) -> float:
    return float(t.detach()) if isinstance(t, torch.Tensor) else float(t)
