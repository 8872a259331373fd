"""Reversible Heun (Kidger, Foster, Li & Lyons 2021), ODE case: one evaluation per step, invertible.

It carries ``(y, z, f)`` with ``y_0 = z_0`` and ``f_0 = f(t_0, y_0)``; a step of size ``h`` is

    z_{n+1} = 2 y_n - z_n + h f_n,   f_{n+1} = f(t_{n+1}, z_{n+1}),   y_{n+1} = y_n + h/2 (f_n + f_{n+1})

and its inverse, with the one evaluation ``f_n = f(t_n, z_n)``:

    z_n = 2 y_{n+1} - z_{n+1} - h f_{n+1},   y_n = y_{n+1} - h/2 (f_n + f_{n+1})

(torchsde's ``reversible_heun`` with zero diffusion, operation for operation).

Reference: Kidger, Foster, Li & Lyons, "Efficient and Accurate Gradients for Neural SDEs",
NeurIPS 2021.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from odebench import solvers
from odebench.measure.nfe import notify
from odebench.methods.claims import discrete_exact
from odebench.methods.inverting import InvertingMethod, inverting_capabilities, vjp
from odebench.solvers.runge_kutta import call_field, fixed_grid

SOURCE = "Kidger, Foster, Li & Lyons 2021 (reversible Heun, NeurIPS)"
#: The one solver name it answers to: Heun's second-order scheme, made reversible.
SOLVER = "heun2"


def heun_step(func, t0, t1, y, z, f):
    """One reversible Heun step under the caller's grad mode: ``(y', z', f')``."""
    dt = t1 - t0
    z1 = 2 * y - z + f * dt
    f1 = call_field(func, t1, z1)
    return y + (f + f1) * (0.5 * dt), z1, f1


def invert_heun_step(func, t0, t1, y1, z1, f1):
    """``(y_n, z_n, f_n)`` from ``(y_{n+1}, z_{n+1}, f_{n+1})``; ``f_n`` is evaluated under the caller's
    grad mode at ``z_n`` as a leaf, so it carries the graph the previous step's VJP needs."""
    dt = t1 - t0
    z0 = (2 * y1 - z1 - f1 * dt).requires_grad_(torch.is_grad_enabled())
    f0 = call_field(func, t0, z0)
    return y1 - (f0.detach() + f1) * (0.5 * dt), z0, f0


def interpolate(t0, y0, t1, y1, t):
    """The output at ``t0 <= t <= t1``, linear between the step's ends (torchsde's formula)."""
    return (t1 - t) / (t1 - t0) * y0 + (t - t0) / (t1 - t0) * y1


@dataclass
class Grid:
    """The step times (torchdiffeq's fixed grid) and, per output after the first, the step it
    falls in (``times[n] < t <= times[n + 1]``)."""

    times: torch.Tensor
    steps: list[int]


def make_grid(t: torch.Tensor, step_size: float | None) -> Grid:
    times = fixed_grid(t, step_size)
    steps = (torch.searchsorted(times, t[1:], side="left") - 1).clamp(min=0).tolist()
    return Grid(times, steps)


