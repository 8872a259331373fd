"""Adaptive Checkpoint Adjoint: replay each accepted step with autograd, last step first."""

from __future__ import annotations

import torch

from odebench.methods.claims import discrete_exact, lower_error_than_adjoint
from odebench.methods.stepwise import StepwiseMethod, stage_range, stepwise_capabilities
from odebench.solvers.runge_kutta import graph_stages


class ACA(StepwiseMethod):
    """Adaptive Checkpoint Adjoint (ACA).

    Forward: solve without a graph, keep the accepted step grid and the state at every accepted
    step (rejected trials are discarded). Backward: rebuild each step's stages with autograd from
    its checkpoint and backpropagate their cotangents through them. Memory: N states plus one
    step's graph (its stages' network evaluations). The gradient is that of the discrete forward
    solve.

    Reference: Zhuang, Dvornek, Li, Tatikonda, Papademetris & Duncan, "Adaptive Checkpoint
    Adjoint Method for Gradient Estimation in Neural ODE", ICML 2020.
    """

    description = "adaptive checkpoint adjoint (native)"
    capabilities = stepwise_capabilities(
        "Zhuang et al., Adaptive Checkpoint Adjoint Method for Gradient Estimation in Neural ODE, ICML 2020"
    )
    claims = (
        lower_error_than_adjoint("aca", "Zhuang et al. 2020 (ACA, ICML), section 4"),
        discrete_exact("aca", "Zhuang et al. 2020 (ACA, ICML), section 3"),
    )

    def step_vjp(self, func, solver, tab, step, lam, stage_cot, params, grad_params):
        stages = stage_range(solver, step)
        with torch.enable_grad():
            y = step.y0.detach().requires_grad_(True)
            f = None if step.f0 is None else step.f0.detach().requires_grad_(True)
            k = graph_stages(func, tab, solver, step, y, f, stages.stop)
            inputs = (y,) if f is None else (y, f)
            grads = torch.autograd.grad(
                [k[i] for i in stages],
                inputs + params,
                [stage_cot[i] for i in stages],
                allow_unused=True,
                materialize_grads=True,
            )
        for total, g in zip(grad_params, grads[len(inputs) :]):
            total.add_(g)
        lam_f = None if f is None else grads[1] + stage_cot[0]
        return lam + grads[0], lam_f
