"""The report's framework view: PyTorch methods and diffrax's (JAX) on the same problems.

A JAX case is a record whose ``framework`` is jax: its gradient is a compiled program, timed after
compilation, with the compilation reported apart (as a compiling torch method's first call is). Per
context (one task, size, solver, setting, dtype and device: nothing pooled across them) one row per
method gives its framework, time per gradient (forward plus backward, median over seeds), its
time over naive's from the same-run ratio cases, compile time, peak memory with the backend that
measured it (torch's allocator and XLA's account both count the arrays the framework allocates),
the gradient error against the same reference, and the forward solve's accepted/rejected steps
(how close diffrax's grid came to torchdiffeq's). diffrax's grid is its own, so the rows compare
error and cost, never discrete-exact pairs.
"""

from __future__ import annotations

import pandas as pd

from odebench.jobs.base import problem_label
from odebench.report.size import time_vs_naive
from odebench.report.speed import GroupSpeed
from odebench.report.style import method_order

CONTEXT = ["task", "size", "solver", "setting", "dtype", "device"]


def framework_table(ok: pd.DataFrame, groups: dict[tuple[str, str], GroupSpeed]) -> pd.DataFrame | None:
    """The contexts where both a torch and a JAX method succeeded, one row per method; None when
    no context has both."""
    if ok.empty or "framework" not in ok or not (ok["framework"] == "jax").any():
        return None
    out = []
    for key, rows in ok.groupby(CONTEXT, sort=False, dropna=False):
        jax_rows = rows["framework"] == "jax"
        if not jax_rows.any() or jax_rows.all():
            continue
        context = dict(zip(CONTEXT, key))
        for method in method_order(rows["method"]):
            mine = rows[rows["method"] == method]
            compiled = mine["compile_time_s"].notna().all()
            framework = mine["framework"].fillna("torch").iloc[0]  # files older than the field: torch
            peak, backend = mine["peak_memory_mib"].median(), mine["memory_backend"].iloc[0]
            out.append(
                {
                    "task[size]": problem_label(context["task"], context["size"]),
                    "solver": context["solver"],
                    "setting": context["setting"],
                    "method": method,
                    "framework": framework,
                    "ms per gradient": f"{1e3 * mine['time_total_s'].median():.3g}",
                    "time x naive": time_vs_naive(groups, mine.iloc[0], method),
                    "compile s": f"{mine['compile_time_s'].median():.2f}" if compiled else "–",
                    "memory": f"{peak:.3g} MiB ({backend})",
                    "grad error": f"{mine['grad_rel_error'].median():.2g}",
                    "steps": _steps(mine),
                    "n": len(mine),
                }
            )
    return pd.DataFrame(out) if out else None


def _steps(rows: pd.DataFrame) -> str:
    """Accepted/rejected steps of the forward solve (the median over seeds), "–" if not counted."""
    accepted, rejected = rows["steps_accepted"].median(), rows["steps_rejected"].median()
    return "–" if pd.isna(accepted) else f"{accepted:.0f}/{0 if pd.isna(rejected) else rejected:.0f}"
