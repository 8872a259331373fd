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
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator, NullLocator

from odebench.report.style import MethodStyle, method_order

#: Legend entry explaining hollow markers.
HOLLOW_NOTE = "hollow: at reference resolution"

#: Font size of a panel's title: as large as the axis labels, so the panel says what it shows.
TITLE_SIZE = "medium"

#: Inches between two rows of panels (see `grid`).
ROW_GAP = 1.1

#: The share of a figure's height Matplotlib gives to the panels and the gaps between them.
_HEIGHT_SHARE = 0.77


def grid(
    n_rows: int,
    n_cols: int,
    *,
    width: float = 4.2,
    height: float = 3.4,
    wspace: float = 0.42,
    hspace: float | None = None,
) -> tuple[MplFigure, np.ndarray]:
    """A figure of `n_rows` x `n_cols` panels (a 2-D array of axes), drawn with Agg.

    Spacing is fixed rather than solved by a layout engine, which costs more than the drawing.
    `hspace` (a fraction of a panel's height) defaults to `ROW_GAP` inches between rows, room for
    one row's tick labels and axis label and the next row's two-line titles, however short the
    panels are.
    """
    if hspace is None:
        usable = _HEIGHT_SHARE * height * n_rows
        hspace = max(0.3, ROW_GAP * n_rows / max(usable - ROW_GAP * (n_rows - 1), 1e-9))
    fig = MplFigure(figsize=(width * n_cols, height * n_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw={"wspace": wspace, "hspace": hspace})
    fig.subplots_adjust(left=0.5 / (width * n_cols), right=1 - 0.15 / (width * n_cols))
    return fig, axes


#: The narrowest span a log axis shows, as a factor: a near-constant quantity gets this much
#: room around it instead of a window so narrow that its ticks read as offset noise.
MIN_LOG_SPAN = 4.0

#: Mantissas of the labelled ticks tried on a log axis, finest first.
_LOG_SUBS = ((1, 2, 3, 5, 7), (1, 2, 5), (1, 3), (1,))


def log_axes(ax: Axes, x: bool = True, y: bool = True, max_ticks: tuple[int, int] = (5, 6)) -> None:
    """Log scales on the chosen axes; call after the data is drawn.

    An axis spans at least a factor `MIN_LOG_SPAN` (centred on the data) and carries between two
    and `max_ticks` (x, y) labelled ticks (`log_ticks`): 1-2-3-5-7, 1-2-5 or 1-3 steps on short
    spans, decades (or every k-th decade) on long ones. There are no minor ticks: they cost most
    of the drawing time and add little at this size.
    """
    for on, axis, set_scale, get_lim, set_lim, most in (
        (x, ax.xaxis, ax.set_xscale, ax.get_xlim, ax.set_xlim, max_ticks[0]),
        (y, ax.yaxis, ax.set_yscale, ax.get_ylim, ax.set_ylim, max_ticks[1]),
    ):
        if not on:
            continue
        set_scale("log")
        lo, hi = get_lim()
        axis.set_minor_locator(NullLocator())
        if not (lo > 0 and hi > 0 and np.isfinite(lo) and np.isfinite(hi)):
            continue
        lo, hi = widened(lo, hi)
        set_lim(lo, hi)
        ticks = log_ticks(lo, hi, most)
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FixedFormatter(tick_labels(ticks)))


def widened(lo: float, hi: float, factor: float = MIN_LOG_SPAN) -> tuple[float, float]:
    """`lo`, `hi` (positive), widened about their geometric centre to span at least `factor`."""
    lo, hi = min(lo, hi), max(lo, hi)
    if hi / lo >= factor:
        return lo, hi
    centre, half = np.sqrt(lo * hi), np.sqrt(factor)
    return float(centre / half), float(centre * half)


def log_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Between two and `max_ticks` round values in [`lo`, `hi`] for a log axis: the finest of
    1-2-3-5-7, 1-2-5, 1-3 or decade steps that fits, else every k-th decade."""
    first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    inside = [lo * (1 - 1e-9), hi * (1 + 1e-9)]
    for subs in _LOG_SUBS:
        ticks = [float(f"{m}e{e}") for e in range(first, last + 1) for m in subs]
        ticks = [t for t in ticks if inside[0] <= t <= inside[1]]
        if 2 <= len(ticks) <= max_ticks:
            return ticks
    decades = [e for e in range(first, last + 1) if inside[0] <= 10.0**e <= inside[1]]
    step = max(1, -(-len(decades) // max_ticks))
    return [float(f"1e{e}") for e in decades[::step]]


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels for log-axis ticks in one style per axis: plain (``0.02``, ``500``) where every tick
    lies in [0.001, 100000), else powers of ten (``2×10⁻⁷`` as mathtext)."""
    if all(1e-3 <= t < 1e5 for t in ticks):
        return [f"{t:g}" for t in ticks]
    labels = []
    for t in ticks:
        exponent = int(np.floor(np.log10(t) + 1e-9))
        mantissa = round(t / 10.0**exponent, 6)
        power = f"10^{{{exponent}}}"
        labels.append(f"${power}$" if mantissa == 1 else f"${mantissa:g}\\times{power}$")
    return labels


def integer_ticks(ax: Axes, y: bool = True) -> None:
    """Only whole numbers as ticks on a count axis (steps, evaluations): a view holding fewer
    than two whole numbers is widened to the whole numbers around it."""
    get_lim, set_lim = (ax.get_ylim, ax.set_ylim) if y else (ax.get_xlim, ax.set_xlim)
    lo, hi = get_lim()
    if np.isfinite(lo) and np.isfinite(hi) and np.floor(hi) - np.ceil(lo) < 1:
        lo, hi = np.floor(lo), max(np.ceil(hi), np.floor(lo) + 1)
        pad = 0.05 * (hi - lo)
        set_lim(lo - pad, hi + pad)
    (ax.yaxis if y else ax.xaxis).set_major_locator(MaxNLocator(nbins=5, integer=True))


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
    return [_handle(styles[m], labels.get(m, m)) for m in method_order(methods)]


def _handle(style: MethodStyle, label: str) -> Line2D:
    return Line2D([], [], color=style.colour, marker=style.marker, linestyle=style.linestyle, label=label)


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


def backward_evals(frame: pd.DataFrame) -> pd.Series:
    """Passes through the vector field in the backward pass: NFE + VJPs (missing when both are;
    NFE alone for training curves recorded before VJPs were)."""
    nfe = pd.to_numeric(frame["nfe_backward"], errors="coerce").astype(float)
    if "vjp_backward" not in frame.columns:
        return nfe
    vjp = pd.to_numeric(frame["vjp_backward"], errors="coerce").astype(float)
    return nfe.fillna(0).add(vjp.fillna(0)).where(nfe.notna() | vjp.notna())
