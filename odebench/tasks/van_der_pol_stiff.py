"""Van der Pol oscillator with a learnable, large damping: a stiff problem for explicit solvers."""

from __future__ import annotations

import torch
from torch import nn

from odebench.tasks.base import Problem, Task, TrajectoryMSE, normal

#: Trajectories in the batch, horizon, output spacing.
BATCH, HORIZON, DT_OUT = 4, 2.0, 0.5


class VanDerPolField(nn.Module):
    """``dx/dt = v``, ``dv/dt = mu (1 - x^2) v - x``; `mu` is learnable."""

    def __init__(self, mu: torch.Tensor) -> None:
        super().__init__()
        self.mu = nn.Parameter(mu)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, self.mu * (1 - x * x) * v - x], dim=-1)


class VanDerPolStiff(Task):
    """Van der Pol ``x'' - mu (1 - x^2) x' + x = 0`` with learnable ``mu``; the knob is ``mu``.

    ``y0``: 4 points near the relaxation cycle's slow branch (``x = 2 + N(0, 0.1)``,
    ``v = N(0, 0.1)``); output times every half unit on ``[0, 2]``; the loss is the mean
    squared state. For large ``mu`` the solution follows the slow manifold
    ``v ~ x / (mu (1 - x^2))`` while the Jacobian has an eigenvalue near ``-mu (x^2 - 1)``:
    explicit solvers are stability-limited to steps of about ``3 / (mu (x^2 - 1))``, so their
    cost grows linearly with ``mu`` whatever the tolerance. The continuous adjoint also solves
    the state backwards in time, where the fast mode grows like ``exp(mu (x^2 - 1) t)``: the
    reconstruction is unstable, and the adjoint fails (step-size underflow, step budget,
    non-finite values) or returns a wrong gradient well before the forward solve becomes too
    expensive.

    Sizes: ``mu`` = 1 (not stiff), 10 (default: dopri5 at 1e-6 in a few hundred NFE), 100,
    1000 (stiff; with a step budget of a few thousand per output interval the adjoint fails).
    References are float64 dopri8 at the default 1e-12: explicit, so stability-limited and slow
    at large ``mu`` (about 35 s at ``mu = 1000`` on one core), but stable and reliable (error
    estimates 5e-11, 2e-12, 5e-12, 1.5e-10 at the four sizes). Even at ``mu = 10`` the adjoint's
    gradient is off by about 7 % at rtol 1e-6; at ``mu = 100`` and 1000 torchdiffeq's adjoint
    stops with "underflow in dt" (the harness records status ``error``).

    Probes: stiffness: stability-limited step sizes, the instability of the adjoint's backward
    state reconstruction, and whether a run ends with a recorded failure rather than a hang.
    """

    name = "van_der_pol_stiff"
    description = "van der Pol oscillator, learnable mu, stiff for large mu; mean squared state"
    paper = (
        "Hairer & Wanner, Solving ODEs II: Stiff and Differential-Algebraic Problems, 1996 (VDPOL); "
        "Kim, Ji, Deng, Ma & Rackauckas, Stiff Neural Ordinary Differential Equations, Chaos 2021"
    )
    probes = "stiffness: stability-limited steps, unstable backward adjoint solve, failures recorded"
    size_knob = "mu"
    default_size = 10
    sizes = (1, 10, 100, 1000)

    def _build(self, size, generator):
        y0 = torch.tensor([2.0, 0.0], dtype=torch.float64) + 0.1 * normal(generator, (BATCH, 2))
        n = round(HORIZON / DT_OUT)
        t = torch.linspace(0.0, HORIZON, n + 1, dtype=torch.float64)
        func = VanDerPolField(torch.tensor(float(size), dtype=torch.float64))
        target = torch.zeros(n, BATCH, 2, dtype=torch.float64)
        return Problem(func=func, y0=y0, t=t, loss=TrajectoryMSE(target), step_size=0.1 / size)
