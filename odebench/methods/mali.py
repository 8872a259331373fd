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

import torch

from odebench import solvers
from odebench.methods.claims import discrete_exact, gradient_claim, less_memory, lower_error_than_adjoint
from odebench.methods.inverting import InvertingMethod, inverting_capabilities, vjp
from odebench.solvers import own_grid
from odebench.solvers.runge_kutta import ADAPTIVE_OPTIONS, call_field, refuse_bad_options

#: odebench solver name -> the ALF variant it stands for (the names TorchDiffEqPack's peer uses).
SOLVERS = {"midpoint": "ALF on the fixed grid", "adaptive_heun": "ALF with step-size control"}
FIXED_OPTIONS = frozenset({"step_size"})
#: ALF's error estimate ``h (u - v)`` is second order in h: the controller's exponent is 1/2.
ORDER = 2
SOURCE = "Zhuang et al. 2021 (MALI, ICLR)"


def step_constants(grid: own_grid.Grid, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Each step's ``h/2`` in the state's dtype and its midpoint time, computed the same way in
    the forward solve, the backward pass and `discrete_solve` (so all three agree bitwise).
    Vectors, indexed step by step: a tensor object per step would make the memory grow with the
    steps."""
    dts = grid.times[1:] - grid.times[:-1]
    return (dts / 2).to(dtype), grid.times[:-1] + dts / 2


def alf_step(func, half: torch.Tensor, t_mid: torch.Tensor, y: torch.Tensor, v: torch.Tensor):
    """One ALF step under the caller's grad mode: ``(y', v', u)``."""
    y_half = torch.addcmul(y, half, v)
    u = call_field(func, t_mid, y_half)
    v1 = torch.lerp(v, u, 2.0)  # v + 2 (u - v) = 2u - v
    return torch.addcmul(y_half, half, v1), v1, u


class _ALF:
    """ALF's ``(y, v)`` as `own_grid.adaptive` steps it, with the error estimate ``h (u - v)``;
    the solution at each output time is kept in `solution`."""

    def __init__(self, func, t0: torch.Tensor, y0: torch.Tensor) -> None:
        self.func, self.y, self.v = func, y0, call_field(func, t0, y0)
        self.solution = [y0]

    def trial(self, t0, t1):
        h = t1 - t0
        self.next = alf_step(self.func, (h / 2).to(self.y.dtype), t0 + h / 2, self.y, self.v)
        y1, _, u = self.next
        return y1, h.to(self.y.dtype) * (u - self.v)

    def accept(self) -> None:
        self.y, self.v, _ = self.next

    def output(self) -> None:
        self.solution.append(self.y)


class MALI(InvertingMethod):
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
    reaching an output time is shortened (or stretched by at most `own_grid.MERGE`) to land on it and is
    error-checked like any other, and does not shrink the step after it (TorchDiffEqPack takes
    its last step to ``t1`` unchecked); no ``step_dif_ratio`` acceptance; times in float64.

    Several output times: steps land on every output time (grid points within `own_grid.MERGE` step
    sizes of one are moved onto it) and ``(y, v)`` carries on through it; the peer instead
    restarts ALF, with ``v = f(t_i, y_i)``, at each output time.

    The gradient is that of this discrete solve (`discrete_solve`), the velocity included, up
    to the round-off of the reconstruction.
    """

    description = "MALI, asynchronous leapfrog inverted in reverse (native)"
    capabilities = inverting_capabilities(
        "Zhuang et al., MALI: A memory efficient and reverse accurate integrator for Neural ODEs, ICLR 2021"
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

    def checked_options(self, spec, options):
        valid = ADAPTIVE_OPTIONS if spec.adaptive else FIXED_OPTIONS
        return refuse_bad_options(options, valid, spec, "MALI")

    def forward_pass(self, func, y0, t, spec, rtol, atol, options):
        solution, grid, y, v = solve(func, y0, t, spec, rtol, atol, options)
        return torch.stack(solution), (grid, [y, v])

    def replay(self, func, y0, t, spec, rtol, atol, options):
        """The same steps (computed without a graph first), replayed under plain autograd."""
        with torch.no_grad():
            _, grid, _, _ = solve(func, y0, t, spec, rtol, atol, options)
        halves, mids = step_constants(grid, y0.dtype)
        y, v = y0, call_field(func, grid.times[0], y0)
        states = [y0]
        for n in range(len(halves)):
            y, v, _ = alf_step(func, halves[n], mids[n], y, v)
            states.append(y)
        return torch.stack([states[i] for i in grid.outputs])

    def backward_pass(self, func, kept, y0, params, grad_solution):
        grid, end = kept
        y, v = end
        end.clear()  # the end state is consumed: free it as the reconstruction moves on
        halves, mids = step_constants(grid, y0.dtype)
        at_output = grid.output_at()
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
                a = vjp(u, y_half, params, 2 * mu, grad_params)
            v = torch.lerp(v, u.detach(), 2.0)
            y = torch.addcmul(y_half.detach(), half, v, value=-1)
            lam_y = lam_y + a
            lam_v = torch.addcmul(-mu, half, lam_y)
        del y, v
        with torch.enable_grad():
            x = y0.detach().requires_grad_(True)
            f0 = call_field(func, grid.times[0], x)
            a = vjp(f0, x, params, lam_v, grad_params)
        return lam_y + a + grad_solution[0], grad_params


@torch.no_grad()
def solve(func, y0, t, spec: solvers.Solver, rtol, atol, options):
    """ALF from ``t[0]`` through every output time: ``(solution, grid, y_end, v_end)``."""
    if spec.adaptive:
        alf = _ALF(func, t[0], y0)
        grid = own_grid.adaptive(alf, func, t, ORDER, rtol, atol, options, f0=alf.v, stretch=own_grid.MERGE)
        return alf.solution, grid, alf.y, alf.v
    grid = own_grid.fixed(t, options.get("step_size"), y0)
    times = grid.times
    halves, mids = step_constants(grid, y0.dtype)
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
