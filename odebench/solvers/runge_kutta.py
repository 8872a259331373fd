"""Explicit Runge-Kutta integration that records its step grid, and replay of a recorded grid.

`integrate` reproduces torchdiffeq's solvers decision for decision (initial step selection,
error norm, step-size controller, dense output for adaptive solvers; the time grid and linear
interpolation for fixed-step ones), so a native method takes the same accepted steps as
torchdiffeq on the same problem and spends the same forward function evaluations; the accepted
grid is bitwise torchdiffeq's. It returns a `Trajectory`: the accepted steps with the state at
each (and the carried first stage where it cannot be recomputed), and where every output time
falls.

`replay` recomputes the outputs on a recorded trajectory with plain autograd. Its gradient is
the exact gradient of the discrete forward solve ("discrete-exact"), which the checkpointing
methods (ACA, symplectic adjoint) must reproduce.

Every output is written as ``y_n + dt * sum_i w_i k_i`` for the step n that contains it, with
weights ``w`` from the dense-output polynomial (adaptive) or linear interpolation (fixed step),
so the backward passes treat outputs and step ends alike.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from odebench.errors import MaxStepsExceeded, UnsupportedError
from odebench.measure.nfe import notify
from odebench.solvers import Solver
from odebench.solvers.tableau import TableauTensors

ADAPTIVE_OPTIONS = frozenset(
    {"first_step", "max_num_steps", "min_step", "max_step", "safety", "ifactor", "dfactor", "norm"}
)
FIXED_OPTIONS = frozenset({"step_size", "interp", "perturb"})


@dataclass
class Step:
    """One accepted step from ``t0`` to ``t0 + dt``, starting at state ``y0``.

    ``carried``: the first stage is the last stage of the previous step, evaluated just before
    ``t0`` (adaptive solvers reuse it, as torchdiffeq does); otherwise it is ``f(t0, y0)``. For a
    first-same-as-last scheme (dopri5, bosh3) the carried stage is ``f(t0-, y0)`` and is
    recomputed when needed; for the others (adaptive_heun, fehlberg2, dopri8) it depends on the
    previous step's stages and is kept in ``f0``.
    """

    t0: torch.Tensor
    dt: torch.Tensor
    y0: torch.Tensor
    f0: torch.Tensor | None = None
    carried: bool = False


@dataclass
class OutputSlot:
    """Output number ``index`` equals ``y_n + dt * sum_i weights_i k_i`` of step ``step``."""

    index: int
    step: int
    weights: torch.Tensor


@dataclass
class Trajectory:
    """The recorded discretisation of one solve; ``end`` is the state after the last step."""

    solver: Solver
    t: torch.Tensor
    end: torch.Tensor
    steps: list[Step] = field(default_factory=list)
    outputs: list[OutputSlot] = field(default_factory=list)

    @property
    def carries_first_stage(self) -> bool:
        return self.solver.adaptive

    @property
    def recomputes_first_stage(self) -> bool:
        """The carried first stage is ``f(t0-, y0)`` of its own step (first same as last)."""
        return self.solver.adaptive and self.solver.tableau.fsal

    def outputs_by_step(self) -> dict[int, list[OutputSlot]]:
        grouped: dict[int, list[OutputSlot]] = {}
        for slot in self.outputs:
            grouped.setdefault(slot.step, []).append(slot)
        return grouped


# ----------------------------------------------------------------------------- one step


def call_field(func: nn.Module, t: torch.Tensor, y: torch.Tensor, *, just_before: bool = False):
    """Evaluate ``func`` as torchdiffeq does: time cast to the state's dtype, and a stage at
    the end of an adaptive step taken at the float just below it."""
    t = t.to(y.dtype)
    if just_before:
        t = torch.nextafter(t, t - 1)
    return func(t, y)


def stage_time(tab: TableauTensors, solver: Solver, step: Step, i: int):
    """Time of stage ``i`` of `step` and whether it is evaluated just before it.

    Inside the step the time is computed in the state's dtype, as torchdiffeq computes it (in
    float32 that differs from rounding the float64 time).
    """
    if i == 0:
        return step.t0, step.carried
    if solver.adaptive and solver.tableau.c[i] == 1.0:
        return step.t0 + step.dt, True
    return step.t0.to(tab.c.dtype) + tab.c[i] * step.dt.to(tab.c.dtype), False


# Without a graph (the forward solve, the symplectic adjoint's recomputation) a step's stages
# live in one buffer ``K`` of shape ``(*y.shape, s)`` and are summed as torchdiffeq sums them, so
# the forward grid is bitwise torchdiffeq's. Restacking a list for every stage would copy
# O(s^2) states per step.


def stage_buffer(y0: torch.Tensor, solver: Solver) -> torch.Tensor:
    return y0.new_empty(*y0.shape, solver.tableau.stages)


def stage_state(y0: torch.Tensor, K: torch.Tensor, a_dt: torch.Tensor, i: int) -> torch.Tensor:
    """Input of stage ``i``: ``y0 + sum_{j<i} (dt a)_ij k_j``, with ``a_dt = dt * a``."""
    if i == 0:
        return y0
    return y0 + torch.sum(K[..., :i] * a_dt[i, :i], dim=-1)


def evaluate_stage(func, tab: TableauTensors, solver: Solver, step: Step, K, a_dt, i: int) -> torch.Tensor:
    """``K[..., i] = f(t_i, Y_i)``; returns the stage input ``Y_i``."""
    y_i = stage_state(step.y0, K, a_dt, i)
    t_i, just_before = stage_time(tab, solver, step, i)
    K[..., i] = call_field(func, t_i, y_i, just_before=just_before)
    return y_i


def combine(y0: torch.Tensor, K: torch.Tensor, dt: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``y0 + dt * sum_i weights_i k_i`` from a stage buffer."""
    return y0 + torch.sum(K * (weights * dt.to(y0.dtype)), dim=-1)


