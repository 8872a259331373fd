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

from dataclasses import dataclass

import torch

from odebench import solvers
from odebench.errors import InvalidInputError
from odebench.measure.nfe import notify
from odebench.methods.claims import discrete_exact
from odebench.methods.inverting import InvertingMethod, inverting_capabilities, vjp
from odebench.solvers import own_grid
from odebench.solvers.runge_kutta import call_field, linear_combination
from odebench.solvers.tableau import ButcherTableau

SOURCE = "McCallum & Foster 2024 (reversible solvers, arXiv 2410.11648)"


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
class Grid(own_grid.Grid):
    """`own_grid.Grid` with ``(y, z)`` at each output time (what the backward pass restarts from)."""

    states: list[tuple[torch.Tensor, torch.Tensor]]


class _Coupled:
    """The pair ``(y, z)`` as `own_grid.adaptive` steps it: a trial is the first half of a step,
    with the error estimate of its base step; the second half is evaluated on acceptance only."""

    def __init__(self, func, tab: ButcherTableau, coupling: float, y0: torch.Tensor) -> None:
        self.func, self.tab, self.coupling = func, tab, coupling
        self.y = self.z = y0
        self.solution, self.states = [y0], [(y0, y0)]

    def trial(self, t0, t1):
        y1, error = coupled_step(self.func, self.tab, self.coupling, t0, t1, self.y, self.z, error=True)
        self.next = (t0, t1, y1)
        return y1, error

    def accept(self) -> None:
        t0, t1, y1 = self.next
        self.y, self.z = y1, partner_step(self.func, self.tab, t0, t1, y1, self.z)

    def output(self) -> None:
        self.solution.append(self.y)
        self.states.append((self.y, self.z))


class Reversible(InvertingMethod):
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
    within `own_grid.MERGE` step sizes of one are merged into it). Adaptive solvers: odebench's
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
    capabilities = inverting_capabilities(
        "McCallum & Foster, Efficient, Accurate and Stable Gradients for Neural ODEs, arXiv 2024"
    )
    claims = (discrete_exact("reversible", f"{SOURCE}, abstract (exact gradients)"),)

    def __init__(self, coupling: float = 0.999) -> None:
        if not (isinstance(coupling, (int, float)) and 0 < coupling < 1):
            raise InvalidInputError(f"coupling must be a number in (0, 1), got {coupling!r}")
        self.coupling = float(coupling)

    def forward_pass(self, func, y0, t, spec, rtol, atol, options):
        solution, grid = solve(func, y0, t, spec, self.coupling, rtol, atol, options)
        return torch.stack(solution), (spec.tableau, grid)

    def replay(self, func, y0, t, spec, rtol, atol, options):
        """The same steps (computed without a graph first), replayed under plain autograd."""
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

    def backward_pass(self, func, kept, y0, params, grad_solution):
        (tab, grid), coupling = kept, self.coupling
        times = grid.times
        at_output = grid.output_at()
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
                a = a_y - vjp(q, y1, params, a_z, grad_params, sign=-1)
                a_z = a_z + (1 - coupling) * a + vjp(p, z0, params, a, grad_params)
            a_y = coupling * a
        return a_y + a_z + grad_solution[0], grad_params


@torch.no_grad()
def solve(func, y0, t, spec: solvers.Solver, coupling: float, rtol, atol, options):
    """The reversible solve through every output time: ``(solution, grid)``."""
    tab = spec.tableau
    if spec.adaptive:
        pair = _Coupled(func, tab, coupling, y0)
        grid = own_grid.adaptive(pair, func, t, spec.order, rtol, atol, options)
        return pair.solution, Grid(grid.times, grid.outputs, pair.states)
    grid = own_grid.fixed(t, options.get("step_size"), y0)
    times, ends = grid.times, set(grid.outputs)
    y, z, solution, states = y0, y0, [y0], [(y0, y0)]
    for n in range(len(times) - 1):
        t0, t1 = times[n], times[n + 1]
        notify(func, "callback_step", t0, y, t1 - t0)
        y1, _ = coupled_step(func, tab, coupling, t0, t1, y, z)
        y, z = y1, partner_step(func, tab, t0, t1, y1, z)
        if n + 1 in ends:
            solution.append(y)
            states.append((y, z))
    return solution, Grid(times, grid.outputs, states)
