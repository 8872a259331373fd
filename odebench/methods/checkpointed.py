"""Methods that solve without a graph, keep the accepted steps, and differentiate step by step.

The forward pass runs odebench's Runge-Kutta integrator (the same accepted steps as torchdiffeq)
under ``no_grad`` and keeps the state, and the carried first stage, at every accepted step. The
backward pass walks the steps last to first, handing each one's cotangents to the subclass's
`step_vjp`; the result is the gradient of the discrete forward solve.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch

from odebench import solvers
from odebench.methods.base import Capabilities, GradientMethod
from odebench.solvers.runge_kutta import Step, Trajectory, call_field, check_options, integrate
from odebench.solvers.tableau import TableauTensors


@dataclass
class StepCotangents:
    """Cotangents flowing into one step from later in the solve.

    ``state``: of the step's end state; ``first_stage``: of its last stage, which the next step
    reuses as its first (adaptive solvers only); ``outputs``: (weights, cotangent) of every
    output time that falls inside the step.
    """

    state: torch.Tensor
    first_stage: torch.Tensor | None
    outputs: list[tuple[torch.Tensor, torch.Tensor]]


class CheckpointedMethod(GradientMethod):
    """Base for ACA and the symplectic adjoint; subclasses define one step's VJP."""

    @abc.abstractmethod
    def step_vjp(
        self,
        func,
        solver: solvers.Solver,
        tab: TableauTensors,
        step: Step,
        cot: StepCotangents,
        params: tuple[torch.Tensor, ...],
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor | None]]:
        """Return the cotangents of (start state, carried first stage, parameters)."""

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        spec = solvers.get(solver)
        check_options(spec, options)
        params = tuple(p for p in func.parameters() if p.requires_grad)
        return _CheckpointedSolve.apply(self, func, spec, t, rtol, atol, options, y0, *params)


def checkpointed_capabilities(reference: str) -> Capabilities:
    return Capabilities(
        exact_discrete_gradient=True,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend="odebench",
        reference=reference,
        torchdiffeq_grid=True,
    )


def _add(total: list[torch.Tensor], grads) -> None:
    for i, g in enumerate(grads):
        if g is not None:
            total[i] = total[i] + g


class _CheckpointedSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, method, func, solver, t, rtol, atol, options, y0, *params):
        solution, trajectory = integrate(func, y0, t, solver, rtol, atol, options)
        ctx.method, ctx.func, ctx.trajectory = method, func, trajectory
        ctx.save_for_backward(y0, *params)
        return solution

    @staticmethod
    def backward(ctx, grad_solution):
        y0, *params = ctx.saved_tensors
        params = tuple(params)
        method, func, trajectory = ctx.method, ctx.func, ctx.trajectory
        solver = trajectory.solver
        tab = solver.tableau.tensors(y0.dtype, y0.device)
        grad_params = [torch.zeros_like(p) for p in params]
        lam = torch.zeros_like(y0)
        lam_f = torch.zeros_like(y0) if trajectory.carries_first_stage else None
        slots = trajectory.outputs_by_step()
        for n in range(len(trajectory.steps) - 1, -1, -1):
            outputs = [(s.weights, grad_solution[s.index]) for s in slots.get(n, ())]
            cot = StepCotangents(state=lam, first_stage=lam_f, outputs=outputs)
            lam, lam_f, grads = method.step_vjp(func, solver, tab, trajectory.steps[n], cot, params)
            _add(grad_params, grads)
        if lam_f is not None and trajectory.steps:
            lam = lam + _first_stage_vjp(func, trajectory, y0, lam_f, params, grad_params)
        lam = lam + grad_solution[0]
        return (None,) * 7 + (lam, *grad_params)


def _first_stage_vjp(func, trajectory: Trajectory, y0, lam_f, params, grad_params):
    """Pull the cotangent of the initial ``f(t0, y0)`` back to ``y0`` and the parameters."""
    with torch.enable_grad():
        y = y0.detach().requires_grad_(True)
        f = call_field(func, trajectory.steps[0].t0, y)
        grads = torch.autograd.grad(f, (y, *params), lam_f, allow_unused=True)
    _add(grad_params, grads[1:])
    return grads[0] if grads[0] is not None else torch.zeros_like(y0)
