"""Backpropagation through the solver's operations ("discretise-then-optimise")."""

from __future__ import annotations

import torchdiffeq

from odebench.methods.base import Capabilities, GradientMethod, quiet_fixed_step_callbacks


class Naive(GradientMethod):
    """Autograd through every operation of torchdiffeq's `odeint`.

    Exact for the discrete solve, with memory that grows with the number of steps. It also
    differentiates through torchdiffeq's choice of the first step size, which depends on `y0`
    and the parameters; the native methods treat the grid as fixed.

    Reference: the baseline of Chen, Rubanova, Bettencourt & Duvenaud, "Neural Ordinary
    Differential Equations", NeurIPS 2018.
    """

    description = "backprop through torchdiffeq.odeint"
    capabilities = Capabilities(
        exact_discrete_gradient=True,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=True,
        backend="torchdiffeq",
        paper="Chen et al., Neural Ordinary Differential Equations, NeurIPS 2018",
        torchdiffeq_grid=True,
    )

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        with quiet_fixed_step_callbacks():
            return torchdiffeq.odeint(func, y0, t, rtol=rtol, atol=atol, method=solver, options=options)
