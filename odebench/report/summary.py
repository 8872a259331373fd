"""The table printed at the end of a sweep (records in, text out; nothing is solved)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from odebench.record import Record


def summary_table(records: Sequence[Record]) -> str:
    """One row per case: status, gradient error, NFE, VJPs, time and memory."""
    if not records:
        return "no cases were run"
    rows = []
    for r in records:
        c = r.case
        rows.append(
            {
                "task": c.task if c.size is None else f"{c.task}[{c.size}]",
                "method": c.method,
                "solver": c.solver,
                "tol": f"h={c.step_size:g}" if c.step_size is not None else f"{c.rtol:g}",
                "status": r.status,
                "grad_err": _fmt(r.grad_rel_error, "{:.1e}") + ("*" if r.at_reference_resolution else ""),
                "disc_err": _fmt(r.grad_rel_error_discrete, "{:.1e}"),
                "nfe_f": _fmt(r.nfe_forward, "{}"),
                "nfe_b": _fmt(r.nfe_backward, "{}"),
                "vjp_b": _fmt(r.vjp_backward, "{}"),
                "t_fwd_ms": _fmt(r.time_forward_s, "{:.1f}", 1e3),
                "t_bwd_ms": _fmt(r.time_backward_s, "{:.1f}", 1e3),
                "mem_KiB": _fmt(r.peak_memory_bytes, "{:.0f}", 1 / 1024),
            }
        )
    table = pd.DataFrame(rows).to_string(index=False)
    notes = ["* at reference resolution: the error is below 10x the reference's own error estimate"]
    failed = [r for r in records if r.status != "ok"]
    for r in failed:
        notes.append(f"{r.case.label()}: {r.status}: {r.error}")
    overhead = _overhead(records)
    if overhead:
        notes.append(overhead)
    return table + "\n\n" + "\n".join(notes)


def _fmt(value, pattern: str, scale: float = 1.0) -> str:
    return "-" if value is None else pattern.format(value * scale if scale != 1.0 else value)


def _overhead(records: Sequence[Record]) -> str:
    """Harness cost per case against one bare forward+backward of the method."""
    ratios = [
        r.wall_time_s / (r.time_forward_s + r.time_backward_s)
        for r in records
        if r.status == "ok" and r.wall_time_s and r.time_forward_s and r.time_backward_s
    ]
    if not ratios:
        return ""
    ratio = pd.Series(ratios).median()
    return (
        f"harness cost: median case wall time = {ratio:.0f}x one bare forward+backward "
        "(counted run, discrete-exact replay, warm-up, timed repeats, memory run, reference lookup)"
    )
