"""Adaptive Checkpoint Adjoint: replay each accepted step with autograd, last step first."""

from __future__ import annotations

import torch

from odebench.methods.checkpointed import CheckpointedMethod, checkpointed_capabilities
from odebench.solvers.runge_kutta import combine, runge_kutta_stages


class ACA(CheckpointedMethod):
    """Adaptive Checkpoint Adjoint (ACA).

    Forward: solve without a graph, keep the accepted step grid and the state at every accepted
    step (rejected trials are discarded). Backward: rebuild each step's local graph from its
    checkpoint and backpropagate through it. Memory: N states plus one step's graph (all s
    stages of the network). The gradient is that of the discrete forward solve.

    Reference: Zhuang, Dvornek, Li, Tatikonda, Papademetris & Duncan, "Adaptive Checkpoint
    Adjoint Method for Gradient Estimation in Neural ODE", ICML 2020.
    """

    description = "adaptive checkpoint adjoint (native)"
    capabilities = checkpointed_capabilities(
        "Zhuang et al., Adaptive Checkpoint Adjoint Method for Gradient Estimation in Neural ODE, ICML 2020"
    )

    def step_vjp(self, func, solver, tab, step, cot, params):
        with torch.enable_grad():
            y = step.y0.detach().requires_grad_(True)
            f = None if step.f0 is None else step.f0.detach().requires_grad_(True)
            k = runge_kutta_stages(func, solver, tab, step.t0, step.dt, y, f)
            outs = [combine(y, k, step.dt, solver.tableau.b)]
            cots = [cot.state]
            if f is not None:
                outs.append(k[-1])
                cots.append(cot.first_stage)
            for weights, g in cot.outputs:
                outs.append(combine(y, k, step.dt, weights))
                cots.append(g)
            inputs = (y,) if f is None else (y, f)
            grads = torch.autograd.grad(outs, inputs + params, cots, allow_unused=True)
        lam_y = grads[0] if grads[0] is not None else torch.zeros_like(step.y0)
        if f is None:
            return lam_y, None, list(grads[1:])
        lam_f = grads[1] if grads[1] is not None else torch.zeros_like(step.y0)
        return lam_y, lam_f, list(grads[2:])
