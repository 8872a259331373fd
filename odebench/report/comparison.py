"""What changed between two runs, case by case: regressions, improvements, other changes.

Cases are joined on ``case_id``. Noisy lower-is-better metrics (times, peak memory) regress when
new > base x factor and improve when new < base / factor. Deterministic metrics (counts and the
gradient error) are judged on any change, since any change there is real: up is a regression,
down an improvement (errors below a relative change of `error_rtol` and pairs both at the
reference's resolution are ignored). A status going from ok to anything else is a regression,
the reverse an improvement. Descriptive fields that change are listed as changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from odebench.report.data import ok_rows, prepare

NOISY = ("time_forward_s", "time_backward_s", "peak_memory_bytes")
COUNTS = ("nfe_forward", "nfe_backward", "vjp_backward", "steps_accepted", "steps_rejected")
ERRORS = ("grad_rel_error",)
DESCRIPTIVE = (
    "method_backend", "memory_backend", "reference_kind", "reference_error", "n_params",
    "state_size", "exact_discrete_gradient",
)  # fmt: skip
_META = (
    "meta_git_commit",
    "meta_odebench_version",
    "meta_run_id",
    "meta_hostname",
    "meta_started_at",
    "source",
)


@dataclass(frozen=True)
class CaseRef:
    """A case by id and label."""

    case_id: str
    label: str


@dataclass(frozen=True)
class Delta:
    """One metric of one case that differs between base and new."""

    case_id: str
    label: str
    metric: str
    base: Any
    new: Any

    @property
    def ratio(self) -> float | None:
        """new / base for numbers (inf when base is 0), else None."""
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (self.base, self.new)):
            return None
        if self.base == 0:
            return None if self.new == 0 else math.inf
        return self.new / self.base


@dataclass(frozen=True)
class Comparison:
    """The outcome of `compare`; `markdown` renders it, `regressed` decides the exit status."""

    regressions: tuple[Delta, ...]
    improvements: tuple[Delta, ...]
    changes: tuple[Delta, ...]
    only_in_base: tuple[CaseRef, ...]
    only_in_new: tuple[CaseRef, ...]
    n_common: int
    factor: float
    error_rtol: float
    runs: pd.DataFrame = field(repr=False)

    @property
    def regressed(self) -> bool:
        """Whether any case got worse."""
        return bool(self.regressions)

    @property
    def improved(self) -> bool:
        """Whether any case got better."""
        return bool(self.improvements)

    @property
    def markdown(self) -> str:
        """The comparison as Markdown: a summary, then tables of each kind of difference."""
        from odebench.report.comparison_markdown import render

        return render(self)


def compare(
    base: pd.DataFrame, new: pd.DataFrame, *, factor: float = 1.1, error_rtol: float = 1e-6
) -> Comparison:
    """Compare two results frames (one row per Record) case by case.

    Args:
        base: the reference run (e.g. a committed baseline).
        new: the run to judge.
        factor: noise allowance for times and peak memory (> 1).
        error_rtol: relative change of the gradient error below which it counts as equal.
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    b, n = _by_case(prepare(base)), _by_case(prepare(new))
    common = sorted(b.index.intersection(n.index), key=lambda cid: (b.at[cid, "label"], cid))
    found: dict[str, list[Delta]] = {"regression": [], "improvement": [], "change": []}
    for cid in common:
        for kind, delta in _diff(cid, b.loc[cid], n.loc[cid], factor, error_rtol):
            found[kind].append(delta)
    return Comparison(
        regressions=tuple(found["regression"]),
        improvements=tuple(found["improvement"]),
        changes=tuple(found["change"]),
        only_in_base=_refs(b, b.index.difference(n.index)),
        only_in_new=_refs(n, n.index.difference(b.index)),
        n_common=len(common),
        factor=factor,
        error_rtol=error_rtol,
        runs=pd.DataFrame({"base": _meta(base), "new": _meta(new)}).reindex(_meta_order(base, new)),
    )


def _by_case(df: pd.DataFrame) -> pd.DataFrame:
    """One row per case_id: the (median) successful record, else the last failed one."""
    ok = ok_rows(df)
    failed = df[(df["status"] != "ok") & ~df["case_id"].isin(ok["case_id"])].drop_duplicates(
        "case_id", keep="last"
    )
    return pd.concat([ok, failed], ignore_index=True).set_index("case_id")


def _diff(cid: str, b: pd.Series, n: pd.Series, factor: float, error_rtol: float):
    delta = lambda metric, bv, nv: Delta(cid, n["label"], metric, _py(bv), _py(nv))
    if b["status"] != n["status"]:
        kind = "regression" if b["status"] == "ok" else "improvement" if n["status"] == "ok" else "change"
        yield kind, delta("status", _status(b), _status(n))
    elif b["status"] != "ok" and _status(b) != _status(n):
        yield "change", delta("error", _status(b), _status(n))
    if b["status"] != "ok" or n["status"] != "ok":
        return
    for metric in (*NOISY, *COUNTS, *ERRORS):
        bv, nv = b[metric], n[metric]
        if pd.isna(bv) or pd.isna(nv):
            if pd.isna(bv) != pd.isna(nv):
                yield "change", delta(metric, bv, nv)
            continue
        if metric in NOISY:
            worse, better = nv > bv * factor, nv < bv / factor
        elif metric in COUNTS:
            worse, better = nv > bv, nv < bv
        else:
            if b["at_reference_resolution"] and n["at_reference_resolution"]:
                continue
            moved = abs(nv - bv) > error_rtol * abs(bv)
            worse, better = moved and nv > bv, moved and nv < bv
        if worse or better:
            yield ("regression" if worse else "improvement"), delta(metric, bv, nv)
    for metric in DESCRIPTIVE:
        bv, nv = b[metric], n[metric]
        if not (pd.isna(bv) and pd.isna(nv)) and (pd.isna(bv) != pd.isna(nv) or bv != nv):
            yield "change", delta(metric, bv, nv)


def _status(row: pd.Series) -> str:
    """The status, with the error's first line when there is one."""
    error = row["error"] if isinstance(row["error"], str) and row["error"].strip() else None
    return row["status"] if error is None else f"{row['status']}: {error.strip().splitlines()[0][:160]}"


def _refs(df: pd.DataFrame, ids: pd.Index) -> tuple[CaseRef, ...]:
    return tuple(
        sorted((CaseRef(cid, df.at[cid, "label"]) for cid in ids), key=lambda r: (r.label, r.case_id))
    )


def _meta(frame: pd.DataFrame) -> pd.Series:
    values = {}
    for col in _META:
        if col in frame.columns:
            distinct = sorted({str(v) for v in frame[col].dropna()})
            values[col.removeprefix("meta_")] = ", ".join(distinct) if distinct else "–"
    values["records"] = str(len(frame))
    return pd.Series(values, dtype=object)


def _meta_order(*frames: pd.DataFrame) -> list[str]:
    present = {c for f in frames for c in f.columns}
    return [c.removeprefix("meta_") for c in _META if c in present] + ["records"]


def _py(value: Any) -> Any:
    """Plain Python scalars (ints for whole counts) for display and equality."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value
