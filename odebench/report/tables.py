"""The report's tables: measurements per group and method (with ratios to naive), failures,
warnings, metadata. Nothing here pools records that differ in anything but the seed."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from odebench.errors import first_line
from odebench.methods import BASELINE
from odebench.report.data import same_run_ratios
from odebench.report.speed import GroupSpeed
from odebench.report.style import method_order
from odebench.report.text import COUNT, ERROR, MISSING, fmt, fmt_column

#: Columns of the measurements table: record field, heading, number format (None: one format
#: for the whole column, `column_pattern`), ratio to naive?
#: Times of a case are measured in its own process: information, never a ranking (the time
#: ratio comes from the same-run ratio cases, `odebench.report.speed`).
MEASURED = (
    ("grad_rel_error", "grad error", ERROR, False),
    ("nfe_forward", "NFE fwd", COUNT, False),
    ("nfe_backward", "NFE bwd", COUNT, False),
    ("vjp_backward", "VJP bwd", COUNT, False),
    ("time_forward_s", "time fwd [ms], own process", None, False),
    ("time_backward_s", "time bwd [ms], own process", None, False),
    ("peak_memory_mib", "peak memory [MiB]", None, False),
    ("peak_memory_mib", "memory vs naive", "{:.2f}x", True),
)
#: The time column: the method's same-run ratio to naive, median [interquartile range].
TIME_VS_NAIVE = "time vs naive, same run [IQR]"
_SCALE = {"time_forward_s": 1e3, "time_backward_s": 1e3}


def measurements_table(
    df: pd.DataFrame, speeds: Mapping[tuple[str, str], GroupSpeed] | None = None
) -> pd.DataFrame:
    """One row per group (regime and setting) and method: ok/all records and the medians over
    seeds of each measurement; memory also as a ratio to naive on the same case, and time as the
    same-run ratio to naive (`speeds`, from the ratio cases) with its interquartile range."""
    df = df.assign(_memory_ratio=same_run_ratios(df, "peak_memory_mib", "peak_memory_mib"))
    speeds = speeds or {}
    rows = []
    for (regime, setting), group in df.groupby(["regime", "setting"], sort=False):
        speed = speeds.get((regime, setting))
        for method in method_order(group["method"]):
            mine = group[group["method"] == method]
            ok = mine[mine["status"] == "ok"]
            line = {"regime": regime, "setting": setting, "method": method, "ok": f"{len(ok)}/{len(mine)}"}
            for column, head, pattern, is_ratio in MEASURED:
                values = ok["_memory_ratio" if is_ratio else column].dropna()
                if is_ratio and method == BASELINE:
                    line[head] = MISSING if values.empty else "1x"
                    continue
                median = values.median() if len(values) else None
                line[head] = median if pattern is None else fmt(median, pattern, _SCALE.get(column, 1.0))
            timing = speed.compare(method, BASELINE) if speed is not None else None
            line[TIME_VS_NAIVE] = "1x" if method == BASELINE and speed is not None else str(timing or MISSING)
            rows.append(line)
    columns = ["regime", "setting", "method", "ok", *(head for _, head, _, _ in MEASURED), TIME_VS_NAIVE]
    table = pd.DataFrame(rows, columns=columns)
    for column, head, pattern, _ in MEASURED:
        if pattern is None:  # one format for the whole column
            table[head] = fmt_column(table[head], scale=_SCALE.get(column, 1.0))
    return table


def failures_table(df: pd.DataFrame, max_chars: int = 200) -> pd.DataFrame:
    """Every record whose status is not "ok": its case, status and its error's message line."""
    failed = df[df["status"] != "ok"].sort_values(["task", "method", "label"])
    return pd.DataFrame(
        {
            "case": failed["label"],
            "status": failed["status"],
            "error": [first_line(e, max_chars) for e in failed["error"]],
        },
        columns=["case", "status", "error"],
    ).reset_index(drop=True)


def warnings_table(df: pd.DataFrame, max_chars: int = 300) -> pd.DataFrame:
    """Each distinct warning the cases raised, with how many cases and the first of them; and a
    case recorded more than once (several files or runs) against different reference gradients,
    whose errors then are not comparable."""
    seen: dict[str, list[str]] = {}
    for label, warnings in zip(df["label"], df["warnings"]):
        if isinstance(warnings, list):
            for warning in warnings:
                seen.setdefault(first_line(warning, max_chars), []).append(label)
    if "reference_hash" in df.columns:
        hashes = df.dropna(subset=["reference_hash"]).groupby("case_id")["reference_hash"].nunique()
        for case_id in hashes[hashes > 1].index:
            label = df.loc[df["case_id"] == case_id, "label"].iloc[0]
            message = "the same case was scored against different reference gradients (reference_hash)"
            seen.setdefault(message, []).append(label)
    rows = [(w, len(labels), labels[0]) for w, labels in seen.items()]
    return pd.DataFrame(rows, columns=["warning", "cases", "first case"])


def metadata_table(df: pd.DataFrame) -> pd.DataFrame:
    """The ``meta_*`` values, one column per results file and run, one row per key.

    The keys that identify a run come first; keys empty in every run are left out.
    """
    meta = [c for c in df.columns if c.startswith("meta_")]
    keys = [c for c in ("source", *meta) if c in df.columns]
    if df.empty or not keys:
        return pd.DataFrame({"key": ["records"], "value": [str(len(df))]})
    cells = df[keys].astype(object).where(df[keys].notna(), "").astype(str)
    runs = cells.groupby(keys, sort=False).size().reset_index(name="records")
    names = {c: c.removeprefix("meta_") for c in keys}
    first = [k for k in _META_FIRST if k in names.values()]
    order = [*first, *sorted(set(names.values()) - set(first)), "records"]
    table = runs.rename(columns=names).astype(str).T.reindex(order)
    table = table[(table != "").any(axis=1)]
    table.columns = [f"run {i + 1}" for i in range(table.shape[1])] if table.shape[1] > 1 else ["value"]
    return table.rename_axis("key").reset_index()


_META_FIRST = (
    "source",
    "run_id",
    "command",
    "git_commit",
    "git_dirty",
    "odebench_version",
    "hostname",
    "started_at",
)
