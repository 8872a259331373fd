"""The one evaluator of published claims (`odebench.claims`): pairs, effects, intervals, verdicts.

For each part of a claim, the runs (or gradient cases) that match its treatment are paired with
those that match its control and are equal in every other identity field, the seed included
(or, without a control, compared with the published bound). Each pair gives an effect on the
metric's scale; the part's n is the number of pairs, its effect the median, and its interval
the distribution-free sign-test interval of the median (order statistics; the narrowest with
coverage of at least `CONFIDENCE`, its exact coverage stated; with 5 pairs it is their range,
at 93.8 %). The part's verdict:

* ``insufficient evidence``: fewer than `MIN_PAIRS` pairs;
* ``holds``: the interval lies beyond "no effect" (and beyond the part's negligible band) on
  the published side, and the median effect is at least half the published one where the
  paper gives a size;
* ``direction only``: on the published side, but the median is under half the published size;
* ``not reproduced``: the interval lies beyond "no effect" on the other side;
* ``no detectable difference``: the interval covers "no effect".

A ``no_worse`` part (the paper claims only "equal or better") holds when the interval lies on
the published side of the negligible band's far edge (the margin), is not reproduced when it
lies wholly beyond that edge, and is ``inconclusive`` when it straddles it.

A claim holds when all its parts do and holds in part (naming the parts) when some do; else it
is not reproduced (any part the other way) or shows no detectable difference, qualified by the
claim's scope ("at this scale") wherever the setup deviates from the published one: a result at
a scale-down is never a refutation of the paper. Nothing here names a method, study or paper:
the claims are declared by the studies and methods they belong to.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from odebench.claims import DIFFERENCE, HIGHER, RATIO, AtLeast, Claim, Metric, Part

HOLDS, PART, DIRECTION = "holds", "holds in part", "direction only"
NOT_REPRODUCED, NO_DIFFERENCE = "not reproduced", "no detectable difference"
INSUFFICIENT, UNTESTABLE = "insufficient evidence", "cannot test"
INCONCLUSIVE = "inconclusive"
#: Fewest pairs a part's verdict is drawn from.
MIN_PAIRS = 5
#: Least coverage of a part's interval.
CONFIDENCE = 0.90
#: What makes two training runs the same run but for the compared fields.
TRAINING_KEYS = (
    "study",
    "method",
    "solver",
    "rtol",
    "atol",
    "step_size",
    "dtype",
    "device",
    "seed",
    "iterations",
    "max_seconds",
)


@dataclass(frozen=True)
class Interval:
    """A median with its sign-test interval: ``low`` to ``high`` covers the median with
    probability ``coverage`` (exact, from the binomial distribution of signs)."""

    median: float
    low: float
    high: float
    coverage: float


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The median of `values` and the narrowest order-statistic interval with coverage of at
    least `confidence` (the widest, their range, when there are too few values for that)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    # P(B <= j) for B ~ Binomial(n, 1/2): the interval [x_(j+1), x_(n-j)] misses with 2 P(B <= j).
    tail = [c / 2**n for c in itertools.accumulate(math.comb(n, k) for k in range(n + 1))]
    j = 0
    while j + 1 < n - j - 1 and 2 * tail[j + 1] <= 1 - confidence:
        j += 1
    return Interval(float(np.median(x)), float(x[j]), float(x[n - 1 - j]), float(1 - 2 * tail[j]))


@dataclass(frozen=True)
class PartResult:
    """One part of a claim measured: its pairs' effects, interval and verdict."""

    part: Part
    n: int
    verdict: str
    interval: Interval | None = None
    why: str = ""

    def text(self) -> str:
        """``name: what median (CI) [published], n = N: verdict``."""
        part = self.part
        if self.interval is None:
            return f"{part.name}: {self.why}"
        i = self.interval
        # Values beside a bound are shown as they are; paired effects on their scale.
        signed = part.control is not None and part.metric.scale == DIFFERENCE
        published = ""
        if part.published is not None:
            published = f"; published {_number(part.published, signed)}"
        elif part.bound is not None:
            published = f"; bound {_number(part.bound, signed)}"
        return (
            f"{part.name}: {_effect_label(part)} median {_number(i.median, signed)} "
            f"({i.coverage:.1%} CI {_number(i.low, signed)} to {_number(i.high, signed)})"
            f"{published}, n = {self.n}: {self.verdict}"
        )