def take_step(func, tab: TableauTensors, solver: Solver, step: Step, carried: torch.Tensor | None):
    """One step from ``step.y0`` without a graph: ``(K, y1)``, the stage buffer and the end state.

    ``carried`` is the first stage an adaptive solve carries over (None: it is evaluated). The
    operations are the forward solve's own, so a step recomputed from a checkpoint reproduces
    the forward states bitwise.
    """
    K = stage_buffer(step.y0, solver)
    first = 0
    if carried is not None:
        K[..., 0] = carried
        first = 1
    a_dt = tab.a * step.dt.to(step.y0.dtype)
    for i in range(first, solver.tableau.stages):
        y1 = evaluate_stage(func, tab, solver, step, K, a_dt, i)
    if not (solver.adaptive and solver.tableau.fsal):
        y1 = combine(step.y0, K, step.dt, tab.b)
    return K, y1


# With a graph (replay, ACA's backward) the stages are a list and every combination a chain of
# scaled additions, which builds fewer and smaller autograd nodes than stacking the list (the
# values differ from the forward's by round-off only).


def linear_combination(y0: torch.Tensor, k: list[torch.Tensor], coefficients) -> torch.Tensor:
    """``y0 + sum_j coefficients_j k_j`` (Python floats), skipping zero coefficients."""
    out = y0
    for c, k_j in zip(coefficients, k):
        if c != 0.0:
            out = torch.add(out, k_j, alpha=c)
    return out


def graph_stages(func, tab: TableauTensors, solver: Solver, step: Step, y0, f0, count: int):
    """Stage derivatives ``k_0 .. k_{count-1}`` of `step` from `y0` under the caller's grad mode
    (``f0`` is ``k_0`` when given)."""
    dt = step.dt.item()
    k = [] if f0 is None else [f0]
    for i in range(len(k), count):
        y_i = linear_combination(y0, k, [a_ij * dt for a_ij in solver.tableau.a[i][:i]])
        t_i, just_before = stage_time(tab, solver, step, i)
        k.append(call_field(func, t_i, y_i, just_before=just_before))
    return k


