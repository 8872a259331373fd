"""What changed between two runs, case by case, judged by a `Policy`.

One engine serves ``odebench compare`` and the CI gate (a suite run compared with the committed
baseline results file). Cases are joined on ``case_id``. What a policy judges:

* **status**: ok -> anything else is a regression, the reverse an improvement; a case of the
  base missing from the new run is a regression (a run that stopped half-way is not a pass);
* **counts** (NFE, VJPs, accepted and rejected steps): any change; on one machine they are
  bitwise reproducible, so a change is a change of the algorithm;
* **gradient errors** (``grad_rel_error``, ``grad_rel_error_discrete``): a change beyond
  ``error_rtol`` relative or ``error_atol`` absolute, whichever is looser (pairs both at the
  reference's resolution are ignored);
* **peak memory**: any change where both records were measured by an exact backend (the
  allocator's tensor bytes, `odebench.measure.memory.EXACT`), else beyond ``memory_factor``
  *and* ``memory_floor_bytes`` (memray's figure moves by a few KB from run to run);
* **same-run time ratios**: each method's forward + backward time over naive's on the same
  case *measured in the same run*, beyond ``ratio_factor``, when it is set;
* **absolute times**: beyond ``time_factor``, when it is set (on this machine class the same
  work's median time differs by up to 1.7x between processes);
* **interleaved time ratios** (ratio records, `odebench.jobs.ratio`): each method's time over
  the baseline's timed round by round in one process, beyond ``interleaved_factor``. These are
  steady enough to judge by default.

The defaults are the measured noise of this machine class with margin (`odebench.policy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from odebench.errors import InvalidInputError, first_line
from odebench.jobs.base import COUNTS
from odebench.measure.memory import EXACT
from odebench.policy import DEFAULT_POLICY, Policy
from odebench.report.data import ok_rows, plain, prepare, same_run_ratios

ERRORS = ("grad_rel_error", "grad_rel_error_discrete")
MEMORY = "peak_memory_bytes"
RATIO = "time_ratio_to_naive"
TIMES = ("time_forward_s", "time_backward_s")
DESCRIPTIVE = (
    "method_backend", "memory_backend", "reference_kind", "reference_hash", "n_params",
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
    """A case by id and label (a ratio case has one per method it times, of one id)."""

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
    """The outcome of `compare`; `regressed` decides the exit status."""

    regressions: tuple[Delta, ...]
    improvements: tuple[Delta, ...]
    changes: tuple[Delta, ...]
    only_in_base: tuple[CaseRef, ...]
    only_in_new: tuple[CaseRef, ...]
    n_common: int
    policy: Policy
    runs: pd.DataFrame = field(repr=False)

    @property
    def regressed(self) -> bool:
        """Whether any case got worse or went missing."""
        return bool(self.regressions or self.only_in_base)

    @property
    def improved(self) -> bool:
        """Whether any case got better."""
        return bool(self.improvements)

    @property
    def n_only_in_base(self) -> int:
        """Cases (distinct ids, as a run counts them) of the base missing from the new run."""
        return len({ref.case_id for ref in self.only_in_base})

    @property
    def n_only_in_new(self) -> int:
        """Cases (distinct ids) of the new run that the base does not have."""
        return len({ref.case_id for ref in self.only_in_new})


def compare(
    base: pd.DataFrame,
    new: pd.DataFrame,
    policy: Policy = DEFAULT_POLICY,
    *,
    base_ratios: pd.DataFrame | None = None,
    new_ratios: pd.DataFrame | None = None,
) -> Comparison:
    """Compare two runs case by case under `policy`.

    Args:
        base, new: gradient records (`odebench.results.load`).
        base_ratios, new_ratios: their same-run time ratios (`odebench.results.load_ratios`), if any.

    A run without any record is refused: an empty run says nothing and must not pass.
    """
    empty = pd.DataFrame(columns=["case_id", "method", "ratio", "status"])
    base_ratios = empty if base_ratios is None else base_ratios
    new_ratios = empty if new_ratios is None else new_ratios
    for name, frame, ratios in (("base", base, base_ratios), ("new", new, new_ratios)):
        if frame.empty and ratios.empty:
            raise InvalidInputError(f"the {name} results hold no records; nothing to compare")
    found: dict[str, list[Delta]] = {"regression": [], "improvement": [], "change": []}
    only_in_base, only_in_new, n_common = [], [], 0
    if not (base.empty and new.empty):
        b, n = _by_case(prepare(base)), _by_case(prepare(new))
        common = sorted(b.index.intersection(n.index), key=lambda cid: (b.at[cid, "label"], cid))
        for cid in common:
            for kind, delta in _diff(cid, b.loc[cid], n.loc[cid], policy):
                found[kind].append(delta)
        only_in_base += _refs(b, b.index.difference(n.index))
        only_in_new += _refs(n, n.index.difference(b.index))
        n_common += len(common)
    if not (base_ratios.empty and new_ratios.empty):
        b, n = _ratio_rows(base_ratios), _ratio_rows(new_ratios)
        common = sorted(b.index.intersection(n.index), key=lambda key: b.at[key, "label"])
        for key in common:
            for kind, delta in _diff_ratio(b.loc[key], n.loc[key], policy):
                found[kind].append(delta)
        only_in_base += _refs(b, b.index.difference(n.index))
        only_in_new += _refs(n, n.index.difference(b.index))
        n_common += len({b.at[key, "case_id"] for key in common})  # a ratio case, not its methods
    return Comparison(
        regressions=tuple(found["regression"]),
        improvements=tuple(found["improvement"]),
        changes=tuple(found["change"]),
        only_in_base=tuple(only_in_base),
        only_in_new=tuple(only_in_new),
        n_common=n_common,
        policy=policy,
        runs=pd.DataFrame({"base": _meta(base), "new": _meta(new)}).reindex(_meta_order(base, new)),
    )


def _ratio_rows(ratios: pd.DataFrame) -> pd.DataFrame:
    """One row per ratio case and method, indexed ``case_id/method`` and labelled for reading."""
    from odebench.jobs.ratio import case_of_row

    rows = ratios.copy()
    records = [{k: plain(v) for k, v in row.items()} for row in rows.to_dict("records")]
    rows["label"] = [case_of_row(row).label(row["method"]) for row in records]
    rows.index = rows["case_id"] + "/" + rows["method"].fillna("*").astype(str)
    return rows[~rows.index.duplicated(keep="last")]


def _diff_ratio(b: pd.Series, n: pd.Series, policy: Policy):
    """A ratio case's status, and each method's interleaved ratio beyond the policy's factor."""
    delta = lambda metric, bv, nv: Delta(b.name, n["label"], metric, _py(bv), _py(nv))
    if b["status"] != n["status"]:
        kind = "regression" if b["status"] == "ok" else "improvement" if n["status"] == "ok" else "change"
        yield kind, delta("status", _status(b), _status(n))
        return
    bv, nv = plain(b["ratio"]), plain(n["ratio"])
    if policy.interleaved_factor and bv is not None and nv is not None:
        if nv > bv * policy.interleaved_factor:
            yield "regression", delta("interleaved_ratio", bv, nv)
        elif nv < bv / policy.interleaved_factor:
            yield "improvement", delta("interleaved_ratio", bv, nv)


