"""Time split: where each method's time goes, forward and backward, in milliseconds.

One panel per regime at its tightest setting (smallest tolerance, or smallest step), where the
methods differ most. Each case was timed in its own process, where the same work's time moves by
up to 1.7x from one process to the next: the bars show the split, and rank nothing (speed
verdicts come from same-run ratios, `odebench.report.speed`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.patches import Patch

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


def split_times(ok: pd.DataFrame) -> pd.DataFrame:
    """Per regime (tightest setting) and method: median forward and backward time in ms over
    its seeds. Columns: regime, setting, method, forward, backward, cases."""
    data = tightest(ok).assign(
        forward=lambda d: d["time_forward_s"] * 1e3, backward=lambda d: d["time_backward_s"] * 1e3
    )
    data = data.dropna(subset=["forward", "backward"])
    out = data.groupby(["regime", "setting", "method"], sort=False).agg(
        forward=("forward", "median"), backward=("backward", "median"), cases=("forward", "size")
    )
    return out.reset_index()


def time_split(
    df: pd.DataFrame, ok: pd.DataFrame, styles: dict[str, MethodStyle], figures_dir: Path
) -> list[Figure]:
    """One figure per task with a timed case: a panel per regime, a bar per method."""
    ratios = split_times(ok)
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
                gaps.append(f"Not timed on {regime} {setting} (failed): {', '.join(missing)}.")
            methods = method_order(data.index)[::-1]
            for y, method in enumerate(methods):
                fwd, bwd, n = data.loc[method, ["forward", "backward", "cases"]]
                colour = styles[method].colour
                ax.barh(y, fwd, color=colour, edgecolor=colour)
                ax.barh(y, bwd, left=fwd, color=colour, alpha=0.45, hatch="///", edgecolor=colour)
                ax.text(fwd + bwd, y, f" {fwd + bwd:.3g} ms (n={n:.0f})", va="center", fontsize="small")
            ax.set_yticks(range(len(methods)), methods)
            ax.set_xlim(0, 1.35 * float((data["forward"] + data["backward"]).max()))
            ax.set_title(f"{regime}\n{setting}: time per case", fontsize=common.TITLE_SIZE)
            ax.set_xlabel("forward + backward time [ms], each case in its own process")
        common.unused(axes, len(panels))
        legend = [
            Patch(facecolor="0.5", edgecolor="0.5", label="forward"),
            Patch(facecolor="0.5", alpha=0.45, hatch="///", edgecolor="0.5", label="backward"),
        ]
        common.outside_legend(fig, legend, title="bar part")
        png, svg = common.save(fig, figures_dir, common.file_name("time_split", task))
    caption = (
        f"{task}: where each method's time goes, forward (solid) and backward (hatched), in ms; "
        "one panel per regime at its tightest setting (named in the panel's title), median over "
        "seeds (n). Each case was timed in its own process, where the same work's time moves by up "
        "to 1.7x: the bars show the split and rank nothing; the speed verdicts are the same-run "
        "ratios of the Speed section."
    )
    return Figure(f"Time split: {task}", " ".join([caption, *gaps]), png, svg)
