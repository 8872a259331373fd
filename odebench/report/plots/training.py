"""Training curves: loss against iterations and training time, backward NFE, solver steps.

One figure per study, one row of panels per group (solver, tolerance or step, dtype, device,
budget): nothing from another group is drawn in a panel. Each line is a method's median over
seeds, with the band between the seeds' quartiles where there are several.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import MethodStyle, figure_style, method_order

#: Panels: (title, x column, y column, y label, log y).
PANELS = (
    ("loss vs iteration", "iteration", "train_loss", "training loss", True),
    ("loss vs training time", "elapsed_s", "train_loss", "training loss", True),
    ("backward NFE per iteration", "iteration", "nfe_backward", "backward NFE", False),
    ("solver steps per solve", "iteration", "steps_per_solve", "accepted steps per solve", False),
)


def training_curves(
    curves: pd.DataFrame, runs: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> list[Figure]:
    """One figure per study with finished or stopped runs; see the module docstring."""
    data = curves.merge(runs[["case_id", "group"]], on="case_id", how="inner")
    data = data.assign(steps_per_solve=data["steps_accepted"] / data["solves"].where(data["solves"] > 0))
    return [
        _study_figure(study, rows, styles, figures_dir) for study, rows in data.groupby("study", sort=True)
    ]


def _study_figure(study: str, data: pd.DataFrame, styles, figures_dir: Path) -> Figure:
    groups = list(dict.fromkeys(data["group"]))
    with figure_style():
        fig, axes = common.grid(len(groups), len(PANELS), width=4.4, height=3.0)
        for r, group in enumerate(groups):
            rows = data[data["group"] == group]
            for c, (title, x, y, ylabel, log) in enumerate(PANELS):
                ax = axes[r, c]
                for method in method_order(rows["method"]):
                    _draw(ax, rows[rows["method"] == method], x, y, styles[method])
                if log and (rows[y] > 0).any():
                    ax.set_yscale("log")
                ax.set_title(f"{group.split(' · ', 1)[-1]}\n{title}", fontsize="x-small")
                ax.set_xlabel("iteration" if x == "iteration" else "training time [s]")
                ax.set_ylabel(ylabel)
        common.outside_legend(fig, common.method_handles(data["method"], styles), title="method")
        png, svg = common.save(fig, figures_dir, common.file_name("training", study))
    seeds = data.groupby(["group", "method"])["case_id"].nunique()
    caption = (
        f"{study}: training loss against iterations and against training time (forward, backward "
        "and optimiser steps only), backward evaluations per iteration, and the solver's accepted "
        "steps per solve. One row per group (solver · setting · dtype · device · budget); lines "
        "are the median over seeds, bands the seeds' interquartile range where there are several "
        f"(seeds per method and group: {int(seeds.min())} to {int(seeds.max())}). Times come from "
        "separate processes and move by up to 1.7x between them on this machine class."
    )
    return Figure(f"Training: {study}", caption, png, svg)


def _draw(ax, rows: pd.DataFrame, x: str, y: str, style: MethodStyle) -> None:
    """The median over seeds (and its quartile band) of `y` against `x` for one method."""
    rows = rows.dropna(subset=[y])
    if rows.empty:
        return
    if x == "iteration":
        stats = rows.groupby("iteration")[y].quantile([0.25, 0.5, 0.75]).unstack()
        xs = stats.index.to_numpy(dtype=float)
    else:  # each seed has its own clock: align them on the iteration, draw at the median time
        stats = rows.groupby("iteration")[y].quantile([0.25, 0.5, 0.75]).unstack()
        xs = rows.groupby("iteration")[x].median().reindex(stats.index).to_numpy(dtype=float)
    ax.plot(xs, stats[0.5], color=style.colour, lw=1.3)
    if rows["case_id"].nunique() > 1:
        ax.fill_between(xs, stats[0.25], stats[0.75], color=style.colour, alpha=0.18, linewidth=0)
    if np.isfinite(xs).any():
        ax.set_xlim(left=0)
