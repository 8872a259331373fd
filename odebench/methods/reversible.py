"""Reversible solvers: any explicit Runge-Kutta scheme made algebraically reversible by coupling.

With ``Psi(t, h, x) = h sum_i b_i k_i`` the increment of one step of the base scheme from
``(t, x)`` (so ``x + Psi(t, h, x)`` is that step), the reversible solver carries two states,
``y_0 = z_0``, and steps from ``t_n`` to ``t_{n+1} = t_n + h`` by

    y_{n+1} = lam y_n + (1 - lam) z_n + Psi(t_n, h, z_n)
    z_{n+1} = z_n - Psi(t_{n+1}, -h, y_{n+1})

which is inverted in closed form, with the same two increments:

    z_n = z_{n+1} + Psi(t_{n+1}, -h, y_{n+1})
    y_n = (y_{n+1} - (1 - lam) z_n - Psi(t_n, h, z_n)) / lam

The output is ``y``; ``lam`` is the coupling (0.999 by default). This is the construction of
McCallum & Foster, confirmed against the authors' JAX code (``sammccallum/reversible``,
``reversible_solver.py``: the same step, inverse and ``l=0.999``) and their diffrax ``Reversible``
solver (diffrax PRs #528, #603, #727; ``coupling_parameter = 0.999``). The inverse for ``y_n`` is
the paper's ``lam^-1 y_{n+1} + (1 - lam^-1) z_n - lam^-1 Psi`` written with one division.

Reference: McCallum & Foster, "Efficient, Accurate and Stable Gradients for Neural ODEs",
arXiv 2410.11648, 2024.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from odebench import solvers
from odebench.errors import InvalidInputError, MaxStepsExceeded
from odebench.measure.nfe import notify
from odebench.methods.base import Capabilities, GradientMethod
from odebench.methods.claims import discrete_exact
from odebench.solvers.runge_kutta import (
    _initial_step,
    _next_step_size,
    call_field,
    check_options,
    fixed_grid,
    linear_combination,
    rms_norm,
)
from odebench.solvers.tableau import ButcherTableau

SOURCE = "McCallum & Foster 2024 (reversible solvers, arXiv 2410.11648)"
#: A fixed-grid point closer than this many step sizes to an output time is merged into it.
MERGE = 1e-3


def used_stages(weights) -> int:
    """How many stages a combination with these weights needs: up to its last nonzero weight."""
    return max((i + 1 for i, w in enumerate(weights) if w != 0), default=0)


def increment(func, tab: ButcherTableau, t0: torch.Tensor, dt: torch.Tensor, x: torch.Tensor, *, error=False):
    """``(Psi, E)``: one base step's increment ``dt sum b_i k_i`` from ``(t0, x)`` under the caller's
    grad mode, and with `error` its embedded error estimate ``dt sum b_error_i k_i`` (else None).

    Only the stages the result needs are evaluated (a first-same-as-last scheme's last stage only
    for the error). Every solve, inverse and replay calls this, so they agree to the bit on equal
    inputs.
    """
    h = dt.item()
    count = used_stages(tab.b)
    if error:
        count = max(count, used_stages(tab.b_error))
    k: list[torch.Tensor] = []
    for i in range(count):
        x_i = linear_combination(x, k, [a * h for a in tab.a[i][:i]])
        k.append(call_field(func, t0 + tab.c[i] * dt, x_i))
    psi = _weighted(k, [b * h for b in tab.b])
    return psi, (_weighted(k, [e * h for e in tab.b_error]) if error else None)


def _weighted(k: list[torch.Tensor], coefficients) -> torch.Tensor:
    """``sum_i coefficients_i k_i``, skipping zero coefficients."""
    total = None
    for c, k_i in zip(coefficients, k):
        if c != 0.0:
            total = k_i * c if total is None else torch.add(total, k_i, alpha=c)
    return torch.zeros_like(k[0]) if total is None else total


def coupled_step(func, tab, coupling, t0, t1, y, z, *, error=False):
    """``(y_{n+1}, E)``: the first half of a step, and the base step's error estimate with `error`."""
    psi, err = increment(func, tab, t0, t1 - t0, z, error=error)
    return coupling * y + (1 - coupling) * z + psi, err


