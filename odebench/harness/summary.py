"""The table printed at the end of a sweep (records in, text out; nothing is solved)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from odebench.jobs.base import problem_label, setting_label
from odebench.jobs.gradient import Record
from odebench.report.text import fmt


def summary_table(records: Sequence) -> str:
    """One row per case: status, gradient error, NFE, VJPs, time and memory (training runs:
    final loss, held-out metric, parameter error, training time, NFE); then the failures, the
    warnings the cases raised, and the harness's cost."""
    if not records:
        return "no cases were run"
    gradient = [r for r in records if r.LINE == "record"]
    training = [r for r in records if r.LINE == "training"]
    ratios = [r for r in records if r.LINE == "ratio"]
    tables = [_gradient_rows(gradient)] if gradient else []
    if training:
        tables.append(_training_rows(training))
    if ratios:
        tables.append(_ratio_rows(ratios))
    notes = (
        ["* at reference resolution: the error is below 10x the reference's own error estimate"]
        if gradient
        else []
    )
    for r in records:
        if r.status != "ok":
            notes.append(f"{r.case.label()}: {r.status}: {r.error}")
    warned: dict[str, list[str]] = {}
    for r in records:
        for warning in r.warnings or ():
            warned.setdefault(warning, []).append(r.case.label())
    for warning, labels in warned.items():
        where = labels[0] + (f" and {len(labels) - 1} more" if len(labels) > 1 else "")
        notes.append(f"warning ({where}): {warning}")
    overhead = _overhead(gradient)
    if overhead:
        notes.append(overhead)
    return "\n\n".join([*tables, *(["\n".join(notes)] if notes else [])])


def _ratio_rows(records: Sequence) -> str:
    rows = []
    for r in records:
        c = r.case
        for method in c.methods:
            rows.append(
                {
                    "problem": problem_label(c.task, c.size),
                    "method": method,
                    "vs": c.baseline,
                    "solver": c.solver,
                    "setting": setting_label(c.step_size, c.rtol, c.atol),
                    "status": r.status,
                    "ratio": fmt(r.ratios.get(method), "{:.3f}"),
                    "q25": fmt(r.ratios_q25.get(method), "{:.3f}"),
                    "q75": fmt(r.ratios_q75.get(method), "{:.3f}"),
                    "rounds": c.rounds,
                }
            )
    return "interleaved time ratios (median over rounds):\n" + pd.DataFrame(rows).to_string(index=False)


def _training_rows(records: Sequence) -> str:
    rows = []
    for r in records:
        c = r.case
        rows.append(
            {
                "study": c.study,
                "method": c.method,
                "solver": c.solver,
                "setting": setting_label(c.step_size, c.rtol, c.atol),
                "seed": c.seed,
                "status": r.status,
                "done": f"{fmt(r.iterations_done, '{}')}/{c.iterations}",
                "final_loss": fmt(r.final_loss, "{:.2e}"),
                "heldout": fmt(r.heldout, "{:.3g}"),
                "param_err": fmt(r.parameter_error, "{:.2e}"),
                "grad_err": fmt(r.grad_rel_error_median, "{:.1e}"),
                "train_s": fmt(r.train_time_s, "{:.1f}"),
                "to_target_s": fmt(r.time_to_target_s, "{:.1f}"),
                "nfe_f": fmt(r.nfe_forward_total, "{}"),
                "nfe_b": fmt(r.nfe_backward_total, "{}"),
            }
        )
    return pd.DataFrame(rows).to_string(index=False)


def _gradient_rows(records: Sequence[Record]) -> str:
    rows = []
    for r in records:
        c = r.case
        rows.append(
            {
                "problem": problem_label(c.task, c.size),
                "method": c.method,
                "solver": c.solver,
                "setting": setting_label(c.step_size, c.rtol, c.atol),
                "status": r.status,
                "grad_err": fmt(r.grad_rel_error, "{:.1e}") + ("*" if r.at_reference_resolution else ""),
                "disc_err": fmt(r.grad_rel_error_discrete, "{:.1e}"),
                "nfe_f": fmt(r.nfe_forward, "{}"),
                "nfe_b": fmt(r.nfe_backward, "{}"),
                "vjp_b": fmt(r.vjp_backward, "{}"),
                "t_fwd_ms": fmt(r.time_forward_s, "{:.1f}", 1e3),
                "t_bwd_ms": fmt(r.time_backward_s, "{:.1f}", 1e3),
                "mem_KiB": fmt(r.peak_memory_bytes, "{:.0f}", 1 / 1024),
            }
        )
    return pd.DataFrame(rows).to_string(index=False)


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
