"""The report's size view: each method's peak memory and time against the task's size knob.

Matsubara et al. (2021, Table 1) give each method's memory as a function of the steps N, the
solver's stages s, the field's layers L and the state's size M: backprop keeps the graph of every
stage of every step (order N s L M), ACA one state per step plus one step's graph (N M + s L M),
the symplectic adjoint one state per step plus one layer's graph (N M + s M + L M), the adjoint
none of either (M + L). Which of those terms dominates depends on the size, so a memory verdict
holds in a size regime, not in general. This view reads the records of tasks run at two sizes or
more (the ``scale`` suite): per task, solver, setting, dtype and device (never pooled across
them), one row per method with, at each size, the peak memory and its ratio to naive's in the
same context, and the time over naive's from the same-run ratio cases (`odebench.report.speed`)
where they were timed. A second table counts, for each of Table 1's memory orderings, in how many
of these contexts it holds (lighter by more than the report's `TIE`), ties or is reversed, with the
contexts where it does not hold.
"""

from __future__ import annotations

import pandas as pd

from odebench.report.plots.memory import FACET_KEYS, knob_label, scaling_facets
from odebench.report.recommend import TIE
from odebench.report.speed import GroupSpeed
from odebench.report.style import method_order

#: Table 1's orderings: (lighter, heavier) in peak memory.
ORDERINGS = (("symplectic", "aca"), ("aca", "naive"), ("adjoint", "symplectic"), ("adjoint", "naive"))


def sized(ok: pd.DataFrame) -> pd.DataFrame:
    """The ok records of the memory-scaling facets: task families run at two sizes or more."""
    facets = scaling_facets(ok)
    return pd.concat([rows for _, rows in facets]) if facets else ok.iloc[:0]


def size_tables(ok: pd.DataFrame, groups: dict[tuple[str, str], GroupSpeed]) -> dict[str, pd.DataFrame]:
    """Per task, dtype and device (a title naming them and the size knob): one row per solver,
    setting and method with the peak memory (and x naive) and time x naive at each of its
    sizes; empty when no family was run at two sizes."""
    rows = sized(ok)
    tables: dict[str, pd.DataFrame] = {}
    if rows.empty:
        return tables
    for (task, dtype, device), mine in rows.groupby(["task", "dtype", "device"], sort=False):
        knob = knob_label(mine, unknown="size")
        out = []
        for (solver, setting), family in mine.groupby(["solver", "setting"], sort=False):
            naive = family[family["method"] == "naive"].groupby("size")["peak_memory_mib"].median()
            for method in method_order(family["method"]):
                row = {"solver": solver, "setting": setting, "method": method}
                for size in sorted(mine["size"].unique()):
                    at = family[(family["method"] == method) & (family["size"] == size)]
                    memory, time = f"{knob} {int(size)}: memory", f"{knob} {int(size)}: time"
                    if at.empty:
                        row[memory] = row[time] = "–"
                        continue
                    peak = at["peak_memory_mib"].median()
                    share = naive.get(size)
                    relative = f" ({peak / share:.2f}x)" if share else ""
                    row[memory] = f"{peak:.3g} MiB{relative} n={len(at)}"
                    row[time] = time_vs_naive(groups, at.iloc[0], method)
                out.append(row)
        tables[f"{task} ({knob}), {dtype}, {device}"] = pd.DataFrame(out)
    return tables


def time_vs_naive(groups: dict[tuple[str, str], GroupSpeed], record: pd.Series, method: str) -> str:
    """`method`'s same-run time over naive's in `record`'s group ("–" where not timed)."""
    if method == "naive":
        return "1"
    group = groups.get((record["regime"], record["setting"]))
    speed = group.compare(method, "naive") if group is not None else None
    return "–" if speed is None else f"{speed.median:.2f}x"


def ordering_table(ok: pd.DataFrame) -> pd.DataFrame | None:
    """Per Table 1 ordering: contexts (one task, size, solver, setting, dtype and device) with
    both methods, and how many of them it holds in, ties or reverses; None without such runs."""
    rows = sized(ok)
    if rows.empty:
        return None
    peaks = rows.groupby([*FACET_KEYS, "size", "method"], sort=False)["peak_memory_mib"].median()
    peaks = peaks.unstack("method")
    out = []
    for lighter, heavier in ORDERINGS:
        if lighter not in peaks or heavier not in peaks:
            continue
        both = peaks[[lighter, heavier]].dropna()
        ratio = both[lighter] / both[heavier]
        holds, reversed_ = ratio < 1 / TIE, ratio > TIE
        out.append(
            {
                "ordering": f"{lighter} < {heavier}",
                "n": len(ratio),
                "holds": int(holds.sum()),
                "tie": int((~holds & ~reversed_).sum()),
                "reversed": int(reversed_.sum()),
                "median ratio": f"{ratio.median():.2f}" if len(ratio) else "–",
                "does not hold at": ", ".join(_context(key) for key in ratio[~holds].index) or "–",
            }
        )
    return pd.DataFrame(out) if out else None


def _context(key: tuple) -> str:
    task, solver, setting, _dtype, _device, size = key
    return f"{task}[{int(size)}] {solver} {setting}"
