"""Which method wins, and which to pick, among cases that differ in the method alone.

A *group* is one regime at one setting (`odebench.report.data`): the same problem, solver,
tolerance or step, dtype and device. Only inside a group does "best" mean something. Seeds are
replicates: a method's value in a group is its median over the seeds it ran (``n``).

Errors and memory are ranked on the cases' own values: errors within `TIE` of the best are ties,
and so are errors both at the reference's resolution (the reference cannot rank them). Time is
ranked only on same-run ratios (`odebench.report.speed`): the methods timed interleaved in one
process, a pair whose interquartile range covers 1 (or within `odebench.report.speed.RESOLUTION`
of 1) a tie. Times of separate cases never rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from odebench.methods import order_key
from odebench.report.speed import FASTER, SLOWER, TIED, GroupSpeed, fastest_text
from odebench.report.style import method_order
from odebench.report.text import fmt

#: Errors and memory within this factor of the best count as ties.
TIE = 1.10
#: The default picks: the fastest method within this factor of the least memory, or of the
#: lowest gradient error, in its group.
NEAR_BEST = 2.0

METRICS = {
    "grad_rel_error": ("most accurate", "{:.1e}"),
    "peak_memory_mib": ("least memory", "{:.3g} MiB"),
}
#: The winners table's time column (from same-run ratios).
FASTEST = "fastest (same-run ratio)"


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


def pareto(values: pd.DataFrame, speed: GroupSpeed | None) -> list[str]:
    """Methods no other method beats on error, memory and time together: no worse on each (errors
    and memory within `TIE`, time not slower on same-run ratios) and better on one (beyond `TIE`,
    or faster). A group without same-run ratios has no Pareto set."""
    if speed is None:
        return []
    data = values.dropna(subset=list(METRICS))
    data = data[data.index.isin(speed.methods)]
    front = []
    for method, row in data.iterrows():
        dominated = False
        for other, against in data.iterrows():
            timing = speed.compare(other, method)
            if other == method or timing is None or timing.verdict == SLOWER:
                continue
            no_worse = all(against[m] <= row[m] * TIE for m in METRICS)
            better = any(against[m] * TIE < row[m] for m in METRICS) or timing.verdict == FASTER
            if no_worse and better:
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
    group: pd.DataFrame,
    speed: GroupSpeed | None = None,
    *,
    max_memory_mib: float | None = None,
    max_error: float | None = None,
) -> Recommendation:
    """The fastest method of one group (all its records, failed ones too) within the limits.

    Speed is read from same-run ratios only (`speed`). Several methods tied on time leave the
    pick to the least memory, then the lowest error, and the reasons say so; a method without a
    same-run ratio against the others meets the limits but cannot be ranked, and a group with no
    ratio at all gets no pick unless one method alone meets the limits.

    Args:
        group: records of one group, prepared (`odebench.report.data.prepare`).
        speed: the group's same-run ratios (`odebench.report.speed.speeds`), None if none.
        max_memory_mib: peak memory budget in MiB (None: no budget).
        max_error: relative gradient error target (None: no target).
    """
    check_limits(max_memory_mib, max_error)
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
        if max_memory_mib is not None and not row["peak_memory_mib"] <= max_memory_mib:
            reasons[method] = f"peak memory {fmt(row['peak_memory_mib'])} MiB over the budget"
        elif max_error is not None and not row["grad_rel_error"] <= max_error:
            reasons[method] = f"gradient error {fmt(row['grad_rel_error'], '{:.1e}')} above the target"
        else:
            meeting.append(method)
    fastest = meeting if len(meeting) == 1 else (speed.fastest(meeting) if speed is not None else [])
    if not fastest:
        for method in meeting:
            reasons[method] = "meets the limits; not ranked: no same-run time ratio"
        if meeting:
            limits += "; no same-run time ratios to rank the methods that meet them"
        return Recommendation(None, limits, _ordered(reasons))
    pick = min(
        fastest,
        key=lambda m: (values.loc[m, "peak_memory_mib"], values.loc[m, "grad_rel_error"], order_key(m)),
    )
    for method in meeting:
        if method == pick:
            continue
        timing = speed.compare(method, pick) if speed is not None else None
        if timing is None:
            reasons[method] = f"meets the limits; not ranked: no same-run time ratio against {pick}"
        elif timing.verdict == TIED:
            by = (
                "memory"
                if values.loc[pick, "peak_memory_mib"] < values.loc[method, "peak_memory_mib"]
                else "error"
            )
            reasons[method] = (
                f"meets the limits; a tie with {pick} on time ({timing}), which has the lower {by}"
            )
        else:
            reasons[method] = f"meets the limits, {timing} the time of {pick} (same-run rounds)"
    return Recommendation(pick, limits, _ordered(reasons))


def _ordered(reasons: dict[str, str]) -> dict[str, str]:
    return dict(sorted(reasons.items(), key=lambda kv: order_key(kv[0])))


def near_best_pick(group: pd.DataFrame, metric: str, speed: GroupSpeed | None = None) -> Recommendation:
    """The fastest method within `NEAR_BEST` of the best value of `metric` in the group."""
    values = per_method(group[group["status"] == "ok"])
    column = values[metric].dropna()
    if column.empty:
        return Recommendation(None, "nothing measured")
    bound = column.min() * NEAR_BEST
    if metric == "grad_rel_error":
        return recommend(group, speed, max_error=bound)
    return recommend(group, speed, max_memory_mib=bound)


def wins_table(
    df: pd.DataFrame,
    speeds: dict[tuple[str, str], GroupSpeed] | None = None,
    *,
    max_memory_mib: float | None = None,
    max_error: float | None = None,
) -> pd.DataFrame:
    """Per group: n seeds, the winner on error, memory and (same-run ratios) time, the Pareto
    set, and the picks.

    `df` is a prepared frame with failed records (they count against a method in the picks);
    `speeds` the groups' same-run ratios (`odebench.report.speed.speeds`).
    """
    rows = []
    speeds = speeds or {}
    own_limits = max_memory_mib is not None or max_error is not None
    for (regime, setting), group in df.groupby(["regime", "setting"], sort=False):
        ok = group[group["status"] == "ok"]
        if ok.empty:
            continue
        values = per_method(ok)
        speed = speeds.get((regime, setting))
        row = {"regime": regime, "setting": setting, "n": int(values["n"].max())}
        for metric, (head, pattern) in METRICS.items():
            winners = best(values, metric)
            row[head] = (
                f"{', '.join(winners)} ({fmt(values.loc[winners[0], metric], pattern)})" if winners else "–"
            )
        row[FASTEST] = fastest_text(speed, values.index)
        row["Pareto set"] = ", ".join(pareto(values, speed)) or "–"
        row["pick if memory is tight"] = near_best_pick(group, "peak_memory_mib", speed).pick or "–"
        row["pick if accuracy matters"] = near_best_pick(group, "grad_rel_error", speed).pick or "–"
        if own_limits:
            limits = {"max_memory_mib": max_memory_mib, "max_error": max_error}
            row["pick under your limits"] = recommend(group, speed, **limits).pick or "none"
        rows.append(row)
    return pd.DataFrame(rows)


def wins_summary(table: pd.DataFrame) -> str:
    """How often each method won each column, over the groups of `table` (ties count for each)."""
    if table.empty:
        return "No group has a successful record."
    parts = []
    for head in (
        *(h for h, _ in METRICS.values()),
        FASTEST,
        "pick if memory is tight",
        "pick if accuracy matters",
    ):
        counts: dict[str, int] = {}
        for cell in table[head]:
            for method in cell.split(" (")[0].split(", "):
                if method not in ("–", "none", ""):
                    counts[method] = counts.get(method, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], order_key(kv[0])))
        parts.append(f"{head}: " + ", ".join(f"{m} {n}" for m, n in ranked))
    return (
        f"Over {len(table)} groups (n = {len(table)}; ties count for each method): " + "; ".join(parts) + "."
    )


def check_limits(max_memory_mib: object = None, max_error: object = None) -> None:
    """Refuse, in one line, a memory budget or error target that is not a positive finite number."""
    import math

    from odebench.errors import InvalidInputError

    for name, value in (("max_memory", max_memory_mib), ("max_error", max_error)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(f"{name} must be a positive number or None, got {value!r}")
        if not (math.isfinite(value) and value > 0):
            raise InvalidInputError(f"{name} must be a positive finite number, got {value!r}")
