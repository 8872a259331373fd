"""Memory scaling: peak memory against the size knob per method, with the log-log slope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import LABELS, MethodStyle, figure_style, method_order


def fit_slope(x: np.ndarray, y: np.ndarray) -> float | None:
    """The least-squares slope of log y against log x; None with fewer than two sizes."""
    keep = (np.asarray(x, float) > 0) & (np.asarray(y, float) > 0)
    x, y = np.log(np.asarray(x, float)[keep]), np.log(np.asarray(y, float)[keep])
    if len(np.unique(x)) < 2:
        return None
    return float(np.polyfit(x, y, 1)[0])


def scaling_tasks(ok: pd.DataFrame) -> list[str]:
    """Tasks measured at two or more sizes with a peak memory."""
    measured = ok[ok["peak_memory_bytes"] > 0]
    counts = measured.groupby("task")["size"].nunique()
    return sorted(counts[counts >= 2].index)


def memory_scaling(
    df: pd.DataFrame, ok: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> Figure | None:
    """One panel per task with several sizes; None when no task has several sizes."""
    tasks = scaling_tasks(ok)
    if not tasks:
        return None
    n_rows, n_cols = common.wrap(len(tasks), max_cols=2)
    notes, gaps = [], []
    with figure_style():
        fig, axes = common.grid(n_rows, n_cols, width=6.4, wspace=0.85)
        for ax, task in zip(axes.flat, tasks):
            data = ok[(ok["task"] == task) & (ok["peak_memory_bytes"] > 0) & ok["size"].notna()]
            rtol = _tolerance(data)
            data = data[data["rtol"] == rtol]
            notes.append(f"{task} at rtol={rtol:g}")
            missing = method_order(set(df.loc[df["task"] == task, "method"]) - set(data["method"]))
            if missing:
                gaps.append(
                    f"Not drawn on {task} (failed, or not measured at rtol={rtol:g}): {', '.join(missing)}."
                )
            labels = {}
            for method in method_order(data["method"]):
                rows = (
                    data[data["method"] == method].groupby("size", as_index=False)["peak_memory_mib"].median()
                )
                style = styles[method]
                ax.plot(
                    rows["size"], rows["peak_memory_mib"], color=style.colour, marker=style.marker, lw=1.4
                )
                slope = fit_slope(rows["size"].to_numpy(), rows["peak_memory_mib"].to_numpy())
                labels[method] = (
                    f"{method} (slope {slope:.2f})" if slope is not None else f"{method} (one size)"
                )
            common.log_axes(ax)
            sizes = sorted(data["size"].unique())
            if len(sizes) <= 8:
                ax.set_xticks(sizes, [f"{s:g}" for s in sizes])
            ax.set_title(f"{task}: peak memory vs size", fontsize="medium")
            ax.set_xlabel(LABELS["size"])
            ax.set_ylabel(LABELS["peak_memory_mib"])
            handles = common.method_handles(labels, styles, labels)
            ax.legend(
                handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize="small"
            )
        common.unused(axes, len(tasks))
        png, svg = common.save(fig, figures_dir, "memory_scaling")
    caption = (
        "Peak memory (forward + backward, above the pre-case baseline) against the task's size "
        "knob, log-log, median over repeated records. The legend gives each method's fitted "
        "log-log slope: about 1 means memory grows in proportion to the size, about 0 that it "
        "does not grow. Each task is drawn at the tolerance measured at the most sizes "
        f"(the tightest on a tie): {'; '.join(notes)}."
    )
    return Figure("Memory scaling", " ".join([caption, *gaps]), png, svg)


def _tolerance(data: pd.DataFrame) -> float:
    sizes = data.groupby("rtol")["size"].nunique()
    return float(sizes[sizes == sizes.max()].index.min())
