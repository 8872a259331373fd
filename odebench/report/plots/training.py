"""Training curves: loss against iterations and training time, backward NFE, solver steps.

One figure per study, one row of panels per group (solver, tolerance or step, dtype, device,
budget): nothing from another group is drawn in a panel. Each line is a method's median over
seeds, with the band between the seeds' quartiles where there are several.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import MethodStyle, figure_style, method_order

#: Panels: (title, x column, y column, y label, y axis: "log", "count" or "linear").
PANELS = (
    ("loss vs iteration", "iteration", "train_loss", "training loss", "log"),
    ("loss vs training time", "elapsed_s", "train_loss", "training loss", "log"),
    ("backward NFE + VJPs per iteration", "iteration", "backward_evals", "backward NFE + VJPs", "count"),
    ("solver steps per solve", "iteration", "steps_per_solve", "accepted steps per solve", "count"),
)

#: Markers per line: enough to tell the methods apart where their lines overlap.
_MARKS_PER_LINE = 8


def training_curves(
    curves: pd.DataFrame, runs: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> list[Figure]:
    """One figure per study with finished or stopped runs; see the module docstring."""
    data = curves.merge(runs[["case_id", "group"]], on="case_id", how="inner")
    data = data.assign(
        steps_per_solve=data["steps_accepted"] / data["solves"].where(data["solves"] > 0),
        backward_evals=common.backward_evals(data),
    )
    return [
        _study_figure(study, rows, styles, figures_dir) for study, rows in data.groupby("study", sort=True)
    ]


def _study_figure(study: str, data: pd.DataFrame, styles, figures_dir: Path) -> Figure:
    groups = list(dict.fromkeys(data["group"]))
    with figure_style():
        fig, axes = common.grid(len(groups), len(PANELS), width=4.4, height=3.0, hspace=0.8)
        for r, group in enumerate(groups):
            rows = data[data["group"] == group]
            for c, (title, x, y, ylabel, kind) in enumerate(PANELS):
                ax = axes[r, c]
                methods = method_order(rows["method"])
                for i, method in enumerate(methods):
                    _draw(ax, rows[rows["method"] == method], x, y, styles[method], len(methods) - 1 - i)
                if rows[[x, y]].notna().all(axis=1).any():
                    ax.set_xlim(left=0)  # once all are drawn: setting a limit ends autoscaling
                if kind == "log" and (rows[y] > 0).any():
                    common.log_axes(ax, x=False)
                elif kind == "count":
                    common.integer_ticks(ax)
                if x == "iteration":
                    common.integer_ticks(ax, y=False)
                ax.set_title(title, fontsize=common.TITLE_SIZE)
                if c == 0:  # the row's group, once, above its first panel
                    ax.annotate(
                        group.split(" · ", 1)[-1], xy=(0, 1), xycoords="axes fraction", xytext=(0, 20),
                        textcoords="offset points", ha="left", va="bottom", fontweight="bold",
                        fontsize=common.TITLE_SIZE,
                    )  # fmt: skip
                ax.set_xlabel("iteration" if x == "iteration" else "training time [s]")
                ax.set_ylabel(ylabel)
        common.outside_legend(fig, common.method_handles(data["method"], styles), title="method")
        png, svg = common.save(fig, figures_dir, common.file_name("training", study))
    seeds = data.groupby(["group", "method"])["case_id"].nunique()
    caption = (
        f"{study}: training loss against iterations and against training time (forward, backward "
        "and optimiser steps only), the backward pass's work per iteration (vector-field "
        "evaluations plus vector-Jacobian products: naive solves nothing backwards, so its work "
        "is its VJPs), and the solver's accepted steps per solve. One row per group (solver · "
        "setting · dtype · device · budget); lines "
        "are the median over seeds, bands the seeds' interquartile range where there are several "
        f"(seeds per method and group: {int(seeds.min())} to {int(seeds.max())}). Times come from "
        "separate processes and move by up to 1.7x between them on this machine class. Each "
        "method has its own dash and marker, and is drawn wider than the methods after it in the "
        "legend: where lines coincide, the methods measured the same values, seen as nested stripes."
    )
    return Figure(f"Training: {study}", caption, png, svg)


def _draw(ax, rows: pd.DataFrame, x: str, y: str, style: MethodStyle, layer: int = 0) -> None:
    """The median over seeds (and its quartile band) of `y` against `x` for one method.

    Methods are drawn in layers, the first in the legend at the bottom: each layer's line and
    hollow markers are wider than those above it, so lines that coincide show as nested stripes
    instead of hiding each other."""
    rows = rows.dropna(subset=[y])
    if rows.empty:
        return
    if x == "iteration":
        stats = rows.groupby("iteration")[y].quantile([0.25, 0.5, 0.75]).unstack()
        xs = stats.index.to_numpy(dtype=float)
    else:  # each seed has its own clock: align them on the iteration, draw at the median time
        stats = rows.groupby("iteration")[y].quantile([0.25, 0.5, 0.75]).unstack()
        xs = rows.groupby("iteration")[x].median().reindex(stats.index).to_numpy(dtype=float)
    every = max(1, len(xs) // _MARKS_PER_LINE)
    ax.plot(
        xs, stats[0.5], color=style.colour, linestyle=style.linestyle, lw=1.4 + 1.6 * layer,
        alpha=1.0 if layer == 0 else 0.6, marker=style.marker, markersize=5 + 3 * layer,
        markeredgewidth=1.2, markerfacecolor="none", markevery=(layer * every // 5 % every, every),
        zorder=3 - 0.1 * layer,
    )  # fmt: skip
    if rows["case_id"].nunique() > 1:
        ax.fill_between(xs, stats[0.25], stats[0.75], color=style.colour, alpha=0.18, linewidth=0)
