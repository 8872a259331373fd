"""Time split: forward and backward time per method, as a share of naive's time on each case."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.patches import Patch

from odebench.report.data import paired
from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import MethodStyle, figure_style, method_order

BASELINE = "naive"


def time_ratios(ok: pd.DataFrame) -> pd.DataFrame:
    """Per task and method: median forward and backward time over naive's total, same case.

    A case matches naive's when everything but the method agrees (task, size, solver, rtol,
    atol, dtype, device, seed). Columns: task, method, forward, backward, cases.
    """
    rows = []
    for method in method_order(ok["method"]):
        cols = ["time_forward_s", "time_backward_s", "time_total_s"]
        pairs = paired(ok, method, BASELINE, cols).dropna(
            subset=[f"{c}_a" for c in cols] + ["time_total_s_b"]
        )
        pairs = pairs[pairs["time_total_s_b"] > 0]
        for task, group in pairs.groupby("task"):
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "forward": (group["time_forward_s_a"] / group["time_total_s_b"]).median(),
                    "backward": (group["time_backward_s_a"] / group["time_total_s_b"]).median(),
                    "cases": len(group),
                }
            )
    return pd.DataFrame(rows, columns=["task", "method", "forward", "backward", "cases"])


def time_split(
    df: pd.DataFrame, ok: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> Figure | None:
    """One panel per task: a bar per method, forward solid and backward hatched.

    None when no case has a timed naive counterpart to divide by.
    """
    ratios = time_ratios(ok)
    if ratios.empty:
        return None
    tasks = sorted(set(ok["task"]))
    n_rows, n_cols = common.wrap(len(tasks))
    gaps = []
    with figure_style():
        fig, axes = common.grid(n_rows, n_cols, width=4.6, height=0.5 + 0.45 * max(3, ok["method"].nunique()))
        for ax, task in zip(axes.flat, tasks):
            data = ratios[ratios["task"] == task].set_index("method")
            missing = method_order(set(df.loc[df["task"] == task, "method"]) - set(data.index))
            if missing:
                gaps.append(
                    f"No time ratio on {task} (failed, or no matching naive case): {', '.join(missing)}."
                )
            if data.empty:
                common.empty_panel(ax, f"no successful naive case\nto compare with on {task}")
                continue
            methods = method_order(data.index)[::-1]
            for y, method in enumerate(methods):
                fwd, bwd, n = data.loc[method, ["forward", "backward", "cases"]]
                colour = styles[method].colour
                ax.barh(y, fwd, color=colour, edgecolor=colour)
                ax.barh(y, bwd, left=fwd, color=colour, alpha=0.45, hatch="///", edgecolor=colour)
                ax.text(fwd + bwd, y, f" {fwd + bwd:.2g}x (n={n:.0f})", va="center", fontsize="small")
            ax.axvline(1.0, color="0.3", linestyle="--", linewidth=1)
            ax.set_yticks(range(len(methods)), methods)
            ax.set_xlim(0, 1.3 * max(1.0, float((data["forward"] + data["backward"]).max())))
            ax.set_title(f"{task}: time relative to naive", fontsize="medium")
            ax.set_xlabel("time / naive's forward + backward time [ratio]")
        common.unused(axes, len(tasks))
        legend = [
            Patch(facecolor="0.5", edgecolor="0.5", label="forward"),
            Patch(facecolor="0.5", alpha=0.45, hatch="///", edgecolor="0.5", label="backward"),
        ]
        common.outside_legend(fig, legend, title="bar part")
        png, svg = common.save(fig, figures_dir, "time_split")
    caption = (
        "Forward (solid) and backward (hatched) time of each method divided by naive's forward + "
        "backward time on the same case (same task, size, solver, tolerances, dtype, device, "
        "seed); medians over the matching cases (n). The dashed line is naive's total."
    )
    return Figure("Time split, relative to naive", " ".join([caption, *gaps]), png, svg)
