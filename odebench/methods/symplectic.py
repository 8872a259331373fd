"""Symplectic adjoint: integrate the adjoint with the symplectic partner of the forward scheme."""

from __future__ import annotations

import torch

from odebench.methods.checkpointed import CheckpointedMethod, checkpointed_capabilities
from odebench.solvers.runge_kutta import (
    call_field,
    runge_kutta_stages,
    stage_state,
    stage_time,
)


class Symplectic(CheckpointedMethod):
    """Symplectic adjoint method.

    Forward: as ACA, keep the state at every accepted step. Backward, for each step: recompute
    its stage states without a graph, then integrate the adjoint over the step with the
    symplectic partner of the forward tableau, one stage at a time, each stage's
    vector-Jacobian product from a fresh single evaluation of the network. Memory: N states,
    s stage states and one network evaluation's graph. The gradient is that of the discrete
    forward solve.

    The partner scheme is written in the unnormalised stage cotangents
    ``g_i = dt * b_i * Lambda_i`` (``g_i = dL/dk_i``), in which it reads
    ``g_i = dt * (b_i * lambda_{n+1} + sum_{m>i} a_mi * J_m^T g_m)`` and
    ``lambda_n = lambda_{n+1} + sum_i J_i^T g_i``. This is algebraically the partner of
    Matsubara et al. with no division by ``b_i``, so stages with zero weight (dopri5's
    second, midpoint's first) need no special case.

    Reference: Matsubara, Miyatake & Yaguchi, "Symplectic Adjoint Method for Exact Gradient of
    Neural ODE with Minimal Memory", NeurIPS 2021.
    """

    description = "symplectic adjoint (native)"
    capabilities = checkpointed_capabilities(
        "Matsubara et al., Symplectic Adjoint Method for Exact Gradient of Neural ODE "
        "with Minimal Memory, NeurIPS 2021"
    )

    def step_vjp(self, func, solver, tab, step, cot, params):
        stages = solver.tableau.stages
        dt_y = step.dt.to(step.y0.dtype)
        t1 = step.t0 + step.dt
        with torch.no_grad():
            k = runge_kutta_stages(func, solver, tab, step.t0, step.dt, step.y0, step.f0)
            h = step.dt.item()
            states = [step.y0] + [stage_state(solver, i, step.y0, k, h) for i in range(1, stages)]
            del k
        # Cotangents of the stage derivatives from the step's end state and its outputs.
        weights = tab.b.reshape(-1, *([1] * step.y0.ndim)) * cot.state
        for w, g in cot.outputs:
            weights = weights + w.reshape(-1, *([1] * step.y0.ndim)) * g
        stage_cot = list(dt_y * weights)
        if cot.first_stage is not None:
            stage_cot[-1] = stage_cot[-1] + cot.first_stage
        lam = cot.state + sum((g for _, g in cot.outputs), torch.zeros_like(step.y0))
        grad_params: list[torch.Tensor | None] = [None] * len(params)
        first = 1 if step.f0 is not None else 0  # a carried first stage is not re-evaluated
        for i in range(stages - 1, first - 1, -1):
            ti, just_before = stage_time(tab, solver, i, step.t0, step.dt, t1)
            with torch.enable_grad():
                state = states[i].detach().requires_grad_(True)
                k_i = call_field(func, ti, state, just_before=just_before)
                grads = torch.autograd.grad(k_i, (state, *params), stage_cot[i], allow_unused=True)
            mu = grads[0] if grads[0] is not None else torch.zeros_like(state)
            lam = lam + mu
            for p, g in enumerate(grads[1:]):
                if g is not None:
                    grad_params[p] = g if grad_params[p] is None else grad_params[p] + g
            for j in range(i):
                a_ij = float(tab.a[i, j])
                if a_ij != 0.0:
                    stage_cot[j] = stage_cot[j] + (dt_y * a_ij) * mu
        return lam, (stage_cot[0] if step.f0 is not None else None), grad_params
