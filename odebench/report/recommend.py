"""Which method wins, and which to pick, among cases that differ in the method alone.

A *group* is one regime at one setting (`odebench.report.data`): the same problem, solver,
tolerance or step, dtype and device. Only inside a group does "best" mean something. Seeds are
replicates: a method's value in a group is its median over the seeds it ran (``n``).

Values within `TIE` of the best are ties, and so are errors both at the reference's resolution:
on this machine class times of one run move by several percent, and an error the reference
cannot resolve cannot be ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from odebench.report.style import method_order
from odebench.report.text import fmt

#: Values within this factor of the best count as ties.
TIE = 1.10
#: The default picks: the fastest method within this factor of the least memory, or of the
#: lowest gradient error, in its group.
NEAR_BEST = 2.0

METRICS = {
    "grad_rel_error": ("most accurate", "{:.1e}"),
    "peak_memory_mib": ("least memory", "{:.3g} MiB"),
    "time_total_s": ("fastest", "{:.3g} s"),
}


def per_method(group: pd.DataFrame) -> pd.DataFrame:
    """One row per method of a group's ok records: medians over seeds, with ``n``."""
    numeric = ["grad_rel_error", "peak_memory_mib", "time_total_s", "time_forward_s", "time_backward_s"]
    agg = group.groupby("method")[numeric].median()
    agg["at_reference_resolution"] = group.groupby("method")["at_reference_resolution"].all()
    agg["n"] = group.groupby("method").size()
    return agg.loc[method_order(agg.index)]


def best(values: pd.DataFrame, metric: str) -> list[str]:
    """The methods at or within `TIE` of the lowest `metric` (ties at reference resolution too)."""
    column = values[metric].dropna()
    if column.empty:
        return []
    lowest = column.min()
    tied = column[column <= lowest * TIE].index
    if metric == "grad_rel_error":
        resolved_best = values.loc[column.idxmin(), "at_reference_resolution"]
        if resolved_best:
            tied = tied.union(values.index[values["at_reference_resolution"] & values[metric].notna()])
    return method_order(tied)


def pareto(values: pd.DataFrame) -> list[str]:
    """Methods no other method beats on error, memory and time together."""
    metrics = list(METRICS)
    data = values.dropna(subset=metrics)
    front = []
    for method, row in data.iterrows():
        dominated = False
        for other, against in data.iterrows():
            no_worse = all(against[m] <= row[m] for m in metrics)
            if other != method and no_worse and any(against[m] < row[m] for m in metrics):
                dominated = True
                break
        if not dominated:
            front.append(method)
    return method_order(front)


@dataclass(frozen=True)
class Recommendation:
    """The fastest method meeting the limits, and why each other method was not picked."""

    pick: str | None
    limits: str
    reasons: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        head = f"pick {self.pick}" if self.pick else "no method meets the limits"
        lines = [f"{head} ({self.limits})"]
        lines += [f"  {method}: {why}" for method, why in self.reasons.items()]
        return "\n".join(lines)