class ReversibleHeun(InvertingMethod):
    """Reversible Heun (native), differentiated by inverting it step by step in reverse.

    Forward: the steps of the module docstring without a graph, on torchdiffeq's fixed grid
    (`fixed_grid`: multiples of ``options["step_size"]`` from ``t[0]``, the last moved to
    ``t[-1]``; without a step size, the output times); an output time inside a step is the
    linear interpolation of ``y`` between the step's ends, exactly as torchsde computes it,
    so with the same step size the solution is torchsde's ``reversible_heun`` one to the bit
    (its grid accumulates ``t + dt`` where torchdiffeq's multiplies, a round-off difference).
    Kept: the end ``(y, z, f)`` and the grid. Backward, per step, last first: invert the step
    (``f_n`` evaluated with a graph at the reconstructed ``z_n``), then pull the cotangents
    ``(a_y, a_z, a_f)`` back through it: ``c = a_z + J_{n+1}^T (a_f + h/2 a_y)`` with the graph of
    ``f_{n+1}`` (made when step n+1 was inverted, or re-evaluated once at the end state),
    ``a_y <- a_y + 2c``, ``a_z <- -c``, ``a_f <- h/2 a_y + h c``; the outputs' cotangents join
    ``a_y`` with their interpolation weights; finally ``dL/dy0 = a_y + a_z + J_0^T a_f``. The
    gradient is that of this discrete solve (`discrete_solve`) up to the round-off of the
    inversion; torchsde's adjoint instead restarts at every output time and steps back to it,
    exact only when the output times lie on the grid.

    Counts, N steps: forward ``N + 1`` evaluations; backward ``N + 1`` evaluations and
    ``N + 1`` VJPs (torchsde's adjoint: ``2N`` evaluations and ``N + 1`` VJPs, it evaluates
    ``f_{n+1}`` again for its VJP). Memory: three states, the grid, one evaluation's graph:
    flat in the steps.

    Solver: ``heun2`` only (reversible Heun is its own scheme, of Heun's order 2 on ODEs).
    Measured: its stability region is smaller than Heun's; where heun2 stays bounded it can
    diverge (the spiral from ``(2, 0)`` at h = 1/16, lorenz63 at its step 0.005).

    Reference: Kidger, Foster, Li & Lyons, "Efficient and Accurate Gradients for Neural SDEs",
    NeurIPS 2021.
    """

    description = "reversible Heun, inverted in reverse (native)"
    capabilities = inverting_capabilities(
        "Kidger, Foster, Li & Lyons, Efficient and Accurate Gradients for Neural SDEs, NeurIPS 2021",
        adaptive=False,
    )
    claims = (discrete_exact("reversible_heun", f"{SOURCE}, abstract (algebraically reversible)"),)

    def supports(self, solver: str) -> bool:
        solvers.get(solver)  # an unknown name is answered with the valid ones
        return solver == SOLVER

    def forward_pass(self, func, y0, t, spec, rtol, atol, options):
        grid = make_grid(t, options.get("step_size"))
        solution, end = solve(func, y0, t, grid)
        return solution, (t, grid, end)

    def replay(self, func, y0, t, spec, rtol, atol, options):
        """The same steps replayed under plain autograd."""
        return solve(func, y0, t, make_grid(t, options.get("step_size")))[0]

    def backward_pass(self, func, kept, y0, params, grad_solution):
        t, grid, (y, z, f) = kept
        times = grid.times
        inside: dict[int, list[int]] = {}
        for j, n in enumerate(grid.steps):
            inside.setdefault(n, []).append(j + 1)
        grad_params = [torch.zeros_like(p) for p in params]
        a_y, a_z, a_f = torch.zeros_like(y), torch.zeros_like(y), torch.zeros_like(y)
        with torch.enable_grad():  # f at the end state again, for its VJP
            x = z.detach().requires_grad_(True)
            f_graph = call_field(func, times[-1], x)
        for n in range(len(times) - 2, -1, -1):
            t0, t1 = times[n], times[n + 1]
            dt = t1 - t0
            weights = [(j, (t1 - t[j]) / dt, (t[j] - t0) / dt) for j in inside.get(n, ())]
            for j, _, w1 in weights:
                a_y = a_y + w1 * grad_solution[j]
            with torch.enable_grad():
                y, z_leaf, f0_graph = invert_heun_step(func, t0, t1, y, z, f)
            c = a_z + vjp(f_graph, x, params, a_f + (0.5 * dt) * a_y, grad_params)
            a_f = (0.5 * dt) * a_y + dt * c
            a_y = a_y + 2 * c
            a_z = -c
            for j, w0, _ in weights:
                a_y = a_y + w0 * grad_solution[j]
            f, f_graph, x, z = f0_graph.detach(), f0_graph, z_leaf, z_leaf.detach()
        a_x = vjp(f_graph, x, params, a_f, grad_params)
        return a_y + a_z + a_x + grad_solution[0], grad_params


def solve(func, y0, t, grid: Grid):
    """Reversible Heun on `grid` under the caller's grad mode: ``(solution, (y, z, f) at the end)``."""
    times = grid.times
    y, z, f = y0, y0, call_field(func, times[0], y0)
    solution, j = [y0], 0
    for n in range(len(times) - 1):
        t0, t1 = times[n], times[n + 1]
        notify(func, "callback_step", t0, y, t1 - t0)
        y1, z, f = heun_step(func, t0, t1, y, z, f)
        while j < len(grid.steps) and grid.steps[j] == n:
            solution.append(interpolate(t0, y, t1, y1, t[j + 1]))
            j += 1
        y = y1
    return torch.stack(solution), (y, z, f)
