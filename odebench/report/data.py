"""The report's view of a results frame: typed columns, one row per successful case, pairs.

Every report function reads a frame through `prepare` (columns as `odebench.record.RECORD_FIELDS`
plus ``meta_*``; missing columns are added empty, numbers made numeric) and, for measurements,
`ok_rows` (status "ok" only; a case recorded several times is reduced to the median of its
measurements).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import pandas as pd

from odebench.record import CASE_FIELDS, RECORD_FIELDS, Case, Record

_NUMERIC_TYPES = {"int", "float", "int | None", "float | None"}
_NUMERIC_CASE = tuple(f.name for f in fields(Case) if f.type in _NUMERIC_TYPES)
#: Record fields holding a number (measurements and counts), medians taken over repeats.
MEASUREMENTS = tuple(f.name for f in fields(Record) if f.type in _NUMERIC_TYPES)
#: What must match for two records to be the same problem solved the same way by two methods.
CONTEXT_KEYS = tuple(k for k in CASE_FIELDS if k not in ("method", "repeats"))


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every record column present, typed, and the report's own columns.

    Added columns: ``problem`` (``task[size]``), ``context`` (a key equal for records that differ
    only in method), ``label`` (the case's label), ``time_total_s``, ``peak_memory_mib``.
    """
    df = frame.copy().reset_index(drop=True)
    for col in RECORD_FIELDS:
        if col not in df.columns:
            df[col] = None
    for col in (*_NUMERIC_CASE, *MEASUREMENTS):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in ("task", "method", "solver", "dtype", "device", "case_id"):
        df[col] = df[col].astype(object).where(df[col].notna(), "?").astype(str)
    df["status"] = df["status"].astype(object).where(df["status"].notna(), "missing").astype(str)
    resolved = df["at_reference_resolution"].astype(object)
    df["at_reference_resolution"] = resolved.map(lambda v: _plain(v) is not None and bool(v)).astype(bool)
    rows = df[list(CASE_FIELDS)].to_dict("records")
    df["problem"] = [problem_name(r["task"], r["size"]) for r in rows]
    df["context"] = ["|".join(repr(_plain(r[k])) for k in CONTEXT_KEYS) for r in rows]
    df["label"] = [case_label(r) for r in rows]
    return _derive(df)


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The successful records of a prepared frame, one per case (medians where repeated)."""
    ok = df[df["status"] == "ok"]
    if not ok["case_id"].duplicated().any():
        return ok.reset_index(drop=True)
    agg = {c: ("median" if c in MEASUREMENTS else "first") for c in ok.columns if c != "case_id"}
    merged = ok.groupby("case_id", sort=False, as_index=False).agg(agg)
    return _derive(merged)[ok.columns]


def paired(ok: pd.DataFrame, a: str, b: str, columns: Sequence[str]) -> pd.DataFrame:
    """Cases solved by both method `a` and method `b` in the same context, side by side.

    The result has the context keys, ``problem``, and each of `columns` twice, suffixed ``_a``
    and ``_b``.
    """
    keep = ["context", "problem", *CONTEXT_KEYS]
    left = ok.loc[ok["method"] == a, [*keep, *columns]].drop_duplicates("context", keep="last")
    right = ok.loc[ok["method"] == b, ["context", *columns]].drop_duplicates("context", keep="last")
    return left.merge(right, on="context", suffixes=("_a", "_b")).reset_index(drop=True)


def problem_name(task: str, size: Any) -> str:
    """``task[size]`` as in a case's label, or ``task`` for the task's default size."""
    size = _plain(size)
    return str(task) if size is None else f"{task}[{int(size) if float(size).is_integer() else size}]"


def case_label(row: Mapping[str, Any]) -> str:
    """The case's own label (`Case.label`), plus atol and seed where they are not the defaults."""
    values = {k: _plain(row.get(k)) for k in CASE_FIELDS}
    for k in ("size", "seed", "repeats"):
        if isinstance(values[k], float) and values[k].is_integer():
            values[k] = int(values[k])
    try:
        case = Case(**{k: v for k, v in values.items() if v is not None})
    except (TypeError, ValueError):
        return f"{values['task']}/{values['method']}"
    default = Case(task=case.task, method=case.method)
    extras = [
        f"{k}={getattr(case, k):g}" for k in ("atol", "seed") if getattr(case, k) != getattr(default, k)
    ]
    return "/".join([case.label(), *extras])


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    df["time_total_s"] = df["time_forward_s"] + df["time_backward_s"]
    df["peak_memory_mib"] = df["peak_memory_bytes"] / 2**20
    return df


def _plain(value: Any) -> Any:
    """None for missing values (None, NaN), the value otherwise."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
