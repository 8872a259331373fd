"""What every figure shares: a grid of panels, method legends, hollow markers, saving, notes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from odebench.report.style import MethodStyle, method_order

#: Legend entry explaining hollow markers.
HOLLOW_NOTE = "hollow: at reference resolution"


def grid(
    n_rows: int, n_cols: int, *, width: float = 4.2, height: float = 3.4, wspace: float = 0.42
) -> tuple[MplFigure, np.ndarray]:
    """A figure of `n_rows` x `n_cols` panels (a 2-D array of axes), drawn with Agg.

    Spacing is fixed rather than solved by a layout engine, which costs more than the drawing.
    """
    fig = MplFigure(figsize=(width * n_cols, height * n_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw={"wspace": wspace, "hspace": 0.55})
    fig.subplots_adjust(left=0.5 / (width * n_cols), right=1 - 0.15 / (width * n_cols))
    return fig, axes


def log_axes(ax: Axes, x: bool = True, y: bool = True) -> None:
    """Log scales on the chosen axes; call after the data is drawn.

    Ticks sit at decades, or at 1-2-5 steps where the data spans less than two decades. There
    are no minor ticks: they cost most of the drawing time and add little at this size.
    """
    for on, axis, set_scale, get_lim in (
        (x, ax.xaxis, ax.set_xscale, ax.get_xlim),
        (y, ax.yaxis, ax.set_yscale, ax.get_ylim),
    ):
        if not on:
            continue
        set_scale("log")
        lo, hi = get_lim()
        if lo > 0 and hi / lo < 100:
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_locator(NullLocator())


def wrap(n_panels: int, max_cols: int = 3) -> tuple[int, int]:
    """Rows and columns for `n_panels` panels, at most `max_cols` wide."""
    cols = max(1, min(n_panels, max_cols))
    return -(-max(n_panels, 1) // cols), cols


def save(fig: MplFigure, figures_dir: Path, name: str) -> tuple[Path, Path]:
    """Write `fig` as ``name.png`` and ``name.svg`` (no timestamps, so reruns are identical)."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    png, svg = figures_dir / f"{name}.png", figures_dir / f"{name}.svg"
    fig.canvas.draw()  # one layout pass; both files reuse its bounding box
    bbox = fig.get_tightbbox().padded(0.1)
    fig.savefig(png, dpi=110, bbox_inches=bbox, metadata={"Software": None})
    fig.savefig(svg, bbox_inches=bbox, metadata={"Date": None, "Creator": None})
    return png, svg


def draw_points(ax: Axes, x: np.ndarray, y: np.ndarray, hollow: np.ndarray, style: MethodStyle) -> None:
    """Markers for one method: filled, or hollow where `hollow` (at reference resolution)."""
    for mask, face in ((~hollow, style.colour), (hollow, "none")):
        if mask.any():
            ax.scatter(
                x[mask], y[mask], marker=style.marker, s=42, facecolors=face,
                edgecolors=style.colour, linewidths=1.3, zorder=3,
            )  # fmt: skip


def method_handles(methods: Iterable[str], styles: dict[str, MethodStyle], labels=None) -> list[Line2D]:
    """Legend entries (marker and line in the method's colour) for `methods` in report order."""
    labels = labels or {}
    return [
        Line2D([], [], color=styles[m].colour, marker=styles[m].marker, label=labels.get(m, m))
        for m in method_order(methods)
    ]


def hollow_handle() -> Line2D:
    """Legend entry explaining hollow markers."""
    return Line2D(
        [], [], color="0.4", marker="o", markerfacecolor="none", linestyle="none", label=HOLLOW_NOTE
    )


def outside_legend(fig: MplFigure, handles: Sequence, title: str | None = None) -> None:
    """One legend for the whole figure, to the right of the panels."""
    fig.legend(
        handles=list(handles), loc="upper left", bbox_to_anchor=(1.0, 0.98), title=title, frameon=False
    )


def empty_panel(ax: Axes, text: str) -> None:
    """A panel with nothing to draw says why."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def unused(axes: np.ndarray, used: int) -> None:
    """Hide the panels of a wrapped grid beyond the first `used`."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def missing_note(df: pd.DataFrame, ok: pd.DataFrame, regimes: Sequence[str]) -> str:
    """Caption text naming methods with no successful record, overall and per regime."""
    notes = []
    never = method_order(set(df["method"]) - set(ok["method"]))
    if never:
        notes.append(f"No successful record, so not drawn (see the failed cases): {', '.join(never)}.")
    for regime in regimes:
        tried = set(df.loc[df["regime"] == regime, "method"])
        gaps = method_order(tried - set(ok.loc[ok["regime"] == regime, "method"]) - set(never))
        if gaps:
            notes.append(f"Missing on {regime} (failed there): {', '.join(gaps)}.")
    return " ".join(notes)


def regimes(df: pd.DataFrame) -> list[str]:
    """The regimes in `df`, ordered by task, size, solver, dtype and device."""
    keys = df[["task", "size", "solver", "dtype", "device", "regime"]].drop_duplicates("regime")
    ordered = keys.sort_values(["task", "size", "solver", "dtype", "device"], na_position="first")
    return list(ordered["regime"])


def by_task(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """`df` split by task, tasks sorted: figures are drawn one per task so they stay readable."""
    return [(task, df[df["task"] == task]) for task in sorted(set(df["task"]))]


def file_name(kind: str, task: str) -> str:
    """The figure file's stem for one task, e.g. ``accuracy_vs_cost-spiral``."""
    return f"{kind}-{''.join(c if c.isalnum() or c in '_-' else '_' for c in task)}"


def seed_medians(data: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Per method and setting of one regime: medians of `columns` over seeds (replicates), and
    ``at_reference_resolution`` where every seed is."""
    keys = ["method", "setting", "rtol", "step_size"]
    grouped = data.groupby(keys, dropna=False, sort=False)
    out = grouped[list(columns)].median()
    out["at_reference_resolution"] = grouped["at_reference_resolution"].all()
    return out.reset_index().sort_values(["method", "rtol", "step_size"])