def _by_case(df: pd.DataFrame) -> pd.DataFrame:
    """One row per case_id: the (median) successful record, else the last failed one."""
    df = df.assign(**{RATIO: same_run_ratios(df)})
    ok = ok_rows(df)
    failed = df[(df["status"] != "ok") & ~df["case_id"].isin(ok["case_id"])].drop_duplicates(
        "case_id", keep="last"
    )
    return pd.concat([ok, failed], ignore_index=True).set_index("case_id")


def _diff(cid: str, b: pd.Series, n: pd.Series, policy: Policy):
    delta = lambda metric, bv, nv: Delta(cid, n["label"], metric, _py(bv), _py(nv))
    if b["status"] != n["status"]:
        kind = "regression" if b["status"] == "ok" else "improvement" if n["status"] == "ok" else "change"
        yield kind, delta("status", _status(b), _status(n))
    elif b["status"] != "ok" and _status(b) != _status(n):
        yield "change", delta("error", _status(b), _status(n))
    if b["status"] != "ok" or n["status"] != "ok":
        return
    judged = (*COUNTS, *ERRORS, MEMORY, *((RATIO,) if policy.ratio_factor else ()))
    judged += TIMES if policy.time_factor else ()
    for metric in judged:
        bv, nv = plain(b.get(metric)), plain(n.get(metric))
        if metric not in (RATIO, *TIMES):
            if _finite(bv) and not _finite(nv):  # a measurement lost, or become NaN or infinite
                yield "regression", delta(metric, bv, nv)
                continue
            if not _finite(bv):  # nothing to judge against: said, never a free pass
                if bv != nv:
                    yield "change", delta(metric, bv, nv)
                continue
        if bv is None or nv is None:
            continue
        worse, better = _judge(metric, bv, nv, b, n, policy)
        if worse or better:
            yield ("regression" if worse else "improvement"), delta(metric, bv, nv)
    for metric in DESCRIPTIVE:
        bv, nv = plain(b.get(metric)), plain(n.get(metric))
        if bv != nv:
            yield "change", delta(metric, bv, nv)


def _judge(metric: str, bv: float, nv: float, b: pd.Series, n: pd.Series, policy: Policy):
    """(worse, better) for one metric under `policy`."""
    if metric in COUNTS:
        return nv > bv, nv < bv
    if metric in ERRORS:
        if b["at_reference_resolution"] and n["at_reference_resolution"] and metric == "grad_rel_error":
            return False, False
        moved = abs(nv - bv) > max(policy.error_rtol * abs(bv), policy.error_atol)
        return moved and nv > bv, moved and nv < bv
    if metric == MEMORY:
        if b.get("memory_backend") == n.get("memory_backend") and n.get("memory_backend") in EXACT:
            return nv > bv, nv < bv
        moved = abs(nv - bv) > policy.memory_floor_bytes
        return moved and nv > bv * policy.memory_factor, moved and nv < bv / policy.memory_factor
    factor = policy.ratio_factor if metric == RATIO else policy.time_factor
    return nv > bv * factor, nv < bv / factor


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def _status(row: pd.Series) -> str:
    """The status, with the error's first line when there is one."""
    error = first_line(row.get("error"), 160)
    return row["status"] if not error else f"{row['status']}: {error}"


def _refs(df: pd.DataFrame, ids: pd.Index) -> list[CaseRef]:
    """The rows `ids` of `df` as cases: their ``case_id`` column (a ratio row's index also names
    its method) where there is one, and their label."""
    refs = (CaseRef(str(df.at[i, "case_id"]) if "case_id" in df else i, df.at[i, "label"]) for i in ids)
    return sorted(refs, key=lambda r: (r.label, r.case_id))


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
    value = plain(value)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


from odebench.comparison.markdown import render as render_comparison  # noqa: E402  (renders the above)

__all__ = ["DEFAULT_POLICY", "CaseRef", "Comparison", "Delta", "Policy", "compare", "render_comparison"]
