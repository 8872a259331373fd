"""A multilayer perceptron (tanh by default) as a Neural-ODE vector field."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

#: Activations by name (``tanh`` is the default; ELU is the SONODE paper's, ReLU Allauzen et al.'s).
ACTIVATIONS = {"tanh": torch.tanh, "elu": nn.functional.elu, "relu": torch.relu}


class MLP(nn.Module):
    """``f(t, y) = W_L s(... s(W_1 [y, t] + b_1) ...) + b_L`` with the activation ``s`` (tanh).

    Args:
        dim: state dimension (input of the field, and its output unless `out_dim` is given).
        width: hidden units per layer.
        depth: number of hidden layers (>= 1).
        time_input: append ``t`` to the input of the first layer (a time-dependent field).
        out_dim: output dimension when it differs from `dim` (e.g. an acceleration network).
        activation: a name in `ACTIVATIONS`.
        generator: draws the initial weights (PyTorch's default fan-in uniform
            ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``); the global random state is not touched.

    The parameters are float64 on the CPU; ``.to(dtype, device)`` rounds them (as `Task.build`
    does), so every dtype and device gets the rounding of the same numbers.

    Reference: the field of Chen et al., Neural Ordinary Differential Equations, NeurIPS 2018.
    """

    def __init__(
        self,
        dim: int,
        width: int,
        depth: int = 2,
        *,
        time_input: bool = False,
        out_dim: int | None = None,
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        self.activation = activation
        self.dim, self.width, self.depth, self.time_input = dim, width, depth, time_input
        sizes = [dim + int(time_input)] + [width] * depth + [dim if out_dim is None else out_dim]
        self.layers = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, n_in, n_out, dtype=torch.float64)
            for n_in, n_out in itertools.pairwise(sizes)
        )
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Fan-in uniform initialisation from `generator` (a fresh seed-0 one when None)."""
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(0)
        for layer in self.layers:
            bound = 1.0 / math.sqrt(layer.in_features)
            for p in (layer.weight, layer.bias):
                draw = torch.rand(p.shape, generator=generator, dtype=torch.float64)
                p.copy_((2 * draw - 1) * bound)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = y
        if self.time_input:
            h = torch.cat([y, t.to(y).expand(*y.shape[:-1], 1)], dim=-1)
        activate = ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            h = activate(layer(h))
        return self.layers[-1](h)

    def value_and_trace(self, t: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(t, y), tr(df/dy))`` of a tanh MLP whose output has the state's dimension.

        The Jacobian ``dh/dy`` (``width x dim`` per sample) is carried forward next to the
        activations (``J <- (1 - h^2) * (W J)``), so the trace is exact without nested autograd
        (`odebench.models.CNFField`).
        """
        if self.activation != "tanh" or self.layers[-1].out_features != self.dim:
            raise ValueError("the exact trace is implemented for tanh MLPs from and to the state")
        h = y
        if self.time_input:
            h = torch.cat([y, t.to(y).expand(*y.shape[:-1], 1)], dim=-1)
        first = self.layers[0]
        # dh/dy of the first pre-activation: the weight's columns for y, the same for every sample.
        jac = first.weight[:, : self.dim].expand(*y.shape[:-1], -1, -1)
        h = first(h)
        for layer in self.layers[1:]:
            h = torch.tanh(h)
            jac = (1 - h * h).unsqueeze(-1) * jac
            h = layer(h)
            jac = layer.weight @ jac
        return h, jac.diagonal(dim1=-2, dim2=-1).sum(-1)