@dataclass(frozen=True)
class Finding:
    """A claim judged on a run: what was measured, with n, and the verdict."""

    claim: Claim
    parts: tuple[PartResult, ...]
    verdict: str

    @property
    def n(self) -> int:
        return min((p.n for p in self.parts), default=0)

    @property
    def measured(self) -> str:
        return "; ".join(p.text() for p in self.parts)


def evaluate(claim: Claim, frame: pd.DataFrame, keys: Sequence[str]) -> Finding:
    """Judge `claim` on `frame`: one row per successful run or case, with the identity `keys`
    and a column for every metric the claim reads (`with_curve_metrics` adds window metrics)."""
    results = tuple(evaluate_part(part, frame, keys) for part in claim.parts)
    return Finding(claim, results, combine(claim, results))


def evaluate_part(part: Part, frame: pd.DataFrame, keys: Sequence[str]) -> PartResult:
    """One part's pairs, effects, interval and verdict (see the module docstring)."""
    column = metric_column(part.metric)
    if column not in frame.columns or frame.empty:
        return PartResult(part, 0, UNTESTABLE, why=f"no run measured {part.metric.label}")
    rows = _matching(frame, part.where)
    treated = _matching(rows, part.treatment)
    if treated.empty:
        return PartResult(part, 0, UNTESTABLE, why=f"no successful run with {_describe(part.treatment)}")
    if part.control is None:
        values = pd.to_numeric(treated[column], errors="coerce").dropna()
        effects = values / part.bound if part.metric.scale == RATIO else values - part.bound
    else:
        control = _matching(rows, part.control)
        if control.empty:
            return PartResult(part, 0, UNTESTABLE, why=f"no successful run with {_describe(part.control)}")
        effects = _paired_effects(part, treated, control, column, keys)
    effects = effects[np.isfinite(effects)]
    n = len(effects)
    if n < MIN_PAIRS:
        what = ("run" if part.control is None else "pair") + ("" if n == 1 else "s")
        why = f"only {n} {what} (a verdict needs at least {MIN_PAIRS})"
        if part.metric.window is not None and treated[column].isna().all():
            start, stop = part.metric.window
            why += f"; no run's curve covers iterations {start}-{'end' if stop is None else stop - 1}"
        return PartResult(part, n, INSUFFICIENT, why=why)
    interval = median_interval(effects.to_numpy())
    if part.control is None:  # report the values themselves beside the bound
        back = (lambda v: v * part.bound) if part.metric.scale == RATIO else (lambda v: v + part.bound)
        shown = Interval(back(interval.median), back(interval.low), back(interval.high), interval.coverage)
    else:
        shown = interval
    return PartResult(part, n, _part_verdict(part, interval), shown)


def _paired_effects(part: Part, treated, control, column: str, keys: Sequence[str]) -> pd.Series:
    varied = set(part.treatment) | set(part.control or {})
    shared = [k for k in keys if k not in varied and k in treated.columns]
    resolution = part.metric.resolution
    extra = [resolution] if resolution else []

    def keyed(rows):
        key = ["|".join(repr(_plain(v)) for v in row) for row in rows[shared].itertuples(index=False)]
        return rows.assign(_key=key).drop_duplicates("_key", keep="last").set_index("_key")

    joined = keyed(treated)[[column, *extra]].merge(
        keyed(control)[[column, *extra]], left_index=True, right_index=True, suffixes=("_t", "_c")
    )
    if resolution:
        joined = joined[~(joined[f"{resolution}_t"].astype(bool) & joined[f"{resolution}_c"].astype(bool))]
    t = pd.to_numeric(joined[f"{column}_t"], errors="coerce")
    c = pd.to_numeric(joined[f"{column}_c"], errors="coerce")
    if part.metric.scale == RATIO:
        return (t / c).where(c > 0)
    return t - c


