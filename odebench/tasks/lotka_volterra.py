"""Lotka-Volterra predator-prey dynamics fitted to a trajectory of perturbed parameters."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from odebench.tasks.base import Array, Problem, Task, TrajectoryMSE, rk4, stack_last, uniform

TRUE_PARAMETERS = {"alpha": 1.5, "beta": 1.0, "gamma": 3.0, "delta": 1.0}


def lotka_volterra(
    state: Array,
    alpha: float | torch.Tensor,
    beta: float | torch.Tensor,
    gamma: float | torch.Tensor,
    delta: float | torch.Tensor,
) -> Array:
    """``dx/dt = alpha x - beta x y``, ``dy/dt = delta x y - gamma y`` on the last axis of `state`.

    `state` is a torch tensor (`LotkaVolterraField`) or a NumPy array (the target's solve).
    """
    prey, predator = state[..., 0], state[..., 1]
    interaction = prey * predator
    return stack_last([alpha * prey - beta * interaction, delta * interaction - gamma * predator])


class LotkaVolterraField(nn.Module):
    """`lotka_volterra` with learnable (alpha, beta, gamma, delta): four scalar parameters."""

    def __init__(self, alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor, delta: torch.Tensor):
        super().__init__()
        self.alpha = nn.Parameter(alpha)
        self.beta = nn.Parameter(beta)
        self.gamma = nn.Parameter(gamma)
        self.delta = nn.Parameter(delta)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return lotka_volterra(y, self.alpha, self.beta, self.gamma, self.delta)


class LotkaVolterra(Task):
    """Lotka-Volterra with learnable (alpha, beta, gamma, delta), fitted to a target trajectory.

    The target is the solution from the classic parameters (1.5, 1, 3, 1) at the same 4 random
    initial states, computed once in float64 by fixed-step RK4 to about 1e-8 (it is data: only
    its determinism matters; memoised per horizon and initial state). The learnable parameters
    start at those values perturbed by up to +-10 %. Output times every half unit up to the
    horizon ``T`` (one period is about 3.6); the loss is the mean squared error over them.

    Probes: a parameter-estimation loss (the usual scientific-ML use), a few scalar parameters,
    periodic orbits whose phase error grows with the horizon.
    """

    name = "lotka_volterra"
    description = "Lotka-Volterra, 4 learnable rates, MSE to a target trajectory"
    paper = "Rackauckas et al., Universal Differential Equations for Scientific Machine Learning, 2020"
    probes = "parameter estimation on periodic orbits; few parameters; phase error grows with T"
    size_knob = "horizon T"
    default_size = 5
    sizes = (5, 10, 20, 50)

    def _build(self, size, generator):
        y0 = uniform(generator, (4, 2), 0.5, 2.0)
        factors = uniform(generator, (4,), 0.9, 1.1)
        t = torch.linspace(0.0, float(size), 2 * size + 1, dtype=torch.float64)
        target = _target(size, tuple(y0.flatten().tolist())).clone()
        values = [
            torch.tensor(v * f.item(), dtype=torch.float64) for v, f in zip(TRUE_PARAMETERS.values(), factors)
        ]
        func = LotkaVolterraField(*values)
        return Problem(func=func, y0=y0, t=t, loss=TrajectoryMSE(target), step_size=0.02)


@functools.lru_cache(maxsize=32)
def _target(horizon: int, y0: tuple[float, ...]) -> torch.Tensor:
    """The true parameters' trajectory at ``t[1:]``: float64 RK4, 50 steps per half unit, error ~1e-8."""
    field = functools.partial(lotka_volterra, **TRUE_PARAMETERS)
    y = np.asarray(y0, dtype=np.float64).reshape(-1, 2)
    return torch.from_numpy(rk4(field, y, 0.5 / 50, 2 * horizon * 50, 50))
