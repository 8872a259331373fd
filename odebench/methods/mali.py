"""MALI: the asynchronous leapfrog integrator, differentiated by running it backwards.

The asynchronous leapfrog (ALF) carries a state ``y`` and a velocity ``v`` (``v0 = f(t0, y0)``);
a step of size ``h`` from ``t`` is

    y_half = y + h/2 v,   u = f(t + h/2, y_half),   v' = 2u - v,   y' = y_half + h/2 v'

(TorchDiffEqPack's ``sym12async_forward`` with its ``Lambda = 1``): one evaluation, second
order, and invertible in closed form: ``y_half = y' - h/2 v'``, ``u = f(t + h/2, y_half)``,
``v = 2u - v'``, ``y = y_half - h/2 v``.

Reference: Zhuang, Dvornek, Tatikonda & Duncan, "MALI: A memory efficient and reverse accurate
integrator for Neural ODEs", ICLR 2021.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from odebench import solvers
from odebench.errors import MaxStepsExceeded, UnsupportedError
from odebench.measure.nfe import notify
from odebench.methods.base import Capabilities, GradientMethod
from odebench.methods.claims import discrete_exact, gradient_claim, less_memory, lower_error_than_adjoint
from odebench.solvers.runge_kutta import (
    ADAPTIVE_OPTIONS,
    _initial_step,
    _next_step_size,
    call_field,
    fixed_grid,
    refuse_unknown_options,
    rms_norm,
)

#: odebench solver name -> the ALF variant it stands for (the names TorchDiffEqPack's peer uses).
SOLVERS = {"midpoint": "ALF on the fixed grid", "adaptive_heun": "ALF with step-size control"}
FIXED_OPTIONS = frozenset({"step_size"})
#: A fixed-grid point closer than this many step sizes to an output time is merged into it; an
#: adaptive step that would end this close before one is stretched to land on it.
MERGE = 1e-3
#: ALF's error estimate ``h (u - v)`` is second order in h: the controller's exponent is 1/2.
ORDER = 2
SOURCE = "Zhuang et al. 2021 (MALI, ICLR)"


@dataclass
class Grid:
    """The accepted step times of one ALF solve (``times[0] = t0``) and, for each output time,
    the index in `times` it lands on. Step n goes from ``times[n]`` to ``times[n + 1]``."""

    times: torch.Tensor
    outputs: list[int]

    def step_constants(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Each step's ``h/2`` in the state's dtype and its midpoint time, computed the same way
        in the forward solve, the backward pass and `discrete_solve` (so all three agree
        bitwise). Vectors, indexed step by step: a tensor object per step would make the memory
        grow with the steps."""
        dts = self.times[1:] - self.times[:-1]
        return (dts / 2).to(dtype), self.times[:-1] + dts / 2


def alf_step(func, half: torch.Tensor, t_mid: torch.Tensor, y: torch.Tensor, v: torch.Tensor):
    """One ALF step under the caller's grad mode: ``(y', v', u)``."""
    y_half = torch.addcmul(y, half, v)
    u = call_field(func, t_mid, y_half)
    v1 = torch.lerp(v, u, 2.0)  # v + 2 (u - v) = 2u - v
    return torch.addcmul(y_half, half, v1), v1, u


