"""The report's tables: medians per task and method (with ratios to naive), failures, metadata."""

from __future__ import annotations

import math

import pandas as pd

from odebench.report.data import paired
from odebench.report.style import method_order

BASELINE = "naive"

#: Columns of the medians table: record field, heading, number format.
MEDIANS = (
    ("grad_rel_error", "grad error", "{:.2e}"),
    ("nfe_forward", "NFE fwd", "{:.4g}"),
    ("nfe_backward", "NFE bwd", "{:.4g}"),
    ("vjp_backward", "VJP bwd", "{:.4g}"),
    ("time_forward_s", "time fwd [s]", "{:.3g}"),
    ("time_backward_s", "time bwd [s]", "{:.3g}"),
    ("peak_memory_mib", "peak memory [MiB]", "{:.3g}"),
)
MISSING = "–"
_COLS = [col for col, _, _ in MEDIANS]
_RES = "at_reference_resolution"


def medians_table(df: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    """Per task and method: successful/total cases and median of each metric, with x ratio.

    The ratio is the median, over cases naive also solved in the same context, of the method's
    value over naive's: ``(0.5x)`` means half of naive's.
    """
    out = []
    for task in sorted(set(df["task"])):
        tried = df[df["task"] == task]
        task_ok = ok[ok["task"] == task]
        for method in method_order(tried["method"]):
            rows = task_ok[task_ok["method"] == method]
            line = {"task": task, "method": method, "ok": f"{len(rows)}/{(tried['method'] == method).sum()}"}
            pairs = None if method == BASELINE else paired(task_ok, method, BASELINE, [*_COLS, _RES])
            for col, head, fmt in MEDIANS:
                line[head] = _cell(rows[col], fmt, None if pairs is None else _ratio(pairs, col))
            out.append(line)
    return pd.DataFrame(out, columns=["task", "method", "ok", *(h for _, h, _ in MEDIANS)])


def failures_table(df: pd.DataFrame, max_chars: int = 200) -> pd.DataFrame:
    """Every record whose status is not "ok": its case, status and its error's message line."""
    failed = df[df["status"] != "ok"].sort_values(["task", "method", "label"])
    errors = [_first_line(e, max_chars) for e in failed["error"]]
    return pd.DataFrame(
        {"case": failed["label"], "status": failed["status"], "error": errors},
        columns=["case", "status", "error"],
    ).reset_index(drop=True)


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


def _ratio(pairs: pd.DataFrame, col: str) -> float | None:
    pairs = pairs.dropna(subset=[f"{col}_a", f"{col}_b"])
    pairs = pairs[pairs[f"{col}_b"] > 0]
    if col == "grad_rel_error":  # naive's error only bounded there: a ratio to it means nothing
        pairs = pairs[~pairs[f"{_RES}_b"]]
    return float((pairs[f"{col}_a"] / pairs[f"{col}_b"]).median()) if len(pairs) else None


def _cell(values: pd.Series, fmt: str, ratio: float | None) -> str:
    values = values.dropna()
    if values.empty:
        return MISSING
    text = fmt.format(values.median())
    return text if ratio is None or math.isnan(ratio) else f"{text} ({ratio:.3g}x)"


def _first_line(error: object, max_chars: int) -> str:
    if not isinstance(error, str) or not error.strip():
        return ""
    lines = error.strip().splitlines()
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= max_chars else line[: max_chars - 1] + "…"