def partner_step(func, tab, t0, t1, y1, z):
    """``z_{n+1} = z_n - Psi(t_{n+1}, -h, y_{n+1})``: the second half of a step."""
    return z - increment(func, tab, t1, t0 - t1, y1)[0]


def invert_step(func, tab, coupling, t0, t1, y1, z1):
    """``(y_n, z_n)`` from ``(y_{n+1}, z_{n+1})``, and the two increments ``(x, Psi)`` with their
    inputs as leaves: under grad mode they carry the graphs the step's VJP needs."""
    y1 = y1.detach().requires_grad_(torch.is_grad_enabled())
    q = increment(func, tab, t1, t0 - t1, y1)[0]
    z0 = (z1 + q.detach()).requires_grad_(torch.is_grad_enabled())
    p = increment(func, tab, t0, t1 - t0, z0)[0]
    y0 = (y1.detach() - (1 - coupling) * z0.detach() - p.detach()) / coupling
    return y0, z0.detach(), (y1, q), (z0, p)


@dataclass
class Grid:
    """The accepted step times of one reversible solve (``times[0] = t0``), the index in `times`
    each output time lands on, and ``(y, z)`` there (what the backward pass restarts from)."""

    times: torch.Tensor
    outputs: list[int]
    states: list[tuple[torch.Tensor, torch.Tensor]]


