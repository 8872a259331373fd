"""Symplectic adjoint: integrate the adjoint with the symplectic partner of the forward scheme."""

from __future__ import annotations

import torch

from odebench.methods.claims import (
    discrete_exact,
    gradient_claim,
    less_memory,
    lower_error_than_adjoint,
)
from odebench.methods.stepwise import StepwiseMethod, stage_range, stepwise_capabilities
from odebench.solvers.runge_kutta import call_field, evaluate_stage, stage_buffer, stage_state, stage_time


class Symplectic(StepwiseMethod):
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
    capabilities = stepwise_capabilities(
        "Matsubara et al., Symplectic Adjoint Method for Exact Gradient of Neural ODE "
        "with Minimal Memory, NeurIPS 2021"
    )
    claims = (
        lower_error_than_adjoint(
            "symplectic", "Matsubara et al. 2021 (symplectic adjoint, NeurIPS), section 5"
        ),
        discrete_exact("symplectic", "Matsubara et al. 2021 (symplectic adjoint, NeurIPS), section 4"),
        gradient_claim(
            "At large step counts the symplectic adjoint uses less memory than ACA and than backpropagation.",
            "Matsubara et al. 2021 (symplectic adjoint, NeurIPS), table 1 and section 5",
            "memory of ACA and backpropagation grow with the steps N (and stages s, layers L), the "
            "symplectic adjoint's with N only in states",
            less_memory("symplectic", "aca"),
            less_memory("symplectic", "naive"),
        ),
    )

    def step_vjp(self, func, solver, tab, step, lam, stage_cot, params, grad_params):
        stages = stage_range(solver, step)
        a_dt = tab.a * step.dt.to(step.y0.dtype)
        with torch.no_grad():
            # The inputs of the differentiated stages; the last one needs no evaluation.
            K = stage_buffer(step.y0, solver)
            if step.f0 is not None:
                K[..., 0] = step.f0
            states = [evaluate_stage(func, tab, solver, step, K, a_dt, i) for i in stages[:-1]]
            states.append(stage_state(step.y0, K, a_dt, stages[-1]))
            del K
        shape = (-1,) + (1,) * lam.ndim
        for i, state in zip(reversed(stages), reversed(states)):
            t_i, just_before = stage_time(tab, solver, step, i)
            with torch.enable_grad():
                state = state.detach().requires_grad_(True)
                k_i = call_field(func, t_i, state, just_before=just_before)
                mu, *grads = torch.autograd.grad(
                    k_i, (state, *params), stage_cot[i], allow_unused=True, materialize_grads=True
                )
            lam = lam + mu
            for total, g in zip(grad_params, grads):
                total.add_(g)
            stage_cot[:i] += a_dt[i, :i].reshape(shape) * mu
        return lam, (stage_cot[0] if step.f0 is not None else None)
