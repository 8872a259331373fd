"""Backprop through the native fixed-step loop with each step compiled by ``torch.compile``.

What the PyTorch core recovers of the per-step overhead that JAX compiles away (README, "PyTorch or
JAX?"): one Runge-Kutta step, its stages and its end state, is traced once by ``torch.compile``
(inductor) and the same graph, forward and backward, serves every step of torchdiffeq's fixed
grid, so autograd records one node per step instead of one per operation. The grid and the
arithmetic are the discrete solve's, so the gradient is the discrete-exact one (tested against
autograd through the same steps, `GradientMethod.discrete_solve`). The first solve of a field, a
state shape and a solver compiles (seconds); the harness runs it once before the counted run and
records that time as the case's compile time (`Capabilities.compiles`). Evaluations inside the
graph are counted per step (`odebench.measure.nfe.count_evaluations`): the stages, and as many
VJPs in the backward.

Only fixed steps: an adaptive solve's accept/reject decision reads a value out of the graph at
every step. ``python -m benchmarks.compiled_step`` measures this against compiling the whole loop.

Reference: Ansel et al., "PyTorch 2: Faster Machine Learning Through Dynamic Python Bytecode
Transformation and Graph Compilation", ASPLOS 2024.
"""

from __future__ import annotations

import itertools
import weakref

import torch

from odebench import solvers
from odebench.measure.nfe import count_evaluations, notify, unwrapped
from odebench.methods.base import Capabilities, GradientMethod
from odebench.solvers.runge_kutta import check_options, fixed_grid

PAPER = "Ansel et al., PyTorch 2 (torch.compile), ASPLOS 2024"


def rk_step(func, solver: solvers.Solver):
    """One explicit Runge-Kutta step of `solver` on `func` as a function of ``(y, t0, dt)``, the
    step a tensor so that one traced graph serves every step."""
    tableau = solver.tableau
    a, b, c = tableau.a, tableau.b, tableau.c

    def step(y, t0, dt):
        k = []
        for i in range(tableau.stages):
            y_i = y + dt * sum(a[i][j] * k[j] for j in range(i)) if i else y
            k.append(func(t0 + c[i] * dt, y_i))
        return y + dt * sum(b_i * k_i for b_i, k_i in zip(b, k) if b_i)

    return step


class CompiledStep(GradientMethod):
    """Autograd through fixed steps, each step one ``torch.compile``d graph (see the module)."""

    description = "backprop through native fixed steps, each step compiled by torch.compile"
    capabilities = Capabilities(
        exact_discrete_gradient=True,
        adaptive=False,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend="torch",
        paper=PAPER,
        torchdiffeq_grid=True,
        compiles=True,
    )

    def __init__(self) -> None:
        #: field -> solver name -> its compiled step (a field's graphs go with it)
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def compiled_step(self, func, solver: solvers.Solver):
        """`rk_step` of `func` compiled, once per field and solver."""
        per_solver = self._compiled.setdefault(func, {})
        if solver.name not in per_solver:
            per_solver[solver.name] = torch.compile(rk_step(func, solver), dynamic=False)
        return per_solver[solver.name]

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        spec = solvers.get(solver)
        options = check_options(spec, options)
        step = self.compiled_step(unwrapped(func), spec)
        grid = fixed_grid(t, options.get("step_size"))
        solution, y, j = [y0], y0, 1
        for t0, t1 in itertools.pairwise(grid):
            dt = t1 - t0
            notify(func, "callback_step", t0, y, dt)
            y1 = count_evaluations(func, step(y, t0, dt), spec.tableau.stages)
            while j < len(t) and t1 >= t[j]:  # torchdiffeq's linear interpolation inside a step
                if t[j] == t1:
                    solution.append(y1)
                else:
                    solution.append(y + (t[j] - t0) / (t1 - t0) * (y1 - y))
                j += 1
            y = y1
        return torch.stack(solution)
