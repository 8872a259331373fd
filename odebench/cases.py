"""Completing a `Case`: the defaults it leaves open, made explicit, so its identity is exact.

`resolve` gives every case the size it runs at (the task's default when none is given), and
then either tolerances and a step budget (adaptive solvers; tolerances from the dtype when none
are given) or a step (fixed-step solvers; the task's own step *at that size* when none is
given), never both. Two cases that would measure the same thing resolve to the same case, with
the same ``case_id`` and label.

`infeasible` says why a resolved case cannot run at all (a method without that kind of solver,
a tolerance below the dtype's resolution), so a suite can leave it out with the reason instead
of recording an error.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import torch

from odebench import methods, solvers, tasks
from odebench.errors import InvalidInputError
from odebench.record import ATOL_RATIO, MAX_STEPS, Case

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype a Case names; a one-line refusal for any other name."""
    if name not in DTYPES:
        raise InvalidInputError(f"unknown dtype {name!r}; valid: {', '.join(DTYPES)}")
    return DTYPES[name]


@functools.cache
def task_step(task: str, size: int) -> float:
    """The task's own step for fixed-step solvers at `size` (it may depend on the size)."""
    return float(tasks.get(task).build(size).step_size)


def resolve(case: Case, *, atol_ratio: float = ATOL_RATIO) -> Case:
    """`case` with its size, and its tolerances or its step, made explicit (see the module doc).

    Unknown task, solver or dtype names are refused in one line naming the valid ones.
    """
    task = tasks.get(case.task)
    solver = solvers.get(case.solver)
    dtype = torch_dtype(case.dtype)
    size = task.default_size if case.size is None else case.size
    if solver.adaptive:
        default_rtol, default_atol = solvers.default_tolerances(dtype)
        if case.rtol is None:
            rtol, atol = default_rtol, default_atol if case.atol is None else case.atol
        else:
            rtol = case.rtol
            atol = rtol * atol_ratio if case.atol is None else case.atol
        max_steps = MAX_STEPS if case.max_steps is None else case.max_steps
        return replace(case, size=size, rtol=rtol, atol=atol, step_size=None, max_steps=max_steps)
    step = case.step_size if case.step_size is not None else task_step(case.task, size)
    return replace(case, size=size, rtol=None, atol=None, step_size=step, max_steps=None)


def infeasible(case) -> str | None:
    """Why the resolved `case` cannot run (a method without that solver, a tolerance the dtype
    cannot meet). Any kind of case: a ratio case names several methods and a baseline.

    A training run keeps a tolerance its dtype cannot meet: it is its study's published setup
    (the ACA paper trains in float32 at 1e-7), and what the solver then does is a finding; the
    solve warns (`odebench.errors.ToleranceWarning`) and the warning is in the record."""
    names = (*case.methods, case.baseline) if hasattr(case, "methods") else (case.method,)
    for name in names:
        method = methods.get(name)
        if not method.supports(case.solver):
            supported = ", ".join(method.solvers())
            return f"{name} does not support solver {case.solver} (it supports: {supported})"
    if case.rtol is not None and not hasattr(case, "study"):
        return solvers.tolerance_problem(case.rtol, torch_dtype(case.dtype))
    return None


__all__ = ["DTYPES", "infeasible", "resolve", "task_step", "torch_dtype"]
