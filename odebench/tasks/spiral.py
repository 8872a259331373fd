"""The cubic spiral of Chen et al. (2018): ``dy/dt = y^3 A``."""

from __future__ import annotations

import math

import torch
from torch import nn

from odebench.tasks.base import Problem, Task, TrajectoryMSE, uniform

SPIRAL_A = ((-0.1, 2.0), (-2.0, -0.1))


class SpiralField(nn.Module):
    """``f(t, y) = y**3 @ A`` (elementwise cube, row vectors); `A` is learnable."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.A = nn.Parameter(A)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y.pow(3) @ self.A


class Spiral(Task):
    """The spiral ``dy/dt = y^3 A``, ``A = [[-0.1, 2], [-2, -0.1]]`` learnable, batch of 8.

    The data-generating system of the Neural ODE paper's spiral demo. ``y0``: 8 random points
    at radius 1 to 2 (Chen et al. start at (2, 0)); output times every quarter unit up to the
    horizon ``T``; the loss is the mean squared state at those times. The cubic field turns the
    outer points fast (about 8 rad per unit time at radius 2) and slows as the spiral decays,
    so an adaptive solver takes many small steps first and fewer later.

    Probes: a strongly nonlinear field with fast early dynamics, many output times, a batch.
    """

    name = "spiral"
    description = "Chen et al.'s cubic spiral dy/dt = y^3 A, A learnable, batch of 8"
    paper = "Chen, Rubanova, Bettencourt & Duvenaud, Neural Ordinary Differential Equations, NeurIPS 2018"
    probes = "nonlinear (cubic) field with fast early dynamics; many output times; batched state"
    size_knob = "horizon T"
    default_size = 2
    sizes = (1, 2, 5, 10, 25)

    def _build(self, size, generator):
        radius = uniform(generator, (8,), 1.0, 2.0)
        angle = uniform(generator, (8,), 0.0, 2 * math.pi)
        y0 = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
        t = torch.linspace(0.0, float(size), 4 * size + 1, dtype=torch.float64)
        target = torch.zeros(4 * size, 8, 2, dtype=torch.float64)
        func = SpiralField(torch.tensor(SPIRAL_A, dtype=torch.float64))
        return Problem(func=func, y0=y0, t=t, loss=TrajectoryMSE(target), step_size=0.01)