class MALI(GradientMethod):
    """MALI (native): ALF forward without a graph, then ALF inverted step by step in reverse.

    Forward: one evaluation for ``v0 = f(t0, y0)``, then one per step; only the end ``(y, v)``
    and the accepted step times are kept. Backward, per step, last first: ``y_half = y' - h/2 v'``
    is known without evaluating anything, so the one evaluation ``u = f(t + h/2, y_half)`` that
    inverts the step is made with a graph and serves for the step's VJP too (TorchDiffEqPack
    evaluates it twice, once without a graph to invert and once with one to differentiate; the
    VJP is the same to round-off). Then ``v = 2u - v'``, ``y = y_half - h/2 v``, and with
    ``mu = lambda_v' + h/2 lambda_y'``: ``lambda_y = lambda_y' + J_u^T (2 mu)``,
    ``lambda_v = h/2 lambda_y - mu``, the parameters' cotangent from the same VJP. Finally the
    velocity's cotangent flows through ``v0 = f(t0, y0)``, re-evaluated with a graph at the
    kept ``y0`` (TorchDiffEqPack keeps that evaluation's graph from the forward pass instead).
    Memory: two states, the step times (one float each), one evaluation's graph: flat in the
    steps.

    Counts, with N accepted steps: forward ``N + 1`` evaluations on the fixed grid, and
    ``2 + attempts`` adaptive (``v0``, the initial step selection, one per attempted step);
    backward ``N + 1`` evaluations and ``N + 1`` VJPs.

    Solvers (TorchDiffEqPack's names for its MALI): ``midpoint`` is ALF on torchdiffeq's fixed
    grid (`fixed_grid`, ``options={"step_size": h}``; without one, a step per output interval);
    ``adaptive_heun`` is ALF with TorchDiffEqPack's ``sym12async`` error estimate ``h (u - v)``
    scaled by ``atol + rtol max(|y|, |y'|)`` (the state alone, not the velocity), RMS norm, on
    odebench's controller (torchdiffeq's: safety 0.9, factor in [0.2, 10], no shrinking after
    an accepted step, exponent 1/2) and initial step selection (Hairer's, as TorchDiffEqPack's,
    with the same exponent). Differences from TorchDiffEqPack's ``sym12async``: an accepted trial
    is the step (TorchDiffEqPack re-takes it, two evaluations per accepted step); the step
    reaching an output time is shortened (or stretched by at most `MERGE`) to land on it and is
    error-checked like any other, and does not shrink the step after it (TorchDiffEqPack takes
    its last step to ``t1`` unchecked); no ``step_dif_ratio`` acceptance; times in float64.

    Several output times: steps land on every output time (grid points within `MERGE` step
    sizes of one are moved onto it) and ``(y, v)`` carries on through it; the peer instead
    restarts ALF, with ``v = f(t_i, y_i)``, at each output time.

    The gradient is that of this discrete solve (`discrete_solve`), the velocity included, up
    to the round-off of the reconstruction.
    """

    description = "MALI, asynchronous leapfrog inverted in reverse (native)"
    capabilities = Capabilities(
        exact_discrete_gradient=True,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend="odebench",
        paper=(
            "Zhuang et al., MALI: A memory efficient and reverse accurate integrator for Neural ODEs, "
            "ICLR 2021"
        ),
        torchdiffeq_grid=False,
        memory_in_steps="flat",
    )
    claims = (
        discrete_exact("mali", f"{SOURCE}, section 3 and table 1 (reverse accuracy)"),
        lower_error_than_adjoint("mali", f"{SOURCE}, section 4"),
        gradient_claim(
            "MALI's memory is constant in the number of solver steps: at large step counts it uses "
            "less memory than ACA and than backpropagation.",
            f"{SOURCE}, table 1",
            "memory N_z (N_f + 1) for MALI against N_z (N_f + N_t) for ACA and N_z N_f N_t for "
            "backpropagation (N_t steps, N_f evaluations per step)",
            less_memory("mali", "aca"),
            less_memory("mali", "naive"),
        ),
    )

    def supports(self, solver: str) -> bool:
        solvers.get(solver)  # an unknown name is answered with the valid ones
        return solver in SOLVERS

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        spec = solvers.get(solver)
        options = _check_options(spec, options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        params = tuple(p for p in func.parameters() if p.requires_grad)
        return _MALISolve.apply(func, spec, t, rtol, atol, options, y0, *params)

    def discrete_solve(self, func, y0, t, *, solver, rtol, atol, options):
        """The same steps (computed without a graph first), replayed under plain autograd."""
        spec = solvers.get(solver)
        options = _check_options(spec, options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        with torch.no_grad():
            _, grid, _, _ = solve(func, y0, t, spec, rtol, atol, options)
        halves, mids = grid.step_constants(y0.dtype)
        y, v = y0, call_field(func, grid.times[0], y0)
        states = [y0]
        for n in range(len(halves)):
            y, v, _ = alf_step(func, halves[n], mids[n], y, v)
            states.append(y)
        return torch.stack([states[i] for i in grid.outputs])


def _check_options(spec: solvers.Solver, options: Mapping[str, Any] | None) -> dict[str, Any]:
    valid = ADAPTIVE_OPTIONS if spec.adaptive else FIXED_OPTIONS
    options = refuse_unknown_options(options, valid, spec, "MALI")
    for name in ("step_size", "first_step"):
        value = options.get(name)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise UnsupportedError(f"{name} must be a positive finite number, got {value!r}")
    return options


@torch.no_grad()
def solve(func, y0, t, spec: solvers.Solver, rtol, atol, options):
    """ALF from ``t[0]`` through every output time: ``(solution, grid, y_end, v_end)``."""
    if spec.adaptive:
        return _solve_adaptive(func, y0, t, rtol, atol, options)
    times = _fixed_times(t.to(torch.promote_types(torch.float64, y0.dtype)), options.get("step_size"))
    grid = Grid(times, torch.searchsorted(times, t.to(times.dtype)).tolist())
    halves, mids = grid.step_constants(y0.dtype)
    report = getattr(func, "callback_step", None)
    y, v = y0, call_field(func, times[0], y0)
    solution, outputs = [y0], iter(grid.outputs[1:])
    target = next(outputs)
    for n in range(len(halves)):
        if report is not None:
            report(times[n], y, times[n + 1] - times[n])
        y, v, _ = alf_step(func, halves[n], mids[n], y, v)
        if n + 1 == target:
            solution.append(y)
            target = next(outputs, None)
    return solution, grid, y, v


def _fixed_times(t: torch.Tensor, step_size: float | None) -> torch.Tensor:
    """torchdiffeq's fixed grid with every output time on it (nearby grid points merged)."""
    if step_size is None:
        return t
    grid = fixed_grid(t, step_size)
    after = torch.searchsorted(t, grid).clamp(1, len(t) - 1)  # t[after - 1] <= point <= t[after]
    gap = torch.minimum(grid - t[after - 1], t[after] - grid).abs()
    return torch.cat([grid[gap > MERGE * step_size], t]).sort().values


def _solve_adaptive(func, y0, t, rtol, atol, options):
    t_dtype = torch.promote_types(torch.float64, y0.dtype)

    def as_t(value):
        return torch.as_tensor(value, dtype=t_dtype, device=y0.device)

    t = t.to(t_dtype)
    rtol, atol = as_t(rtol), as_t(atol)
    min_step, max_step = as_t(options.get("min_step", 0.0)), as_t(options.get("max_step", math.inf))
    safety, ifactor = as_t(options.get("safety", 0.9)), as_t(options.get("ifactor", 10.0))
    dfactor, exponent = as_t(options.get("dfactor", 0.2)), as_t(1.0 / ORDER)
    max_num_steps = int(options.get("max_num_steps", 2**31 - 1))
    norm = options.get("norm") or rms_norm

    y, v = y0, call_field(func, t[0], y0)
    if options.get("first_step") is None:
        dt = _initial_step(func, t[0], y0, v, ORDER, rtol, atol, t_dtype, norm)
    else:
        dt = as_t(options["first_step"])
    t_now, times, outputs, solution = t[0], [t[0].item()], [0], [y0]
    for j in range(1, len(t)):
        attempts = 0
        while t_now < t[j]:
            if attempts >= max_num_steps:
                raise MaxStepsExceeded(f"max_num_steps exceeded ({attempts}>={max_num_steps})")
            attempts += 1
            if not torch.isfinite(dt):
                dt = min_step
            dt = dt.clamp(min_step, max_step)
            lands = bool(t_now + dt * (1 + MERGE) >= t[j])  # no sliver of a step left before t[j]
            t_next = t[j] if lands else t_now + dt
            h = t_next - t_now
            notify(func, "callback_step", t_now, y, h)
            if not t_next > t_now:
                raise FloatingPointError(f"underflow in dt {h.item()}")
            if not torch.isfinite(y).all():
                raise FloatingPointError("non-finite values in the state")
            y1, v1, u = alf_step(func, (h / 2).to(y.dtype), t_now + h / 2, y, v)
            error = h.to(y.dtype) * (u - v)
            error_ratio = norm(error / (atol + rtol * torch.max(y.abs(), y1.abs()))).abs()
            accept = bool(error_ratio <= 1) or bool(dt <= min_step)
            proposed = dt
            dt = _next_step_size(h, error_ratio, safety, ifactor, dfactor, exponent)
            if accept:
                y, v, t_now = y1, v1, t_next
                times.append(t_next.item())  # a float, not a tensor object per step
                if lands:  # a step shortened to land on t[j] does not shrink the next one
                    dt = torch.max(dt, proposed)
            else:
                notify(func, "callback_reject_step", t_now, y, h)
            dt = dt.clamp(min_step, max_step)
        outputs.append(len(times) - 1)
        solution.append(y)
    return solution, Grid(torch.tensor(times, dtype=t_dtype, device=y0.device), outputs), y, v


class _MALISolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, func, spec, t, rtol, atol, options, y0, *params):
        solution, grid, y, v = solve(func, y0, t, spec, rtol, atol, options)
        ctx.func, ctx.grid, ctx.end = func, grid, (y, v)
        ctx.save_for_backward(y0, *params)
        return torch.stack(solution)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_solution):
        y0, *params = ctx.saved_tensors
        func, grid, (y, v) = ctx.func, ctx.grid, ctx.end
        ctx.end = None  # the end state is consumed: free it as the reconstruction moves on
        halves, mids = grid.step_constants(y0.dtype)
        at_output = {n: j for j, n in enumerate(grid.outputs)}
        grad_params = [torch.zeros_like(p) for p in params]
        lam_y, lam_v = torch.zeros_like(y0), torch.zeros_like(y0)
        for n in range(len(halves) - 1, -1, -1):
            if n + 1 in at_output:
                lam_y = lam_y + grad_solution[at_output[n + 1]]
            half = halves[n]
            y_half = torch.addcmul(y, half, v, value=-1)
            mu = torch.addcmul(lam_v, half, lam_y)
            with torch.enable_grad():
                y_half.requires_grad_(True)
                u = call_field(func, mids[n], y_half)
                a, *grads = torch.autograd.grad(
                    u, (y_half, *params), 2 * mu, allow_unused=True, materialize_grads=True
                )
            if grads:
                torch._foreach_add_(grad_params, grads)
            v = torch.lerp(v, u.detach(), 2.0)
            y = torch.addcmul(y_half.detach(), half, v, value=-1)
            lam_y = lam_y + a
            lam_v = torch.addcmul(-mu, half, lam_y)
        del y, v
        with torch.enable_grad():
            x = y0.detach().requires_grad_(True)
            f0 = call_field(func, grid.times[0], x)
            a, *grads = torch.autograd.grad(
                f0, (x, *params), lam_v, allow_unused=True, materialize_grads=True
            )
        if grads:
            torch._foreach_add_(grad_params, grads)
        lam_y = lam_y + a + grad_solution[0]
        return (None,) * 6 + (lam_y, *grad_params)