class Reversible(GradientMethod):
    """Reversible solver (McCallum & Foster 2024) around any registered Runge-Kutta scheme.

    Forward: the coupled steps of the module docstring, without a graph; kept are the accepted
    step times and ``(y, z)`` at each output time (flat in the number of steps). Backward, per
    step, last first: invert the step (its two increments recomputed with a graph on the
    reconstructed inputs), then pull the cotangents ``(a_y, a_z)`` back through the step with
    those same graphs: ``a = a_y - J_Q^T a_z``, ``a_y <- lam a``, ``a_z <- a_z + (1 - lam) a +
    J_P^T a`` (``Q = Psi(t_{n+1}, -h, .)`` at ``y_{n+1}``, ``P = Psi(t_n, h, .)`` at ``z_n``), the
    parameters' cotangent ``J_P^T a - J_Q^T a_z``; finally ``dL/dy0 = a_y + a_z``. The gradient
    is that of this discrete solve (`discrete_solve`), up to the round-off of the inversion.

    Step grid. Fixed-step solvers: torchdiffeq's fixed grid (``options={"step_size": h}``;
    without it, one step per output interval) with every output time put on it (grid points
    within `MERGE` step sizes of one are merged into it). Adaptive solvers: odebench's
    controller (torchdiffeq's: initial step selection, safety 0.9, factor in [0.2, 10],
    exponent 1 / order, RMS norm) on the embedded error estimate of the base step that advances
    ``y`` (``Psi(t_n, h, z_n)``), scaled by ``atol + rtol max(|y_n|, |y_{n+1}|)``; a trial step is
    rejected before its second half is evaluated. The last step before an output time is
    shortened to land on it, and such a shortened step does not shrink the next proposal; the
    output is ``y`` at that step's end (no dense output). The authors' diffrax code sums the
    two base steps' error estimates (PR #528) or uses the second's alone (PR #603); the sum is
    not used here because the two leading error terms cancel for pairs whose error is odd in
    ``h`` (dopri5, bosh3), which would let steps grow past the tolerance (bosh3 on the spiral
    at rtol 1e-6: 129 steps and 10x the error, against 280 steps with the first estimate).

    Stability (measured here): on ``y' = a y`` with ``a < 0`` the coupled pair's second mode
    grows by about ``lam e^{h|a|}`` per step, so with ``lam = 0.999`` it is damped only where
    ``h|a|`` is below about ``1 - lam``; on dissipative or stiff problems the solution drifts
    (van_der_pol_stiff diverges). A smaller coupling damps it, but the inverse divides by
    ``lam`` every step, so the backward pass then amplifies round-off.

    Counts with s the base scheme's stages, s_b those its solution weights use and s_e those
    its solution or error weights use (s_b = s for fixed-step schemes, s - 1 for
    first-same-as-last pairs), N accepted and R rejected steps: forward ``2 s N`` (fixed) or
    ``2 + (s_e + s_b) N + s_e R`` (adaptive; 2 for the initial step selection), backward
    ``2 s_b N`` evaluations and ``2 s_b N`` VJPs. Memory: two states, the step times, one
    step's graph (``2 s_b`` evaluations) and ``(y, z)`` per output time: flat in the steps.

    Reference: McCallum & Foster, "Efficient, Accurate and Stable Gradients for Neural ODEs",
    arXiv 2410.11648, 2024.
    """

    description = "reversible solver around a Runge-Kutta scheme (native)"
    capabilities = Capabilities(
        exact_discrete_gradient=True,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend="odebench",
        paper="McCallum & Foster, Efficient, Accurate and Stable Gradients for Neural ODEs, arXiv 2024",
        torchdiffeq_grid=False,
        memory_in_steps="flat",
    )
    claims = (discrete_exact("reversible", f"{SOURCE}, abstract (exact gradients)"),)

    def __init__(self, coupling: float = 0.999) -> None:
        if not (isinstance(coupling, (int, float)) and 0 < coupling < 1):
            raise InvalidInputError(f"coupling must be a number in (0, 1), got {coupling!r}")
        self.coupling = float(coupling)

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        spec = solvers.get(solver)
        options = check_options(spec, options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        params = tuple(p for p in func.parameters() if p.requires_grad)
        return _ReversibleSolve.apply(self.coupling, func, spec, t, rtol, atol, options, y0, *params)

    def discrete_solve(self, func, y0, t, *, solver, rtol, atol, options):
        """The same steps (computed without a graph first), replayed under plain autograd."""
        spec = solvers.get(solver)
        options = check_options(spec, options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        with torch.no_grad():
            _, grid = solve(func, y0, t, spec, self.coupling, rtol, atol, options)
        tab, times = spec.tableau, grid.times
        y, z, states = y0, y0, [y0]
        for n in range(len(times) - 1):
            t0, t1 = times[n], times[n + 1]
            y1, _ = coupled_step(func, tab, self.coupling, t0, t1, y, z)
            y, z = y1, partner_step(func, tab, t0, t1, y1, z)
            states.append(y)
        return torch.stack([states[i] for i in grid.outputs])


@torch.no_grad()
def solve(func, y0, t, spec: solvers.Solver, coupling: float, rtol, atol, options):
    """The reversible solve through every output time: ``(solution, grid)``."""
    if spec.adaptive:
        return _solve_adaptive(func, y0, t, spec, coupling, rtol, atol, options)
    times = _fixed_times(t.to(torch.promote_types(torch.float64, y0.dtype)), options.get("step_size"))
    outputs = torch.searchsorted(times, t.to(times.dtype)).tolist()
    ends, tab = set(outputs), spec.tableau
    y, z, solution, states = y0, y0, [y0], [(y0, y0)]
    for n in range(len(times) - 1):
        t0, t1 = times[n], times[n + 1]
        notify(func, "callback_step", t0, y, t1 - t0)
        y1, _ = coupled_step(func, tab, coupling, t0, t1, y, z)
        y, z = y1, partner_step(func, tab, t0, t1, y1, z)
        if n + 1 in ends:
            solution.append(y)
            states.append((y, z))
    return solution, Grid(times, outputs, states)


def _fixed_times(t: torch.Tensor, step_size: float | None) -> torch.Tensor:
    """torchdiffeq's fixed grid with every output time on it (nearby grid points merged)."""
    if step_size is None:
        return t
    grid = fixed_grid(t, step_size)
    near = (grid[:, None] - t[None, :]).abs().amin(dim=1) <= MERGE * step_size
    return torch.cat([grid[~near], t]).sort().values


def _solve_adaptive(func, y0, t, spec, coupling, rtol, atol, options):
    t_dtype = torch.promote_types(torch.float64, y0.dtype)

    def as_t(value):
        return torch.as_tensor(value, dtype=t_dtype, device=y0.device)

    t = t.to(t_dtype)
    rtol, atol = as_t(rtol), as_t(atol)
    min_step, max_step = as_t(options.get("min_step", 0.0)), as_t(options.get("max_step", math.inf))
    safety, ifactor = as_t(options.get("safety", 0.9)), as_t(options.get("ifactor", 10.0))
    dfactor, exponent = as_t(options.get("dfactor", 0.2)), as_t(spec.order).reciprocal()
    max_num_steps = int(options.get("max_num_steps", 2**31 - 1))
    norm = options.get("norm") or rms_norm
    tab = spec.tableau

    if options.get("first_step") is None:
        f0 = call_field(func, t[0], y0)
        dt = _initial_step(func, t[0], y0, f0, spec.order, rtol, atol, t_dtype, norm)
        del f0
    else:
        dt = as_t(options["first_step"])
    y, z, t_now = y0, y0, t[0]
    # Step times as Python floats (exact in the time dtype): N small tensors would cost more.
    times, outputs, solution, states = [t_now.item()], [0], [y0], [(y0, y0)]
    for j in range(1, len(t)):
        attempts = 0
        while t_now < t[j]:
            if attempts >= max_num_steps:
                raise MaxStepsExceeded(f"max_num_steps exceeded ({attempts}>={max_num_steps})")
            attempts += 1
            if not torch.isfinite(dt):
                dt = min_step
            dt = dt.clamp(min_step, max_step)
            lands = bool(t_now + dt >= t[j])
            t_next = t[j] if lands else t_now + dt
            h = t_next - t_now
            notify(func, "callback_step", t_now, y, h)
            if not t_next > t_now:
                raise FloatingPointError(f"underflow in dt {h.item()}")
            if not torch.isfinite(y).all():
                raise FloatingPointError("non-finite values in the state")
            y1, error = coupled_step(func, tab, coupling, t_now, t_next, y, z, error=True)
            error_ratio = norm(error / (atol + rtol * torch.max(y.abs(), y1.abs()))).abs()
            accept = bool(error_ratio <= 1) or bool(dt <= min_step)
            proposed = dt
            dt = _next_step_size(h, error_ratio, safety, ifactor, dfactor, exponent)
            if accept:
                y, z = y1, partner_step(func, tab, t_now, t_next, y1, z)
                t_now = t_next
                times.append(t_now.item())
                if lands:  # a step shortened to land on t[j] does not shrink the next one
                    dt = torch.max(dt, proposed)
            else:
                notify(func, "callback_reject_step", t_now, y, h)
            dt = dt.clamp(min_step, max_step)
        outputs.append(len(times) - 1)
        solution.append(y)
        states.append((y, z))
    return solution, Grid(torch.tensor(times, dtype=t_dtype, device=y0.device), outputs, states)


class _ReversibleSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, coupling, func, spec, t, rtol, atol, options, y0, *params):
        solution, grid = solve(func, y0, t, spec, coupling, rtol, atol, options)
        ctx.coupling, ctx.func, ctx.tab, ctx.grid = coupling, func, spec.tableau, grid
        ctx.save_for_backward(*params)
        return torch.stack(solution)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_solution):
        params = ctx.saved_tensors
        coupling, func, tab, grid = ctx.coupling, ctx.func, ctx.tab, ctx.grid
        times = grid.times
        at_output = {n: j for j, n in enumerate(grid.outputs)}
        grad_params = [torch.zeros_like(p) for p in params]
        a_y = torch.zeros_like(grad_solution[0])
        a_z = torch.zeros_like(a_y)
        y = z = None
        for n in range(len(times) - 2, -1, -1):
            if n + 1 in at_output:  # restart from the kept state: no drift across outputs
                j = at_output[n + 1]
                y, z = grid.states[j]
                a_y = a_y + grad_solution[j]
            with torch.enable_grad():
                y, z, (y1, q), (z0, p) = invert_step(func, tab, coupling, times[n], times[n + 1], y, z)
                a = a_y - _vjp(q, y1, params, a_z, grad_params, sign=-1)
                a_z = a_z + (1 - coupling) * a + _vjp(p, z0, params, a, grad_params)
            a_y = coupling * a
        return (None,) * 7 + (a_y + a_z + grad_solution[0], *grad_params)


def _vjp(out, x, params, cot, grad_params, sign: int = 1) -> torch.Tensor:
    """``J_x^T cot`` of ``out(x, params)``; adds ``sign * J_params^T cot`` to `grad_params`."""
    if not out.requires_grad:
        return torch.zeros_like(x)
    g, *grads = torch.autograd.grad(out, (x, *params), cot, allow_unused=True, materialize_grads=True)
    if grads:
        torch._foreach_add_(grad_params, grads, alpha=sign)
    return g
