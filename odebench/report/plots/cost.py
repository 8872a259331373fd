"""Accuracy against cost: gradient error against backward NFE, time and memory, per regime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import LABELS, MethodStyle, figure_style, method_order

#: The cost axes, in panel order. The backward work is NFE + VJPs: a method that solves
#: backwards pays one NFE and one VJP per evaluation, while naive, which solves nothing
#: backwards, pays a VJP per forward evaluation it stored; NFE alone would put naive at zero.
COSTS = {"backward_evals": "backward NFE + VJPs", "time_total_s": "time", "peak_memory_mib": "memory"}


def pareto_mask(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """True for the points no other point beats: none has lower-or-equal cost and error, one lower."""
    cost, error = np.asarray(cost, float), np.asarray(error, float)
    mask = np.ones(len(cost), dtype=bool)
    for i in range(len(cost)):
        no_worse = (cost <= cost[i]) & (error <= error[i])
        mask[i] = not (no_worse & ((cost < cost[i]) | (error < error[i]))).any()
    return mask


def accuracy_vs_cost(
    df: pd.DataFrame, ok: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> list[Figure]:
    """One figure per task; one row of panels per regime, one column per cost; log-log."""
    ok = ok.assign(backward_evals=common.backward_evals(ok))
    return [_task_figure(task, df, data, styles, figures_dir) for task, data in common.by_task(ok)]


def accuracy_vs_cost_figures(ok: pd.DataFrame, styles: dict[str, MethodStyle]) -> dict[str, MplFigure]:
    """The figures of `accuracy_vs_cost` as matplotlib figures, one per task, not saved."""
    ok = ok.assign(backward_evals=common.backward_evals(ok))
    return {task: _draw(task, data, styles)[0] for task, data in common.by_task(ok)}


def _task_figure(task, df, ok, styles, figures_dir) -> Figure:
    rows = common.regimes(ok)
    fig, dropped = _draw(task, ok, styles)
    with figure_style():
        png, svg = common.save(fig, figures_dir, common.file_name("accuracy_vs_cost", task))
    return Figure(f"Accuracy vs cost: {task}", _caption(task, df, ok, rows, dropped), png, svg)


def _draw(task, ok, styles) -> tuple[MplFigure, dict[str, set[str]]]:
    """One task's figure, drawn and not saved, and per method what log axes could not show."""
    rows = common.regimes(ok)
    dropped: dict[str, set[str]] = {}
    with figure_style():
        fig, axes = common.grid(len(rows), len(COSTS))
        for r, regime in enumerate(rows):
            data = ok[ok["regime"] == regime]
            for c, cost in enumerate(COSTS):
                ax = axes[r, c]
                keep = (data["grad_rel_error"] > 0) & (data[cost] > 0)
                no_error = ~(data["grad_rel_error"] > 0)
                for method, why in zip(data.loc[~keep, "method"], no_error[~keep]):
                    dropped.setdefault(method, set()).add("gradient error" if why else COSTS[cost])
                _panel(ax, data[keep], cost, styles)
                ax.set_title(f"{regime}\nerror vs {COSTS[cost]}", fontsize=common.TITLE_SIZE)
                ax.set_xlabel(LABELS[cost])
                ax.set_ylabel(LABELS["grad_rel_error"])
        front = Line2D([], [], color="black", alpha=0.18, linewidth=7, label="Pareto front")
        handles = [*common.method_handles(ok["method"], styles), common.hollow_handle(), front]
        common.outside_legend(fig, handles, title="method")
    return fig, dropped


def _caption(task, df, ok, rows, dropped) -> str:
    caption = (
        f"{task}: relative gradient error against three costs of one gradient: the backward "
        "pass's work, forward + backward time (median over repeats) and peak memory. Log-log. The "
        "backward work counts passes through the vector field f: its evaluations (NFE) plus its "
        "vector-Jacobian products (VJPs). Naive solves nothing backwards (backward NFE 0): its "
        "backward work is one VJP per forward evaluation it stored; a method that solves or "
        "replays backwards pays an NFE and a VJP for each evaluation. One "
        "row per regime (size · solver · dtype · device): nothing from another regime is drawn "
        "in a panel. Points of one method are joined across the regime's tolerances (or steps); "
        "seeds are drawn as their median; hollow markers are at the reference's resolution (the "
        "error is below 10x the reference's own error, so it only says 'at most this'). The "
        "shaded staircase is the regime's Pareto front: no other point has both lower error and "
        "lower cost."
    )
    if dropped:
        gaps = "; ".join(f"{m} ({', '.join(sorted(dropped[m]))})" for m in method_order(dropped))
        caption += f" Points without a positive error or cost cannot be drawn on log axes: {gaps}."
    note = common.missing_note(df[df["task"] == task], ok, rows)
    return f"{caption} {note}".strip()


def _panel(ax, data: pd.DataFrame, cost: str, styles) -> None:
    if data.empty:
        common.empty_panel(ax, "no successful measurement")
        return
    medians = common.seed_medians(data, [cost, "grad_rel_error"])
    for method in method_order(medians["method"]):
        rows = medians[medians["method"] == method]
        style = styles[method]
        ax.plot(rows[cost], rows["grad_rel_error"], color=style.colour, ls=style.linestyle, lw=1.2, zorder=2)
        common.draw_points(
            ax, rows[cost].to_numpy(), rows["grad_rel_error"].to_numpy(),
            rows["at_reference_resolution"].to_numpy(), style,
        )  # fmt: skip
    x, y = medians[cost].to_numpy(), medians["grad_rel_error"].to_numpy()
    on_front = pareto_mask(x, y)
    order = np.argsort(x[on_front])
    ax.plot(
        x[on_front][order], y[on_front][order], drawstyle="steps-post", color="black",
        alpha=0.18, linewidth=7, solid_capstyle="round", zorder=1,
    )  # fmt: skip
    common.log_axes(ax)
