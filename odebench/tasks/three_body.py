"""Planar gravitational three-body problem with learnable masses, fitted to a trajectory."""

from __future__ import annotations

import functools

import torch
import torchdiffeq
from torch import nn

from odebench.tasks.base import Problem, Task, TrajectoryMSE, normal, uniform

#: The figure-eight choreography (Chenciner & Montgomery 2000; initial values of Simó),
#: unit masses, G = 1: positions of bodies 1, 2, 3 then their velocities. Period about 6.33.
FIGURE_EIGHT = (
    (0.97000436, -0.24308753),
    (-0.97000436, 0.24308753),
    (0.0, 0.0),
    (0.466203685, 0.43236573),
    (0.466203685, 0.43236573),
    (-0.93240737, -0.86473146),
)
#: Plummer softening length: ``|r|^2`` becomes ``|r|^2 + SOFTENING^2`` in the force law.
SOFTENING = 0.1
#: Trajectories in the batch, standard deviation of their perturbation, output spacing.
BATCH, NOISE, DT_OUT = 4, 0.05, 0.25


class ThreeBodyField(nn.Module):
    """Newtonian gravity for three bodies, in the plane (softened) or in space; masses learnable.

    State ``(..., 6 dims)``: positions ``q_1, q_2, q_3`` (``dims`` each) then velocities.
    ``dq_i/dt = speed p_i``, ``dp_i/dt = coupling sum_j m_j (q_j - q_i) / (|q_j - q_i|^2 + eps^2)^(3/2)``;
    the defaults (``dims`` 2, softening 0.1, coupling and speed 1) are the planar problem of the
    ``three_body`` task, G = 1. ``coupling`` and ``speed`` are the constants of a
    non-dimensionalised system (the ACA paper's ``K1``, ``K2``); without softening the bodies
    must not meet.
    """

    def __init__(
        self,
        masses: torch.Tensor,
        softening: float = SOFTENING,
        *,
        dims: int = 2,
        coupling: float = 1.0,
        speed: float = 1.0,
    ) -> None:
        super().__init__()
        self.masses = nn.Parameter(masses)
        self.softening, self.dims, self.coupling, self.speed = softening, dims, coupling, speed

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = 3 * self.dims
        q = y[..., :n].unflatten(-1, (3, self.dims))
        p = y[..., n:]
        diff = q.unsqueeze(-3) - q.unsqueeze(-2)  # [..., i, j, :] = q_j - q_i
        squared = diff.pow(2).sum(-1) + self.softening**2
        if self.softening == 0:  # the diagonal's diff is 0: keep its 0/0 out of the sum
            eye = torch.eye(3, dtype=y.dtype, device=y.device)
            inv = (squared + eye).pow(-1.5) * (1 - eye)
        else:
            inv = squared.pow(-1.5)
        accel = (diff * (self.masses * inv).unsqueeze(-1)).sum(-2)
        return torch.cat([self.speed * p, self.coupling * accel.flatten(-2)], dim=-1)


class ThreeBody(Task):
    """Planar three-body problem, learnable masses, MSE to the trajectory of the true masses.

    ``y0``: 4 perturbations (N(0, 0.05) on every coordinate) of the figure-eight choreography of
    three unit masses; the learnable masses start at 1 +- 10 %. The target is the trajectory of
    unit masses from the same ``y0`` (float64 dopri8 at 1e-10, data: only its determinism
    matters; memoised), every quarter unit up to the horizon ``T``; the loss is the mean squared
    error of all positions and velocities. Softening 0.1 keeps close encounters finite. Once
    perturbed the choreography breaks up: close encounters produce bursts of small steps and
    the sensitivity grows quickly with ``T``. References are solved at 1e-14 beyond T = 2, where
    close encounters amplify the solver's error. Measured (seed 0, error estimate = difference
    to the 100x looser solve): at 1e-12, T = 1, 2, 5, 10 give 2.8e-10, 4.4e-10, 3.1e-9, 2.4e-8;
    at 1e-14, T = 5 and 10 give 3.4e-11 and 7.4e-10, for about 3x the cost (about 15 s at
    T = 10 on one core).

    Probes: a physical model with 3 parameters whose close encounters make step sizes vary by
    orders of magnitude; parameter estimation over growing horizons, as in the ACA paper.
    """

    name = "three_body"
    description = "planar three-body problem (softened), 3 learnable masses, MSE to a trajectory"
    paper = (
        "Zhuang et al., Adaptive Checkpoint Adjoint Method for Gradient Estimation in Neural ODE, "
        "ICML 2020 (three-body experiment); figure-eight orbit of Chenciner & Montgomery, Ann. Math. 2000"
    )
    probes = "gravitational close encounters: step sizes vary widely; 3 mass parameters; horizon knob"
    size_knob = "horizon T"
    default_size = 2
    sizes = (1, 2, 5, 10)
    tight_reference_above = 2

    def _build(self, size, generator):
        y0 = torch.tensor(FIGURE_EIGHT, dtype=torch.float64).flatten() + NOISE * normal(
            generator, (BATCH, 12)
        )
        masses = uniform(generator, (3,), 0.9, 1.1)
        n = round(size / DT_OUT)
        t = torch.linspace(0.0, float(size), n + 1, dtype=torch.float64)
        target = _target(size, tuple(y0.flatten().tolist())).clone()
        return Problem(func=ThreeBodyField(masses), y0=y0, t=t, loss=TrajectoryMSE(target), step_size=0.005)


@functools.lru_cache(maxsize=32)
def _target(horizon: int, y0: tuple[float, ...]) -> torch.Tensor:
    """The trajectory of unit masses at ``t[1:]`` (float64 dopri8 at rtol = atol = 1e-10)."""
    field = ThreeBodyField(torch.ones(3, dtype=torch.float64))
    start = torch.tensor(y0, dtype=torch.float64).reshape(-1, 12)
    t = torch.linspace(0.0, float(horizon), round(horizon / DT_OUT) + 1, dtype=torch.float64)
    with torch.no_grad():
        return torchdiffeq.odeint(field, start, t, method="dopri8", rtol=1e-10, atol=1e-10)[1:]
