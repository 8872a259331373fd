"""Memory scaling: peak memory against a task's size knob, per method, with the log-log slope.

Only cases that differ in the size alone share a panel: the same task, solver, tolerance or
step, dtype and device. A fixed-step task whose own step changes with the size (the stiff van
der Pol oscillator's h = 0.1/mu) has no such cases, and so no panel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import LABELS, MethodStyle, figure_style, method_order

#: What must match for two records to lie on one scaling line (the size varies).
FACET_KEYS = ("task", "solver", "setting", "dtype", "device")


def fit_slope(x: np.ndarray, y: np.ndarray) -> float | None:
    """The least-squares slope of log y against log x; None with fewer than two sizes."""
    keep = (np.asarray(x, float) > 0) & (np.asarray(y, float) > 0)
    x, y = np.log(np.asarray(x, float)[keep]), np.log(np.asarray(y, float)[keep])
    if len(np.unique(x)) < 2:
        return None
    return float(np.polyfit(x, y, 1)[0])


def scaling_facets(ok: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    """``(facet key, rows)`` for every facet measured at two or more sizes with a peak memory."""
    measured = ok[(ok["peak_memory_bytes"] > 0) & ok["size"].notna()]
    facets = []
    for key, rows in measured.groupby(list(FACET_KEYS), sort=True):
        if rows["size"].nunique() >= 2:
            facets.append((key, rows))
    return facets


def memory_scaling(
    df: pd.DataFrame, ok: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> Figure | None:
    """One panel per facet with several sizes; None when there is none."""
    facets = scaling_facets(ok)
    if not facets:
        return None
    n_rows, n_cols = common.wrap(len(facets), max_cols=2)
    gaps = []
    with figure_style():
        fig, axes = common.grid(n_rows, n_cols, width=6.4, wspace=0.85)
        for ax, (key, data) in zip(axes.flat, facets):
            task, solver, setting, dtype, device = key
            title = f"{task} · {solver} · {setting} · {dtype} · {device}"
            missing = method_order(set(df.loc[df["task"] == task, "method"]) - set(data["method"]))
            if missing:
                gaps.append(f"Not drawn on {title} (failed, or not at these settings): {', '.join(missing)}.")
            labels = {}
            for method in method_order(data["method"]):
                rows = (
                    data[data["method"] == method].groupby("size", as_index=False)["peak_memory_mib"].median()
                )
                style = styles[method]
                ax.plot(
                    rows["size"], rows["peak_memory_mib"], color=style.colour, marker=style.marker,
                    linestyle=style.linestyle, lw=1.4,
                )  # fmt: skip
                slope = fit_slope(rows["size"].to_numpy(), rows["peak_memory_mib"].to_numpy())
                labels[method] = (
                    f"{method} (slope {slope:.2f})" if slope is not None else f"{method} (one size)"
                )
            common.log_axes(ax)
            sizes = sorted(data["size"].unique())
            if len(sizes) <= 8:
                ax.set_xticks(sizes, [f"{s:g}" for s in sizes])
            ax.set_title(f"{title}\npeak memory vs {knob_label(data)}", fontsize=common.TITLE_SIZE)
            ax.set_xlabel(knob_label(data))
            ax.set_ylabel(LABELS["peak_memory_mib"])
            handles = common.method_handles(labels, styles, labels)
            ax.legend(
                handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize="small"
            )
        common.unused(axes, len(facets))
        png, svg = common.save(fig, figures_dir, "memory_scaling")
    caption = (
        "Peak memory (forward + backward, above the pre-case baseline) against the task's size "
        "knob, log-log, median over seeds and repeated records. Each panel holds cases that "
        "differ in the size alone (same solver, tolerance or step, dtype and device). The legend "
        "gives each method's fitted log-log slope: about 1 means memory grows in proportion to "
        "the size, about 0 that it does not grow."
    )
    return Figure("Memory scaling", " ".join([caption, *gaps]), png, svg)


def knob_label(data: pd.DataFrame, unknown: str = LABELS["size"]) -> str:
    """The task's size knob as recorded (e.g. ``horizon T``), or `unknown` for old records."""
    knobs = data["size_knob"].dropna().unique() if "size_knob" in data.columns else []
    return str(knobs[0]) if len(knobs) == 1 else unknown
