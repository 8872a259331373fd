"""Gradient error against tolerance per method, with the reference's own error as a band."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import LABELS, MethodStyle, figure_style, method_order


def error_vs_tolerance(
    df: pd.DataFrame, ok: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> list[Figure]:
    """One figure per task with adaptive cases: a panel per adaptive regime, error against rtol."""
    adaptive = ok[ok["step_size"].isna() & (ok["grad_rel_error"] > 0) & (ok["rtol"] > 0)]
    return [_task_figure(task, df, data, styles, figures_dir) for task, data in common.by_task(adaptive)]


def _task_figure(task, df, adaptive, styles, figures_dir) -> Figure:
    rows = common.regimes(adaptive)
    refs = []
    n_rows, n_cols = common.wrap(len(rows))
    with figure_style():
        fig, axes = common.grid(n_rows, n_cols)
        for ax, regime in zip(axes.flat, rows):
            data = adaptive[adaptive["regime"] == regime]
            ref = data["reference_error"].median()
            if ref > 0:
                refs.append(f"{regime}: {ref:.2g}")
                ax.axhspan(ref, 10 * ref, color="0.5", alpha=0.18, linewidth=0, zorder=0)
                ax.axhline(ref, color="0.35", linestyle="--", linewidth=1, zorder=0)
            medians = common.seed_medians(data, ["grad_rel_error"])
            for method in method_order(medians["method"]):
                series = medians[medians["method"] == method]
                style = styles[method]
                ax.plot(
                    series["rtol"], series["grad_rel_error"], color=style.colour, ls=style.linestyle, lw=1.2
                )
                common.draw_points(
                    ax, series["rtol"].to_numpy(), series["grad_rel_error"].to_numpy(),
                    series["at_reference_resolution"].to_numpy(), style,
                )  # fmt: skip
            common.log_axes(ax)
            ax.set_title(f"{regime}\nerror vs tolerance", fontsize=common.TITLE_SIZE)
            ax.set_xlabel(LABELS["rtol"])
            ax.set_ylabel(LABELS["grad_rel_error"])
        common.unused(axes, len(rows))
        band = Patch(facecolor="0.5", alpha=0.18, label="reference error to 10x")
        ref_line = Line2D([], [], color="0.35", linestyle="--", label="reference error")
        handles = [*common.method_handles(adaptive["method"], styles), common.hollow_handle(), band, ref_line]
        common.outside_legend(fig, handles, title="method")
        png, svg = common.save(fig, figures_dir, common.file_name("error_vs_tolerance", task))
    caption = (
        f"{task}: relative gradient error against the solver's relative tolerance, log-log, one "
        "panel per regime (size · adaptive solver · dtype · device), seeds drawn as their median. "
        "The dashed line is the reference gradient's own error estimate and the band reaches 10x "
        "it: errors inside or below the band are not resolved by the reference (hollow markers). "
        "Fixed-step cases have no tolerance and are not drawn here."
    )
    if refs:
        caption += f" Reference error: {'; '.join(refs)}."
    note = common.missing_note(df[df["task"] == task], adaptive, rows)
    return Figure(f"Gradient error vs tolerance: {task}", f"{caption} {note}".strip(), png, svg)
