"""Methods that solve without a graph, keep the accepted steps, and differentiate step by step.

The forward pass runs odebench's Runge-Kutta integrator (the same accepted steps as torchdiffeq)
without a graph and keeps the state at every accepted step; the first stage a step carries over
from the previous one is kept too only where it cannot be recomputed from that state (schemes that
are not first-same-as-last). The backward pass walks the steps last to first and hands each one
the cotangents of its end state and of its stage derivatives to the subclass's `step_vjp`; the
result is the gradient of the discrete forward solve.

Every output of a step is ``y_n + dt * sum_i w_i k_i``, so its cotangent ``g`` reaches ``y_n``
directly and each stage as ``dt * w_i * g``. Where the last stage is recomputed as the next
step's first (first same as last), its share goes to that stage of the next step instead, or,
after the last step, to one evaluation at the end state.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import ClassVar

import torch

from odebench import solvers
from odebench.methods.base import Capabilities, GradientMethod
from odebench.solvers.runge_kutta import OutputSlot, Step, Trajectory, call_field, check_options, integrate
from odebench.solvers.tableau import TableauTensors


class StepwiseMethod(GradientMethod):
    """Base for ACA, the symplectic adjoint and binomial checkpointing; subclasses define one
    step's VJP (and may keep fewer states, `keeps_states`)."""

    @abc.abstractmethod
    def step_vjp(
        self,
        func,
        solver: solvers.Solver,
        tab: TableauTensors,
        step: Step,
        lam: torch.Tensor,
        stage_cot: torch.Tensor,
        params: tuple[torch.Tensor, ...],
        grad_params: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pull one step's cotangents back to its start.

        ``lam``: cotangent of the end state; ``stage_cot``: of the stage derivatives, shape
        ``(s, *y.shape)``, ``dt * b_i * lam`` plus what the outputs contribute (the method may
        overwrite it). Adds the parameters' cotangents to `grad_params` and returns those of the
        start state and of the stored first stage ``step.f0`` (``None`` when there is none).
        """

    #: The forward solve keeps every accepted step's state (False: the grid alone, and the
    #: backward pass recomputes states from checkpoints, `steps_in_reverse`).
    keeps_states: ClassVar[bool] = True

    def steps_in_reverse(self, func, trajectory: Trajectory, y0: torch.Tensor) -> Iterator[tuple[int, Step]]:
        """Each step ``n`` with its start state (and stored first stage), last step first."""
        for n in range(len(trajectory.steps) - 1, -1, -1):
            yield n, trajectory.steps[n]

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        spec = solvers.get(solver)
        check_options(spec, options)
        params = tuple(p for p in func.parameters() if p.requires_grad)
        return _StepwiseSolve.apply(self, func, spec, t, rtol, atol, options, y0, *params)


def stepwise_capabilities(paper: str) -> Capabilities:
    return Capabilities(
        exact_discrete_gradient=True,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend="odebench",
        paper=paper,
        torchdiffeq_grid=True,
    )


def trajectory_of(solution: torch.Tensor) -> Trajectory | None:
    """The grid a checkpointed solve recorded for `solution` (until its backward has run), or
    None for a solution no checkpointed method made."""
    return getattr(solution.grad_fn, "trajectory", None)


def stage_range(solver: solvers.Solver, step: Step) -> range:
    """The stages a step's VJP differentiates: the first unless it is stored, and the last unless
    the scheme is first same as last (then the next step recomputes it as its first)."""
    fsal = solver.tableau.fsal
    return range(0 if step.f0 is None else 1, solver.tableau.stages - int(fsal))


class _StepwiseSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, method, func, solver, t, rtol, atol, options, y0, *params):
        solution, trajectory = integrate(
            func, y0, t, solver, rtol, atol, options, keep_states=method.keeps_states
        )
        ctx.method, ctx.func, ctx.trajectory = method, func, trajectory
        ctx.save_for_backward(y0, *params)
        return solution

    @staticmethod
    def backward(ctx, grad_solution):
        y0, *params = ctx.saved_tensors
        params = tuple(params)
        method, func, trajectory = ctx.method, ctx.func, ctx.trajectory
        solver, steps = trajectory.solver, trajectory.steps
        tab = solver.tableau.tensors(y0.dtype, y0.device)
        grad_params = [torch.zeros_like(p) for p in params]
        slots = trajectory.outputs_by_step()

        def shifted(n: int) -> torch.Tensor | None:
            """Step n's outputs' share in its last stage, where the next step recomputes it."""
            if not trajectory.recomputes_first_stage or n < 0:
                return None
            return _last_stage_cotangent(steps[n], slots.get(n, ()), grad_solution)

        lam = torch.zeros_like(y0)
        tail = shifted(len(steps) - 1)
        if tail is not None:
            t_end = steps[-1].t0 + steps[-1].dt
            lam = lam + _field_vjp(func, t_end, True, trajectory.end, tail, params, grad_params)
        lam_f = None
        for n, step in method.steps_in_reverse(func, trajectory, y0):
            own = slots.get(n, ())
            stage_cot = _stage_cotangents(tab, step, lam, own, grad_solution)
            if lam_f is not None:
                stage_cot[-1] += lam_f
            earlier = shifted(n - 1)
            if earlier is not None:
                stage_cot[0] += earlier
            lam, lam_f = method.step_vjp(func, solver, tab, step, lam, stage_cot, params, grad_params)
            for slot in own:
                lam = lam + grad_solution[slot.index]
        if lam_f is not None:
            lam = lam + _field_vjp(func, steps[0].t0, False, y0, lam_f, params, grad_params)
        lam = lam + grad_solution[0]
        return (None,) * 7 + (lam, *grad_params)


def _stage_cotangents(tab: TableauTensors, step: Step, lam, slots: Sequence[OutputSlot], grad_solution):
    """``dt * (b lam + sum over the step's outputs of w g)``, one row per stage."""
    shape = (-1,) + (1,) * lam.ndim
    total = tab.b.reshape(shape) * lam
    for slot in slots:
        total = total + slot.weights.reshape(shape) * grad_solution[slot.index]
    return total * step.dt.to(lam.dtype)


def _last_stage_cotangent(step: Step, slots: Sequence[OutputSlot], grad_solution) -> torch.Tensor | None:
    """The share of a step's outputs in its last stage (``None`` when no output weighs it)."""
    weighted = [
        (slot.weights[-1], grad_solution[slot.index]) for slot in slots if bool(slot.weights[-1] != 0)
    ]
    if not weighted:
        return None
    total = sum(w * g for w, g in weighted)
    return total * step.dt.to(total.dtype)


def _field_vjp(func, t, just_before: bool, y, cot, params, grad_params) -> torch.Tensor:
    """Pull `cot` back through one evaluation ``f(t, y)``: add to `grad_params`, return for `y`."""
    with torch.enable_grad():
        y = y.detach().requires_grad_(True)
        f = call_field(func, t, y, just_before=just_before)
        grads = torch.autograd.grad(f, (y, *params), cot, allow_unused=True, materialize_grads=True)
    for total, g in zip(grad_params, grads[1:]):
        total.add_(g)
    return grads[0]
