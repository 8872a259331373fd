"""FFJORD's concat-squash MLP: every layer's output gated and shifted by functions of time."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class ConcatSquashLinear(nn.Module):
    """``(W h + b) * sigmoid(g_w t + g_b) + s t``: a linear layer whose output is squashed by a
    gate and shifted by a bias, both learnt functions of time (FFJORD's ``ConcatSquashLinear``:
    the gate a ``Linear(1, out)``, the shift a ``Linear(1, out)`` without bias)."""

    def __init__(self, n_in: int, n_out: int, generator: torch.Generator) -> None:
        super().__init__()
        self.linear = nn.utils.skip_init(nn.Linear, n_in, n_out, dtype=torch.float64)
        self.gate = nn.utils.skip_init(nn.Linear, 1, n_out, dtype=torch.float64)
        self.shift = nn.utils.skip_init(nn.Linear, 1, n_out, bias=False, dtype=torch.float64)
        with torch.no_grad():  # PyTorch's default fan-in uniform, from `generator`
            for layer in (self.linear, self.gate, self.shift):
                bound = 1.0 / math.sqrt(layer.in_features)
                for p in layer.parameters():
                    p.copy_((2 * torch.rand(p.shape, generator=generator, dtype=torch.float64) - 1) * bound)

    def scale_and_shift(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gate ``sigmoid(g_w t + g_b)`` and the shift ``s t`` at time `t`."""
        time = t.to(like).reshape(1)
        return torch.sigmoid(self.gate(time)), self.shift(time)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_and_shift(t, h)
        return self.linear(h) * scale + shift


class ConcatSquashMLP(nn.Module):
    """FFJORD's toy velocity: concat-squash layers of the given widths with tanh between them.

    Args:
        dim: state dimension (input and output).
        widths: hidden widths (FFJORD's toy default ``64-64-64``).
        generator: draws the initial weights (PyTorch's default fan-in uniform).

    Reference: Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud, "FFJORD: Free-form Continuous
    Dynamics for Scalable Reversible Generative Models", ICLR 2019 (rtqichen/ffjord,
    ``lib/layers/diffeq_layers/basic.py``, ``train_toy.py``).
    """

    def __init__(self, dim: int, widths: tuple[int, ...], generator: torch.Generator) -> None:
        super().__init__()
        self.dim = dim
        sizes = [dim, *widths, dim]
        self.layers = nn.ModuleList(ConcatSquashLinear(a, b, generator) for a, b in itertools.pairwise(sizes))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = z
        for layer in self.layers[:-1]:
            h = torch.tanh(layer(t, h))
        return self.layers[-1](t, h)

    def value_and_trace(self, t: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g(t, z), tr(dg/dz))`` exactly: the Jacobian is carried through the layers (each
        layer's gate scales its rows, tanh's derivative the activations')."""
        h, jac = z, None
        for i, layer in enumerate(self.layers):
            scale, shift = layer.scale_and_shift(t, z)
            weight = layer.linear.weight
            jac = weight.expand(*z.shape[:-1], -1, -1) if jac is None else weight @ jac
            jac = scale.unsqueeze(-1) * jac
            h = layer.linear(h) * scale + shift
            if i < len(self.layers) - 1:
                h = torch.tanh(h)
                jac = (1 - h * h).unsqueeze(-1) * jac
        return h, jac.diagonal(dim1=-2, dim2=-1).sum(-1)