def _part_verdict(part: Part, i: Interval) -> str:
    none = 1.0 if part.metric.scale == RATIO else 0.0
    if part.metric.scale == RATIO:
        below, above = none / (1 + part.negligible), none * (1 + part.negligible)
    else:
        below, above = none - part.negligible, none + part.negligible
    if part.no_worse:
        within, beyond = (
            (i.low > below, i.high < below) if part.direction == HIGHER else (i.high < above, i.low > above)
        )
        return HOLDS if within else NOT_REPRODUCED if beyond else INCONCLUSIVE
    higher, lower = i.low > above, i.high < below
    favourable, opposite = (higher, lower) if part.direction == HIGHER else (lower, higher)
    if opposite:
        return NOT_REPRODUCED
    if not favourable:
        return NO_DIFFERENCE
    if part.published is None or part.control is None:
        return HOLDS
    if part.metric.scale == RATIO:
        size = math.log(i.median) / math.log(part.published) if i.median > 0 else math.inf
    else:
        size = i.median / part.published
    return HOLDS if size >= 0.5 else DIRECTION


def combine(claim: Claim, results: Sequence[PartResult]) -> str:
    """A claim's verdict from its parts' (see the module docstring)."""
    verdicts = [r.verdict for r in results]
    decided = [v for v in verdicts if v not in (INSUFFICIENT, UNTESTABLE)]
    scope = f" {claim.scope}" if claim.deviations and claim.scope else ""
    if not decided:
        return UNTESTABLE if all(v == UNTESTABLE for v in verdicts) else INSUFFICIENT
    if len(decided) == len(verdicts) and all(v == HOLDS for v in verdicts):
        return HOLDS
    held = [r for r in results if r.verdict in (HOLDS, DIRECTION)]
    if held:
        named = ", ".join(r.part.name + (" (direction only)" if r.verdict == DIRECTION else "") for r in held)
        return f"{PART}: {named}"
    if NOT_REPRODUCED in decided:
        return f"{NOT_REPRODUCED}{scope}"
    if NO_DIFFERENCE not in decided:
        return INCONCLUSIVE
    return f"{NO_DIFFERENCE}{scope}"


def metric_column(metric: Metric) -> str:
    """The frame column a metric is read from: the field itself, or its window's summary."""
    if metric.window is None:
        return metric.column
    start, stop = metric.window
    per = f"/{metric.per}" if metric.per else ""
    log = "log:" if metric.log else ""
    return f"{log}{metric.column}{per}@{start}:{'' if stop is None else stop}"


def with_curve_metrics(runs: pd.DataFrame, curves: pd.DataFrame, metrics: Iterable[Metric]) -> pd.DataFrame:
    """`runs` with a column per window metric: the mean (geometric with ``log``) of the curve
    column over the window's iterations, per run; NaN where a run's curve does not cover it."""
    out = runs.copy()
    for metric in {m for m in metrics if m.window is not None}:
        column = metric_column(metric)
        start, stop = metric.window
        if curves.empty or metric.column not in curves.columns:
            out[column] = np.nan
            continue
        inside = curves["iteration"] >= start
        if stop is not None:
            inside &= curves["iteration"] < stop
        points = curves[inside]
        values = pd.to_numeric(points[metric.column], errors="coerce")
        if metric.per:
            values = values / pd.to_numeric(points[metric.per], errors="coerce")
        if metric.log:
            values = np.log10(values.where(values > 0))
        summary = (
            pd.DataFrame({"case_id": points["case_id"], "value": values}).groupby("case_id")["value"].mean()
        )
        if metric.log:
            summary = 10**summary
        last = curves.groupby("case_id")["iteration"].max()
        covered = last >= (start if stop is None else stop - 1)
        summary = summary.where(covered.reindex(summary.index, fill_value=False))
        out[column] = out["case_id"].map(summary)
    return out


