"""Gradient error against tolerance per method, with the reference's own error as a band."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import LABELS, MethodStyle, figure_style


def error_vs_tolerance(
    df: pd.DataFrame, ok: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> Figure:
    """One panel per problem: error against rtol (adaptive solvers only), log-log."""
    adaptive = ok[ok["step_size"].isna() & (ok["grad_rel_error"] > 0) & (ok["rtol"] > 0)]
    rows = common.problems(adaptive) if not adaptive.empty else []
    varying = common.configs(adaptive) if not adaptive.empty else []
    labels: list[str] = []
    refs = []
    n_rows, n_cols = common.wrap(len(rows))
    with figure_style():
        fig, axes = common.grid(n_rows, n_cols)
        if not rows:
            common.empty_panel(axes[0, 0], "no successful adaptive-step case\nwith a gradient error")
        for ax, problem in zip(axes.flat, rows):
            data = adaptive[adaptive["problem"] == problem]
            ref = data["reference_error"].median()
            if ref > 0:
                refs.append(f"{problem}: {ref:.2g}")
                ax.axhspan(ref, 10 * ref, color="0.5", alpha=0.18, linewidth=0, zorder=0)
                ax.axhline(ref, color="0.35", linestyle="--", linewidth=1, zorder=0)
            for method, label, series in common.series(data, varying):
                if label not in labels:
                    labels.append(label)
                series = series.sort_values(["rtol", "atol"])
                style = styles[method]
                linestyle = common.LINESTYLES[labels.index(label) % len(common.LINESTYLES)]
                ax.plot(
                    series["rtol"], series["grad_rel_error"], color=style.colour, linestyle=linestyle, lw=1.2
                )
                common.draw_points(
                    ax, series["rtol"].to_numpy(), series["grad_rel_error"].to_numpy(),
                    series["at_reference_resolution"].to_numpy(), style,
                )  # fmt: skip
            common.log_axes(ax)
            ax.set_title(f"{problem}: error vs tolerance", fontsize="medium")
            ax.set_xlabel(LABELS["rtol"])
            ax.set_ylabel(LABELS["grad_rel_error"])
        common.unused(axes, max(len(rows), 1))
        band = Patch(facecolor="0.5", alpha=0.18, label="reference error to 10x")
        ref_line = Line2D([], [], color="0.35", linestyle="--", label="reference error")
        handles = [*common.method_handles(adaptive["method"], styles), common.hollow_handle(), band, ref_line]
        common.outside_legend(fig, handles + common.config_handles(labels), title="method")
        png, svg = common.save(fig, figures_dir, "error_vs_tolerance")
    caption = (
        "Relative gradient error against the solver's relative tolerance, log-log. The dashed "
        "line is the reference gradient's own error estimate (median per problem) and the band "
        "reaches 10x it: errors inside or below the band are not resolved by the reference "
        "(hollow markers)."
    )
    if refs:
        caption += f" Reference error: {'; '.join(refs)}."
    fixed = int(ok["step_size"].notna().sum())
    if fixed:
        caption += f" {fixed} fixed-step cases (no tolerance) are left out."
    note = common.missing_note(df, ok, rows)
    return Figure("Gradient error vs tolerance", f"{caption} {note}".strip(), png, svg)
