"""Time split: forward and backward time per method, as a share of naive's time on the same case.

One panel per regime at its tightest setting (smallest tolerance, or smallest step), where the
methods differ most; times are divided only by naive's time on the same case in the same run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.patches import Patch

from odebench.report.data import same_run_ratios
from odebench.report.document import Figure
from odebench.report.plots import common
from odebench.report.style import MethodStyle, figure_style, method_order


def tightest(ok: pd.DataFrame) -> pd.DataFrame:
    """The records of each regime at its tightest setting (smallest rtol, else smallest step)."""
    keep = []
    for _, rows in ok.groupby("regime", sort=False):
        column = "rtol" if rows["rtol"].notna().any() else "step_size"
        keep.append(rows[rows[column] == rows[column].min()])
    return pd.concat(keep) if keep else ok.iloc[:0]


def time_ratios(ok: pd.DataFrame) -> pd.DataFrame:
    """Per regime (tightest setting) and method: median forward and backward time over naive's
    total on the same case in the same run. Columns: regime, setting, method, forward,
    backward, cases."""
    data = tightest(ok).assign(
        forward=lambda d: same_run_ratios(d, "time_forward_s"),
        backward=lambda d: same_run_ratios(d, "time_backward_s"),
    )
    data = data.dropna(subset=["forward", "backward"])
    out = data.groupby(["regime", "setting", "method"], sort=False).agg(
        forward=("forward", "median"), backward=("backward", "median"), cases=("forward", "size")
    )
    return out.reset_index()


def time_split(
    df: pd.DataFrame, ok: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> list[Figure]:
    """One figure per task with a timed naive case: a panel per regime, a bar per method."""
    ratios = time_ratios(ok)
    figures = []
    for task, data in common.by_task(ok):
        task_ratios = ratios[ratios["regime"].isin(set(data["regime"]))]
        if not task_ratios.empty:
            figures.append(_task_figure(task, df, task_ratios, styles, figures_dir))
    return figures


def _task_figure(task, df, ratios, styles, figures_dir) -> Figure:
    panels = [r for r in common.regimes(df[df["task"] == task]) if r in set(ratios["regime"])]
    n_rows, n_cols = common.wrap(len(panels))
    gaps = []
    height = 0.5 + 0.45 * max(3, ratios["method"].nunique())
    with figure_style():
        fig, axes = common.grid(n_rows, n_cols, width=4.6, height=height)
        for ax, regime in zip(axes.flat, panels):
            data = ratios[ratios["regime"] == regime].set_index("method")
            setting = data["setting"].iloc[0]
            tried = set(df.loc[(df["regime"] == regime) & (df["setting"] == setting), "method"])
            missing = method_order(tried - set(data.index))
            if missing:
                gaps.append(
                    f"No ratio on {regime} {setting} (failed, or no naive case): {', '.join(missing)}."
                )
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
            ax.set_title(f"{regime}\n{setting}: time relative to naive", fontsize="small")
            ax.set_xlabel("time / naive's forward + backward time [ratio]")
        common.unused(axes, len(panels))
        legend = [
            Patch(facecolor="0.5", edgecolor="0.5", label="forward"),
            Patch(facecolor="0.5", alpha=0.45, hatch="///", edgecolor="0.5", label="backward"),
        ]
        common.outside_legend(fig, legend, title="bar part")
        png, svg = common.save(fig, figures_dir, common.file_name("time_split", task))
    caption = (
        f"{task}: forward (solid) and backward (hatched) time of each method divided by naive's "
        "forward + backward time on the same case measured in the same run; one panel per regime "
        "at its tightest setting (named in the panel's title), median over seeds (n). The dashed "
        "line is naive's total."
    )
    return Figure(f"Time split: {task}", " ".join([caption, *gaps]), png, svg)