def gradient_findings(ok: pd.DataFrame) -> list[Finding]:
    """Every registered method's claims judged on a prepared frame of successful gradient cases
    (`odebench.report.data.ok_rows`); a claim whose methods the run lacks is "cannot test"."""
    from odebench import methods
    from odebench.jobs.gradient import IDENTITY_FIELDS

    claims = [c for _, method in methods.registry.items() for c in method.claims]
    return [evaluate(c, ok, IDENTITY_FIELDS) for c in claims]


def training_findings(runs: pd.DataFrame, curves: pd.DataFrame) -> list[Finding]:
    """Every registered study's claims, with the study's deviations, judged on the finished
    runs of a training frame (`odebench.results.load_training`) and their curves; those with a
    run of what they compare in the frame."""
    from odebench import studies

    claims = [c for name in studies.names() for c in studies.get(name).claims_with_deviations()]
    claims = [c for c in claims if _concerns(c, _of_studies(runs, c))]
    ok = runs[runs["status"] == "ok"]
    frame = with_curve_metrics(ok, curves, (p.metric for c in claims for p in c.parts))
    return [evaluate(c, _of_studies(frame, c), TRAINING_KEYS) for c in claims]


def _of_studies(runs: pd.DataFrame, claim: Claim) -> pd.DataFrame:
    """The runs of the studies a training claim is about (its ``needs``)."""
    return runs[runs["study"].isin(claim.needs.get("studies", ()))]


def _concerns(claim: Claim, frame: pd.DataFrame) -> bool:
    """Whether `frame` has any record (any status) of what one of the claim's parts is about."""
    return any(not _matching(frame, part.treatment).empty for part in claim.parts)


def findings_table(findings: Sequence[Finding]) -> pd.DataFrame:
    """The findings as a table of text: claim, published figure, measured, deviations, n, verdict."""
    return pd.DataFrame(
        [
            (
                f.claim.sentence,
                ", ".join(f.claim.needs.get("studies", ())) or "this run's gradient cases",
                f"{f.claim.published} ({f.claim.source})",
                f.measured,
                "; ".join(f.claim.deviations) or "none",
                f.n,
                f.verdict,
            )
            for f in findings
        ],
        columns=["claim", "measured on", "published", "measured on this run", "deviations", "n", "verdict"],
    )


def _matching(frame: pd.DataFrame, values: Mapping[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, wanted in values.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        have = frame[column]
        if wanted is None:
            mask &= have.isna()
        elif isinstance(wanted, AtLeast):
            mask &= pd.to_numeric(have, errors="coerce") >= wanted.value
        elif isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
            numbers = pd.to_numeric(have, errors="coerce")
            mask &= np.isclose(numbers, wanted, rtol=1e-9, atol=0.0) & numbers.notna()
        else:
            mask &= have == wanted
    return frame[mask]


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items())


def _effect_label(part: Part) -> str:
    if part.control is None:
        return part.metric.label
    t = "/".join(str(v) for v in part.treatment.values())
    c = "/".join(str(v) for v in part.control.values())
    return f"{t}/{c}" if part.metric.scale == RATIO else f"{t} - {c}"


def _number(value: float, signed: bool) -> str:
    return f"{value:+.3g}" if signed and value != 0 else f"{value:.4g}"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


__all__ = [
    "CONFIDENCE",
    "DIRECTION",
    "HOLDS",
    "INCONCLUSIVE",
    "INSUFFICIENT",
    "MIN_PAIRS",
    "NOT_REPRODUCED",
    "NO_DIFFERENCE",
    "PART",
    "TRAINING_KEYS",
    "UNTESTABLE",
    "Finding",
    "Interval",
    "combine",
    "evaluate",
    "evaluate_part",
    "findings_table",
    "gradient_findings",
    "median_interval",
    "metric_column",
    "training_findings",
    "with_curve_metrics",
]
