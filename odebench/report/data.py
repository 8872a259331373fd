"""The reports' view of a results frame: typed columns, like-for-like groups, one row per case.

Every report function reads a frame through `prepare` (columns as `odebench.record.RECORD_FIELDS`
plus ``meta_*``; missing columns are added empty, numbers made numeric) and, for measurements,
`ok_rows` (status "ok" only; a case recorded several times is reduced to the median of its
measurements).

Three keys say what may be compared with what:

* ``context``: everything that changes a result except the method. Two records with the same
  context differ in the method alone: the only pairs a finding or a ratio compares.
* ``regime``: ``task[size] · solver · dtype · device``, the problem and how it is solved, across
  the tolerances (or steps) of that solver: one row of the accuracy-vs-cost figure.
* ``setting``: ``tol=1e-06`` or ``h=0.01``, the solver setting inside a regime.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import pandas as pd

from odebench.jobs.base import problem_label, setting_label
from odebench.jobs.gradient import CASE_FIELDS, IDENTITY_FIELDS, RECORD_FIELDS, Case, Record
from odebench.methods import BASELINE

_NUMERIC_TYPES = {"int", "float", "int | None", "float | None"}
_NUMERIC_CASE = tuple(f.name for f in fields(Case) if f.type in _NUMERIC_TYPES)
#: Record fields holding a number (measurements and counts), medians taken over repeats.
MEASUREMENTS = tuple(f.name for f in fields(Record) if f.type in _NUMERIC_TYPES)
#: What must match for two records to be the same problem solved the same way by two methods.
CONTEXT_KEYS = tuple(k for k in IDENTITY_FIELDS if k != "method")
#: What must match for two records to be on one accuracy-vs-cost curve. The seed is not among
#: them: seeds are replicates of a regime, shown as medians with their count n.
REGIME_KEYS = ("task", "size", "solver", "dtype", "device")


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every record column present, typed, and the report's own columns.

    Added columns: ``problem`` (``task[size]``), ``setting`` (``tol=..`` or ``h=..``),
    ``regime``, ``context``, ``label`` (the case's label), ``time_total_s``, ``peak_memory_mib``.
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
    df["at_reference_resolution"] = resolved.map(lambda v: plain(v) is not None and bool(v)).astype(bool)
    rows = df[list(CASE_FIELDS)].to_dict("records")
    df["problem"] = [problem_label(r["task"], plain(r["size"])) for r in rows]
    df["setting"] = [setting_label(plain(r["step_size"]), plain(r["rtol"]), plain(r["atol"])) for r in rows]
    df["regime"] = [regime_label(r) for r in rows]
    df["context"] = ["|".join(repr(plain(r[k])) for k in CONTEXT_KEYS) for r in rows]
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

    The result has the context keys, ``problem``, ``setting``, ``regime``, and each of
    `columns` twice, suffixed ``_a`` and ``_b``.
    """
    keep = ["context", "problem", "setting", "regime", *CONTEXT_KEYS]
    left = ok.loc[ok["method"] == a, [*keep, *columns]].drop_duplicates("context", keep="last")
    right = ok.loc[ok["method"] == b, ["context", *columns]].drop_duplicates("context", keep="last")
    return left.merge(right, on="context", suffixes=("_a", "_b")).reset_index(drop=True)


def same_run_ratios(df: pd.DataFrame, column: str = "time_total_s", over: str = "time_total_s") -> pd.Series:
    """Each ok record's `column` over naive's `over` on the same case *in the same run*.

    Indexed like `df` (a prepared frame); NaN where no naive record of that run matches. Times
    are only ever divided within one run: between processes the same work's time moves by up
    to 1.7x on this machine class, within one run far less.
    """
    run = df["run_id"].astype(str) if "run_id" in df.columns else pd.Series("", index=df.index)
    key = run + "#" + df["context"]
    ok = df["status"] == "ok"
    naive = df[ok & (df["method"] == BASELINE)].assign(_key=key).drop_duplicates("_key", keep="last")
    baseline = key.map(naive.set_index("_key")[over])
    return (df[column] / baseline).where(ok & (baseline > 0))


def regime_label(row: Mapping[str, Any]) -> str:
    """``task[size] · solver · dtype · device``: its seeds are replicates, not regimes."""
    parts = [
        problem_label(row["task"], plain(row["size"])),
        str(row["solver"]),
        str(row["dtype"]),
        str(row["device"]),
    ]
    return " · ".join(parts)


def case_label(row: Mapping[str, Any]) -> str:
    """The case's own label (`Case.label`) from a row of a results frame."""
    values = {k: plain(row.get(k)) for k in CASE_FIELDS}
    for k in ("size", "seed", "repeats", "max_steps"):
        if isinstance(values[k], float) and values[k].is_integer():
            values[k] = int(values[k])
    try:
        return Case(**{k: v for k, v in values.items() if v is not None}).label()
    except (TypeError, ValueError):
        return f"{values['task']}/{values['method']}"


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    df["time_total_s"] = df["time_forward_s"] + df["time_backward_s"]
    df["peak_memory_mib"] = df["peak_memory_bytes"] / 2**20
    return df


def plain(value: Any) -> Any:
    """None for missing values (None, NaN, pd.NA), the value otherwise."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