def recommend(
    group: pd.DataFrame, *, max_memory_mib: float | None = None, max_error: float | None = None
) -> Recommendation:
    """The fastest method of one group (all its records, failed ones too) within the limits.

    Args:
        group: records of one group, prepared (`odebench.report.data.prepare`).
        max_memory_mib: peak memory budget in MiB (None: no budget).
        max_error: relative gradient error target (None: no target).
    """
    limits = ", ".join(
        [*([f"peak memory <= {max_memory_mib:g} MiB"] if max_memory_mib is not None else []),
         *([f"gradient error <= {max_error:g}"] if max_error is not None else [])]
    ) or "no limits: the fastest"  # fmt: skip
    reasons: dict[str, str] = {}
    for method in method_order(set(group["method"]) - set(group.loc[group["status"] == "ok", "method"])):
        statuses = sorted(set(group.loc[group["method"] == method, "status"]))
        reasons[method] = f"failed ({', '.join(statuses)})"
    values = per_method(group[group["status"] == "ok"])
    meeting = []
    for method, row in values.iterrows():
        if pd.isna(row["time_total_s"]):
            reasons[method] = "no time measured"
        elif max_memory_mib is not None and not row["peak_memory_mib"] <= max_memory_mib:
            reasons[method] = f"peak memory {fmt(row['peak_memory_mib'])} MiB over the budget"
        elif max_error is not None and not row["grad_rel_error"] <= max_error:
            reasons[method] = f"gradient error {fmt(row['grad_rel_error'], '{:.1e}')} above the target"
        else:
            meeting.append(method)
    if not meeting:
        return Recommendation(None, limits, dict(sorted(reasons.items(), key=lambda kv: _order(kv[0]))))
    times = values.loc[meeting, "time_total_s"]
    pick = times.idxmin()
    for method in meeting:
        if method != pick:
            ratio = times[method] / times[pick]
            tie = " (a tie on this machine)" if ratio <= TIE else ""
            reasons[method] = f"meets the limits, {ratio:.2f}x the time of {pick}{tie}"
    ordered = dict(sorted(reasons.items(), key=lambda kv: _order(kv[0])))
    return Recommendation(pick, limits, ordered)


def _order(method: str) -> int:
    from odebench.methods import CORE

    return CORE.index(method) if method in CORE else len(CORE)


def near_best_pick(group: pd.DataFrame, metric: str) -> Recommendation:
    """The fastest method within `NEAR_BEST` of the best value of `metric` in the group."""
    values = per_method(group[group["status"] == "ok"])
    column = values[metric].dropna()
    if column.empty:
        return Recommendation(None, "nothing measured")
    bound = column.min() * NEAR_BEST
    if metric == "grad_rel_error":
        return recommend(group, max_error=bound)
    return recommend(group, max_memory_mib=bound)


def wins_table(
    df: pd.DataFrame, *, max_memory_mib: float | None = None, max_error: float | None = None
) -> pd.DataFrame:
    """Per group: n seeds, the winner on error, memory and time, the Pareto set, and the picks.

    `df` is a prepared frame with failed records (they count against a method in the picks).
    """
    rows = []
    own_limits = max_memory_mib is not None or max_error is not None
    for (regime, setting), group in df.groupby(["regime", "setting"], sort=False):
        ok = group[group["status"] == "ok"]
        if ok.empty:
            continue
        values = per_method(ok)
        row = {"regime": regime, "setting": setting, "n": int(values["n"].max())}
        for metric, (head, pattern) in METRICS.items():
            winners = best(values, metric)
            row[head] = (
                f"{', '.join(winners)} ({fmt(values.loc[winners[0], metric], pattern)})" if winners else "–"
            )
        row["Pareto set"] = ", ".join(pareto(values)) or "–"
        row["pick if memory is tight"] = near_best_pick(group, "peak_memory_mib").pick or "–"
        row["pick if accuracy matters"] = near_best_pick(group, "grad_rel_error").pick or "–"
        if own_limits:
            row["pick under your limits"] = (
                recommend(group, max_memory_mib=max_memory_mib, max_error=max_error).pick or "none"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def wins_summary(table: pd.DataFrame) -> str:
    """How often each method won each column, over the groups of `table` (ties count for each)."""
    if table.empty:
        return "No group has a successful record."
    parts = []
    for head in (*(h for h, _ in METRICS.values()), "pick if memory is tight", "pick if accuracy matters"):
        counts: dict[str, int] = {}
        for cell in table[head]:
            for method in cell.split(" (")[0].split(", "):
                if method not in ("–", "none", ""):
                    counts[method] = counts.get(method, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], _order(kv[0])))
        parts.append(f"{head}: " + ", ".join(f"{m} {n}" for m, n in ranked))
    return (
        f"Over {len(table)} groups (n = {len(table)}; ties count for each method): " + "; ".join(parts) + "."
    )