def dense_output_weights(tab: TableauTensors, x: torch.Tensor) -> torch.Tensor:
    """Stage weights of torchdiffeq's quartic dense output at relative position ``x``.

    torchdiffeq fits ``p(x) = y0 + x d + x^2 c + x^3 b + x^4 a`` through ``y0``, ``y1``, the
    half-step state and the end derivatives; each coefficient is linear in the stages, and the
    ``y0`` terms cancel, which leaves these weights.
    """
    first = torch.zeros_like(tab.b)
    first[0] = 1.0
    last = torch.zeros_like(tab.b)
    last[-1] = 1.0
    c2 = (last - 4 * first) - 5 * tab.b + 16 * tab.b_mid
    c3 = (5 * first - 3 * last) + 14 * tab.b - 32 * tab.b_mid
    c4 = 2 * (last - first) - 8 * tab.b + 16 * tab.b_mid
    x = x.to(tab.b.dtype)
    return x * first + x**2 * c2 + x**3 * c3 + x**4 * c4


# ----------------------------------------------------------------------------- forward solve


def refuse_unknown_options(
    options: Mapping[str, Any] | None, valid: frozenset[str], solver: Solver, by: str
) -> dict[str, Any]:
    """A copy of `options`, or a one-line refusal naming the unknown ones and the valid ones."""
    options = dict(options or {})
    unknown = sorted(set(options) - valid)
    if unknown:
        raise UnsupportedError(
            f"option(s) {', '.join(unknown)} not supported with solver {solver.name!r} by {by}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    return options


def refuse_bad_options(
    options: Mapping[str, Any] | None, valid: frozenset[str], solver: Solver, by: str
) -> dict[str, Any]:
    """`refuse_unknown_options`, and a ``first_step`` or ``step_size`` that is not a positive finite
    number refused too (for integrators that take either as given)."""
    options = refuse_unknown_options(options, valid, solver, by)
    for name in ("first_step", "step_size"):
        value = options.get(name)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise UnsupportedError(f"{name} must be a positive finite number, got {value!r}")
    return options


def check_options(solver: Solver, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Refuse options the native integrator does not implement (one line, valid ones listed)."""
    valid = ADAPTIVE_OPTIONS if solver.adaptive else FIXED_OPTIONS
    options = refuse_unknown_options(options, valid, solver, "the native integrator")
    if options.get("interp", "linear") != "linear":
        raise UnsupportedError("only interp='linear' is supported for fixed-step native solves")
    if options.get("perturb", False):
        raise UnsupportedError("perturb=True is not supported by the native integrator")
    return options


@torch.no_grad()
def integrate(func, y0, t, solver: Solver, rtol, atol, options=None, *, keep_states: bool = True):
    """Solve on ``t`` as torchdiffeq would; return ``(solution, trajectory)``.

    Runs without a graph: differentiate a recorded trajectory with `replay` or step by step.
    Steps are reported through ``func``'s torchdiffeq-style callbacks when it has them. With
    ``keep_states=False`` the trajectory keeps the grid alone (each step's ``y0`` and ``f0`` are
    None), for methods that recompute states from checkpoints.
    """
    options = check_options(solver, options)
    trajectory = Trajectory(solver=solver, t=t, end=y0)
    solution = [y0]
    record = trajectory.steps.append
    if not keep_states:

        def record(step: Step) -> None:
            trajectory.steps.append(Step(t0=step.t0, dt=step.dt, y0=None, carried=step.carried))

    if len(t) > 1:
        if solver.adaptive:
            _integrate_adaptive(func, y0, t, solver, rtol, atol, options, trajectory, solution, record)
        else:
            _integrate_fixed(func, y0, t, solver, options, trajectory, solution, record)
    return torch.stack(solution), trajectory


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    """torchdiffeq's default error norm: the root mean square over every entry."""
    return x.abs().pow(2).mean().sqrt()


def _initial_step(func, t0, y0, f0, order, rtol, atol, t_dtype, norm):
    """Hairer, Norsett & Wanner (II.4) initial step, exactly as torchdiffeq selects it."""
    scale = atol + torch.abs(y0) * rtol
    d0 = norm(y0 / scale).abs()
    d1 = norm(f0 / scale).abs()
    h0 = torch.tensor(1e-06, dtype=y0.dtype, device=y0.device) if d0 < 1e-05 or d1 < 1e-05 else 0.01 * d0 / d1
    h0 = h0.abs()
    f1 = call_field(func, t0 + h0, y0 + h0 * f0)
    d2 = torch.abs(norm((f1 - f0) / scale) / h0)
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = torch.max(torch.tensor(1e-6, dtype=y0.dtype, device=y0.device), h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / float(order))
    return torch.min(100 * h0, h1.abs()).to(t_dtype)


@dataclass(frozen=True)
class Controller:
    """torchdiffeq's step-size control of a scheme of order `order`: the settings an adaptive
    solve takes in its options, as tensors in the time dtype (``first_step`` None: selected)."""

    order: int
    rtol: torch.Tensor
    atol: torch.Tensor
    first_step: torch.Tensor | None
    min_step: torch.Tensor
    max_step: torch.Tensor
    safety: torch.Tensor
    ifactor: torch.Tensor
    dfactor: torch.Tensor
    exponent: torch.Tensor
    max_num_steps: int
    norm: Callable[[torch.Tensor], torch.Tensor]

    @classmethod
    def from_options(cls, options: Mapping[str, Any], order: int, rtol, atol, t_dtype, device) -> Controller:
        def as_t(value):
            return torch.as_tensor(value, dtype=t_dtype, device=device)

        first_step = options.get("first_step")
        return cls(
            order=order,
            rtol=as_t(rtol),
            atol=as_t(atol),
            first_step=None if first_step is None else as_t(first_step),
            min_step=as_t(options.get("min_step", 0.0)),
            max_step=as_t(options.get("max_step", math.inf)),
            safety=as_t(options.get("safety", 0.9)),
            ifactor=as_t(options.get("ifactor", 10.0)),
            dfactor=as_t(options.get("dfactor", 0.2)),
            exponent=as_t(order).reciprocal(),
            max_num_steps=int(options.get("max_num_steps", 2**31 - 1)),
            norm=options.get("norm") or rms_norm,
        )

    def initial_step(self, func, t0, y0, f0) -> torch.Tensor:
        """``first_step``, or else Hairer's selection from ``f0 = f(t0, y0)`` (one evaluation)."""
        if self.first_step is not None:
            return self.first_step
        return _initial_step(func, t0, y0, f0, self.order, self.rtol, self.atol, self.rtol.dtype, self.norm)

    def bounded(self, dt: torch.Tensor) -> torch.Tensor:
        """`dt` clamped to ``[min_step, max_step]``, a non-finite one replaced by ``min_step``."""
        if not torch.isfinite(dt):
            dt = self.min_step
        return dt.clamp(self.min_step, self.max_step)

    def error_ratio(self, error: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor) -> torch.Tensor:
        """The error estimate's norm scaled by ``atol + rtol max(|y0|, |y1|)``: at most 1 passes."""
        return self.norm(error / (self.atol + self.rtol * torch.max(y0.abs(), y1.abs()))).abs()

    def next_step(self, dt: torch.Tensor, error_ratio: torch.Tensor) -> torch.Tensor:
        """torchdiffeq's next step size after a step of `dt` (accepted or not)."""
        if error_ratio == 0:
            return dt * self.ifactor
        dfactor = torch.ones((), dtype=dt.dtype, device=dt.device) if error_ratio < 1 else self.dfactor
        proposed = self.safety / error_ratio.type_as(dt) ** self.exponent
        return dt * torch.min(self.ifactor, torch.max(proposed, dfactor))


def _integrate_adaptive(func, y0, t, solver, rtol, atol, options, trajectory, solution, record):
    t_dtype = torch.promote_types(torch.float64, y0.dtype)
    control = Controller.from_options(options, solver.order, rtol, atol, t_dtype, y0.device)
    t = t.to(t_dtype)
    tab = solver.tableau.tensors(y0.dtype, y0.device)

    f0 = call_field(func, t[0], y0)
    dt = control.initial_step(func, t[0], y0, f0)
    y, f, t_start, t_end, K_last, y_start = y0, f0, t[0], t[0], None, y0
    fsal = solver.tableau.fsal
    for j in range(1, len(t)):
        attempts = 0
        while t[j] > t_end:
            if attempts >= control.max_num_steps:
                raise MaxStepsExceeded(f"max_num_steps exceeded ({attempts}>={control.max_num_steps})")
            attempts += 1
            dt = control.bounded(dt)
            step = Step(t0=t_end, dt=dt, y0=y, f0=None if fsal else f, carried=bool(trajectory.steps))
            notify(func, "callback_step", step.t0, y, dt)
            if not step.t0 + dt > step.t0:
                raise FloatingPointError(f"underflow in dt {dt.item()}")
            if not torch.isfinite(y).all():
                raise FloatingPointError("non-finite values in the state")
            K, y1 = take_step(func, tab, solver, step, f)
            error = torch.sum(K * (tab.b_error * dt.to(y.dtype)), dim=-1)
            error_ratio = control.error_ratio(error, y, y1)
            accept = bool(error_ratio <= 1)
            if dt > control.max_step:
                accept = False
            if dt <= control.min_step:
                accept = True
            if accept:
                record(step)
                # A copy of the last stage, so that the buffer is freed with the next step.
                y_start, y, f, t_start, t_end, K_last = y, y1, K[..., -1].clone(), step.t0, step.t0 + dt, K
            else:
                notify(func, "callback_reject_step", step.t0, y, dt)
            dt = control.next_step(dt, error_ratio).clamp(control.min_step, control.max_step)
        n = len(trajectory.steps) - 1
        weights = dense_output_weights(tab, (t[j] - t_start) / (t_end - t_start))
        trajectory.outputs.append(OutputSlot(index=j, step=n, weights=weights))
        solution.append(combine(y_start, K_last, trajectory.steps[n].dt, weights))
    trajectory.end = y


def fixed_grid(t: torch.Tensor, step_size) -> torch.Tensor:
    """torchdiffeq's grid: multiples of ``step_size`` from ``t[0]``, the last one moved to ``t[-1]``."""
    if step_size is None:
        return t
    niters = torch.ceil((t[-1] - t[0]) / step_size + 1).item()
    grid = torch.arange(0, niters, dtype=t.dtype, device=t.device) * step_size + t[0]
    grid[-1] = t[-1]
    return grid


def _integrate_fixed(func, y0, t, solver, options, trajectory, solution, record):
    tab = solver.tableau.tensors(y0.dtype, y0.device)
    grid = fixed_grid(t, options.get("step_size"))
    y, j = y0, 1
    for n, (t0, t1) in enumerate(itertools.pairwise(grid)):
        step = Step(t0=t0, dt=t1 - t0, y0=y)
        notify(func, "callback_step", t0, y, step.dt)
        K, y1 = take_step(func, tab, solver, step, None)
        record(step)
        while j < len(t) and t1 >= t[j]:
            fraction = 0.0 if t[j] == t0 else 1.0 if t[j] == t1 else (t[j] - t0) / (t1 - t0)
            weights = torch.as_tensor(fraction, dtype=y0.dtype, device=y0.device) * tab.b
            trajectory.outputs.append(OutputSlot(index=j, step=n, weights=weights))
            solution.append(combine(y, K, step.dt, weights))
            j += 1
        y = y1
    trajectory.end = y


# ----------------------------------------------------------------------------- replay


def replay(func, y0: torch.Tensor, trajectory: Trajectory) -> torch.Tensor:
    """Recompute the solution on a recorded grid with plain autograd (discrete-exact)."""
    solver = trajectory.solver
    tab = solver.tableau.tensors(y0.dtype, y0.device)
    solution: list[torch.Tensor | None] = [y0] + [None] * (len(trajectory.t) - 1)
    slots = trajectory.outputs_by_step()
    y, f = y0, None
    for n, step in enumerate(trajectory.steps):
        k = graph_stages(func, tab, solver, step, y, f, solver.tableau.stages)
        dt = step.dt.item()
        for slot in slots.get(n, ()):
            solution[slot.index] = linear_combination(y, k, [w * dt for w in slot.weights.tolist()])
        y = linear_combination(y, k, [b * dt for b in solver.tableau.b])
        f = k[-1] if trajectory.carries_first_stage else None
    return torch.stack(solution)
