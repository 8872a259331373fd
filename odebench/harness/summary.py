"""The table printed at the end of a sweep (records in, text out; nothing is solved)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from odebench.jobs.base import problem_label, setting_label
from odebench.jobs.gradient import Record
from odebench.report.text import COUNT, ERROR, fmt, fmt_column, plural

#: The footnote of a starred gradient error.
STAR_NOTE = "* at reference resolution: the error is below 10x the reference's own error estimate"


def summary_table(records: Sequence) -> str:
    """One row per case: status, gradient error, NFE, VJPs, time and memory (training runs:
    final loss, held-out metric, parameter error, training time, NFE); then the failures, the
    warnings the cases raised, and what measuring a case cost. Each column reads in one format;
    memory is in MiB, as in the report."""
    if not records:
        return "nothing was run"
    gradient = [r for r in records if r.LINE == "record"]
    training = [r for r in records if r.LINE == "training"]
    ratios = [r for r in records if r.LINE == "ratio"]
    tables = [_gradient_rows(gradient)] if gradient else []
    if training:
        tables.append(_training_rows(training))
    if ratios:
        tables.append(_ratio_rows(ratios))
    notes = [STAR_NOTE] if any(r.at_reference_resolution for r in gradient) else []
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


def counted(n: int, command: str, done: bool = False) -> str:
    """How many jobs, in the words of the command that runs them: ``1 case``, ``16 cases``
    (``odebench run``) or ``1 run``, ``15 runs`` (``odebench train``); with `done`, what became
    of them: ``16 cases run``, ``15 runs done``."""
    training = command == "train"
    text = plural(n, "run" if training else "case")
    return f"{text} {'done' if training else 'run'}" if done else text


def _ratio_rows(records: Sequence) -> str:
    from odebench.report.speed import RESOLUTION, Speed

    rows = []
    for r in records:
        c = r.case
        for method in (*c.methods, *(m for m in r.failed_methods if m not in c.methods)):
            rounds = r.round_ratios.get(method) or ()
            if method in r.ratios:
                q25, q75 = r.ratios_q25[method], r.ratios_q75[method]
                verdict = Speed(r.ratios[method], q25, q75, len(rounds), 1).verdict
            else:
                verdict = "not timed" if r.status == "ok" else r.status
            rows.append(
                {
                    "problem": problem_label(c.task, c.size),
                    "method": method,
                    "vs": c.baseline,
                    "solver": c.solver,
                    "setting": setting_label(c.step_size, c.rtol, c.atol),
                    "ratio": fmt(r.ratios.get(method), "{:.2f}x"),
                    "IQR": "-".join(fmt(q.get(method), "{:.2f}") for q in (r.ratios_q25, r.ratios_q75)),
                    "rounds": len(rounds) or "–",
                    "verdict": verdict,
                }
            )
    return (
        "same-run time ratios (each method's time over the baseline's, interleaved in one process; "
        f"median over rounds and interquartile range; a range covering 1, or within {RESOLUTION:g}x of it, "
        "is a tie):\n" + pd.DataFrame(rows).to_string(index=False)
    )


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
                "param_err": fmt(r.parameter_error, ERROR),
                "grad_err": fmt(r.grad_rel_error_median, ERROR),
                "train_s": fmt(r.train_time_s, "{:.1f}"),
                "to_target_s": fmt(r.time_to_target_s, "{:.1f}"),
                "nfe_f": fmt(r.nfe_forward_total, COUNT),
                "nfe_b": fmt(r.nfe_backward_total, COUNT),
            }
        )
    table = pd.DataFrame(rows)
    table.insert(7, "final_loss", fmt_column([r.final_loss for r in records]))
    table.insert(8, "heldout", fmt_column([r.heldout for r in records]))
    return table.to_string(index=False)


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
                "grad_err": fmt(r.grad_rel_error, ERROR) + ("*" if r.at_reference_resolution else ""),
                "disc_err": fmt(r.grad_rel_error_discrete, ERROR),
                "nfe_f": fmt(r.nfe_forward, COUNT),
                "nfe_b": fmt(r.nfe_backward, COUNT),
                "vjp_b": fmt(r.vjp_backward, COUNT),
                "t_fwd_ms": fmt(r.time_forward_s, "{:.1f}", 1e3),
                "t_bwd_ms": fmt(r.time_backward_s, "{:.1f}", 1e3),
            }
        )
    table = pd.DataFrame(rows)
    table["mem_MiB"] = fmt_column([r.peak_memory_bytes for r in records], scale=1 / 2**20)
    if any(r.compile_time_s is not None for r in records):
        table["compile_s"] = [fmt(r.compile_time_s, "{:.1f}") for r in records]
    return table.to_string(index=False)


def _overhead(records: Sequence[Record]) -> str:
    """What measuring a case cost, against one forward+backward of the method, in plain words;
    JAX cases apart, whose cost is compiling (their gradients take milliseconds)."""
    ok = [r for r in records if r.status == "ok" and r.wall_time_s and r.time_forward_s and r.time_backward_s]
    torch_cases = [r for r in ok if r.framework != "jax"]
    jax_cases = [r for r in ok if r.framework == "jax"]
    parts = []
    if torch_cases:
        ratio = pd.Series(
            [
                (r.wall_time_s - (r.compile_time_s or 0.0)) / (r.time_forward_s + r.time_backward_s)
                for r in torch_cases
            ]
        ).median()
        parts.append(
            f"each case took a median {ratio:.0f}x the time of one forward+backward, because it is run "
            "several times: the counted run (which measures peak memory and warms up), the exactness "
            "check and the timed repeats (and the reference gradient's lookup)"
            + (
                "; a compiled step's compile time is left out"
                if any(r.compile_time_s for r in torch_cases)
                else ""
            )
        )
    if jax_cases:
        wall = pd.Series([r.wall_time_s for r in jax_cases]).median()
        compile_s = pd.Series([r.compile_time_s or 0.0 for r in jax_cases]).median()
        counting = pd.Series([r.stage_times_s.get("counting", 0.0) for r in jax_cases]).median()
        parts.append(
            f"the {len(jax_cases)} JAX case(s) took a median {wall:.1f} s each, mostly compiling: "
            f"{compile_s:.1f} s for the timed programs, {counting:.1f} s for the counting program"
        )
    return "; ".join(parts)
