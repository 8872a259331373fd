"""Step grids for one-step schemes that cannot interpolate: every step ends on the output times.

The reversible solvers and MALI's leapfrog take steps of their own (not torchdiffeq's) and have
no dense output, so their steps land on every output time: `fixed` puts the output times on
torchdiffeq's fixed grid, and `adaptive` shortens the step that reaches an output time. Both
record the accepted step times (a float each) and where each output time falls, which is all
the backward pass needs to retrace the steps. Times are in float64 or the state's wider dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from odebench.errors import MaxStepsExceeded
from odebench.measure.nfe import notify
from odebench.solvers.runge_kutta import Controller, call_field, fixed_grid

#: A fixed-grid point closer than this many step sizes to an output time is merged into it.
MERGE = 1e-3


@dataclass
class Grid:
    """The accepted step times of one solve (``times[0] = t0``; step n goes from ``times[n]`` to
    ``times[n + 1]``) and, for each output time, the index in `times` it lands on."""

    times: torch.Tensor
    outputs: list[int]

    def output_at(self) -> dict[int, int]:
        """``{index in times: output number}``, for a backward pass walking the steps."""
        return {n: j for j, n in enumerate(self.outputs)}


def time_dtype(y0: torch.Tensor) -> torch.dtype:
    """The dtype step times are kept in: float64, or the state's if wider."""
    return torch.promote_types(torch.float64, y0.dtype)


def fixed(t: torch.Tensor, step_size: float | None, y0: torch.Tensor) -> Grid:
    """torchdiffeq's fixed grid (`fixed_grid`) with every output time put on it; grid points
    within `MERGE` step sizes of an output time are merged into it."""
    t = t.to(time_dtype(y0))
    times = t
    if step_size is not None:
        grid = fixed_grid(t, step_size)
        after = torch.searchsorted(t, grid).clamp(1, len(t) - 1)  # t[after - 1] <= point <= t[after]
        gap = torch.minimum(grid - t[after - 1], t[after] - grid).abs()
        times = torch.cat([grid[gap > MERGE * step_size], t]).sort().values
    return Grid(times, torch.searchsorted(times, t).tolist())


class Stepper(Protocol):
    """A one-step scheme's state as `adaptive` drives it."""

    #: The solution now (the state the error is scaled by and the callbacks see).
    y: torch.Tensor

    def trial(self, t0: torch.Tensor, t1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The solution at `t1` after a step from `t0`, and the step's error estimate; the step
        is not taken until `accept`."""

    def accept(self) -> None:
        """Take the last trial step."""

    def output(self) -> None:
        """Record what the method keeps at an output time (the solve has just reached one)."""


def adaptive(
    stepper: Stepper, func, t, order: int, rtol, atol, options, *, f0=None, stretch: float = 0.0
) -> Grid:
    """Adaptive steps of `stepper` from ``t[0]`` through every output time, without a graph.

    Step sizes come from `Controller` (torchdiffeq's control, set by ``options``) on the
    stepper's error estimate; a rejected trial is retried with a smaller step. The step that
    reaches an output time is shortened to land on it, or stretched by at most `stretch` of
    itself where it would stop just short, and such a step does not shrink the next proposal.
    ``f0`` is ``f(t0, y0)`` where the caller has it (else it is evaluated only if the initial
    step is selected).
    """
    y0 = stepper.y
    t_dtype = time_dtype(y0)
    control = Controller.from_options(options, order, rtol, atol, t_dtype, y0.device)
    t = t.to(t_dtype)
    if f0 is None and control.first_step is None:
        f0 = call_field(func, t[0], y0)
    dt = control.initial_step(func, t[0], y0, f0)
    del f0  # not held through the solve
    t_now = t[0]
    # Step times as Python floats (exact in the time dtype): N small tensors would cost more.
    times, outputs = [t_now.item()], [0]
    for j in range(1, len(t)):
        attempts = 0
        while t_now < t[j]:
            if attempts >= control.max_num_steps:
                raise MaxStepsExceeded(f"max_num_steps exceeded ({attempts}>={control.max_num_steps})")
            attempts += 1
            dt = control.bounded(dt)
            lands = bool(t_now + dt * (1 + stretch) >= t[j])  # no sliver of a step left before t[j]
            t_next = t[j] if lands else t_now + dt
            h = t_next - t_now
            y = stepper.y
            notify(func, "callback_step", t_now, y, h)
            if not t_next > t_now:
                raise FloatingPointError(f"underflow in dt {h.item()}")
            if not torch.isfinite(y).all():
                raise FloatingPointError("non-finite values in the state")
            y1, error = stepper.trial(t_now, t_next)
            error_ratio = control.error_ratio(error, y, y1)
            accept = bool(error_ratio <= 1) or bool(dt <= control.min_step)
            proposed = dt
            dt = control.next_step(h, error_ratio)
            if accept:
                stepper.accept()
                t_now = t_next
                times.append(t_now.item())
                if lands:  # a step shortened to land on t[j] does not shrink the next one
                    dt = torch.max(dt, proposed)
            else:
                notify(func, "callback_reject_step", t_now, y, h)
            dt = dt.clamp(control.min_step, control.max_step)
        outputs.append(len(times) - 1)
        stepper.output()
    return Grid(torch.tensor(times, dtype=t_dtype, device=y0.device), outputs)
