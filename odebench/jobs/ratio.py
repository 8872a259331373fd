"""Same-run time ratios: `RatioCase` -> `run_ratios` -> `RatioRecord`.

A ratio case names one problem solved one way and the methods to time against a baseline on it
(naive by default, or a peer implementation of the same method). `run_ratios` builds every
method's solve on one shared problem as `odebench.jobs.gradient.run_case` would, then times them
interleaved round by round in one process (`odebench.measure.interleaved`): the steady
measurement that time-regression checks (the CI gate through `odebench compare`, asv's ratio
benchmarks, the perf tests) judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from odebench.errors import describe
from odebench.jobs.base import (
    ATOL_RATIO,
    CaseBase,
    RecordBase,
    classify,
    problem_label,
    run_job,
)
from odebench.jobs.gradient import Case, build_case
from odebench.jobs.gradient import resolve as resolve_case
from odebench.measure.interleaved import RatioStats, interleaved_ratios
from odebench.measure.timing import synchronizer

#: Rounds of a ratio case unless it says otherwise (see docs/benchmarking.md for the choice).
ROUNDS = 15
#: Rounds a ratio case with a time budget runs at least: fewer leave no interquartile range.
MIN_ROUNDS = 5


@dataclass(frozen=True)
class RatioCase(CaseBase):
    """Time `methods` against `baseline` on one problem, interleaved for `rounds` rounds (or,
    with a ``budget_s``, until the timed calls passed that many seconds, after at least
    `MIN_ROUNDS`).

    The problem fields mean what they mean in `odebench.jobs.gradient.Case`; ``rounds`` and
    ``budget_s`` are settings of the measurement, not part of the identity.
    """

    task: str
    methods: tuple[str, ...]
    baseline: str = "naive"
    size: int | None = None
    rounds: int = ROUNDS
    budget_s: float | None = None

    KIND: ClassVar[str] = "ratio"
    SETTINGS: ClassVar[tuple[str, ...]] = ("rounds", "budget_s")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = (*CaseBase.NON_NEGATIVE, "size", "rounds", "budget_s")
    ONE_CASE_PER_METHOD: ClassVar[bool] = False

    @classmethod
    def from_point(cls, point, grid, settings, repeats: int) -> RatioCase:
        """One case per point: the grid's methods that support the point's solver, timed against
        the grid's baseline."""
        from odebench import methods

        contenders = tuple(m for m in point.methods if methods.get(m).supports(point.solver))
        case = cls(
            task=point.subject,
            methods=contenders,
            baseline=grid.baseline,
            size=point.extra,
            max_steps=settings.max_steps,
            rounds=grid.rounds,
            **point.solve_fields(),
        )
        return resolve(case, atol_ratio=settings.atol_ratio)

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))

    def label(self, method: str | None = None) -> str:
        """``task[size]/m1+m2 vs baseline/solver/setting/dtype/device`` (with one `method`: its
        ratio's label, ``task[size]/method vs baseline/...``)."""
        return self._label(
            [problem_label(self.task, self.size), f"{method or '+'.join(self.methods)} vs {self.baseline}"],
            [],
        )

    def methods_used(self) -> tuple[str, ...]:
        return (*self.methods, self.baseline)

    def case_of(self, method: str) -> Case:
        """The gradient case of one of its methods (same problem, same solve)."""
        shared = {f.name: getattr(self, f.name) for f in fields(Case) if hasattr(self, f.name)}
        return Case(**{**shared, "method": method})


def case_of_row(row: dict[str, Any]) -> RatioCase:
    """The case of a row of a ratio frame (`frame_rows`: ``methods`` joined by ``+``)."""
    values = {f.name: row.get(f.name) for f in fields(RatioCase)}
    values["methods"] = tuple(str(values["methods"] or "").split("+"))
    return RatioCase(**{k: v for k, v in values.items() if v is not None})


def resolve(case: RatioCase, *, atol_ratio: float = ATOL_RATIO) -> RatioCase:
    """`case` with size and tolerances or step made explicit, as a gradient case resolves."""
    done = resolve_case(case.case_of(case.baseline), atol_ratio=atol_ratio)
    keep = ("size", "rtol", "atol", "step_size", "max_steps")
    return replace(case, **{name: getattr(done, name) for name in keep})


@dataclass(frozen=True)
class RatioRecord(RecordBase):
    """Per method: the median over rounds of its time over the baseline's, with quartiles, and
    each round's ratio (``round_ratios``, so that any two methods can be compared round by round:
    their ratio in a round is the quotient of their ratios to the baseline). A method that fails
    its warm-up is left out with its status and message (``failed_methods``); the case fails
    only when the baseline does."""

    case: RatioCase
    case_id: str
    status: str
    error: str | None = None
    ratios: dict[str, float] = field(default_factory=dict)
    ratios_q25: dict[str, float] = field(default_factory=dict)
    ratios_q75: dict[str, float] = field(default_factory=dict)
    round_ratios: dict[str, list] = field(default_factory=dict)
    failed_methods: dict[str, str] = field(default_factory=dict)
    baseline_time_s: float | None = None
    wall_time_s: float | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    CASE_TYPE = RatioCase
    LINE = "ratio"
    NON_NEGATIVE = ("baseline_time_s", "wall_time_s")


#: The record fields that hold one value per method, spread over a frame's rows.
PER_METHOD = ("ratios", "ratios_q25", "ratios_q75", "round_ratios")
#: A ratio frame's columns: the case's and record's fields, then one method's ratio and quartiles.
FRAME_COLUMNS = (
    *(f.name for f in fields(RatioCase)),
    *(f.name for f in fields(RatioRecord) if f.name != "case" and f.name not in PER_METHOD),
    "method",
    "ratio",
    "ratio_q25",
    "ratio_q75",
    "ratio_rounds",
)


def frame_rows(line: dict[str, Any]) -> list[dict[str, Any]]:
    """One frame row per method of a ratio line (``methods`` joined by ``+``): a method left out
    (``failed_methods``) and every method of a failed case still give a row, without a ratio, so
    a comparison meets them on their key."""
    row = {k: v for k, v in line.items() if k not in PER_METHOD}
    names = [*(line.get("ratios") or {}), *(line.get("failed_methods") or {})] or list(
        line.get("methods") or ()
    )
    row["methods"] = "+".join(line.get("methods") or ())
    return [
        {
            **row,
            "method": method,
            "ratio": (line.get("ratios") or {}).get(method),
            "ratio_q25": (line.get("ratios_q25") or {}).get(method),
            "ratio_q75": (line.get("ratios_q75") or {}).get(method),
            "ratio_rounds": (line.get("round_ratios") or {}).get(method),
        }
        for method in names
    ]


def run_ratios(case: RatioCase, *, cache_dir=None) -> RatioRecord:
    """Time the case's methods against its baseline; never raises for a failing case (a failing
    baseline fails the case, with its status; another failing method is left out of the timing)."""
    return run_job(case, RatioRecord, resolve, _time)


def _time(case: RatioCase, measured: dict[str, Any]) -> None:
    first = build_case(case.case_of(case.baseline))
    runs = {case.baseline: first.forward_backward}
    runs[case.baseline]()  # the baseline failing fails the case, with its status
    failed: dict[str, str] = {}
    for method in dict.fromkeys(case.methods):
        if method == case.baseline:
            continue
        try:
            run = build_case(case.case_of(method), first.problem).forward_backward
            run()  # a method that cannot run is left out, and the others are timed
        except Exception as exc:
            failed[method] = f"{classify(exc)}: {describe(exc)}"
            continue
        runs[method] = run
    stats, base = interleaved_ratios(
        runs,
        case.baseline,
        rounds=case.rounds,
        warmup=0,  # each method ran once above
        budget_s=case.budget_s,
        min_rounds=MIN_ROUNDS,
        sync=synchronizer(case.device),
    )
    rounds = {m: s.samples for m, s in stats.items() if m != case.baseline}
    measured.update(ratio_fields(rounds), failed_methods=failed, baseline_time_s=base)


def ratio_fields(rounds: Mapping[str, Sequence[float]]) -> dict[str, dict]:
    """A ratio record's per-method fields (median, quartiles, the rounds themselves) from each
    method's per-round ratios to the baseline."""
    stats = {m: RatioStats(tuple(r)) for m, r in rounds.items()}
    return dict(
        ratios={m: s.median for m, s in stats.items()},
        ratios_q25={m: s.q25 for m, s in stats.items()},
        ratios_q75={m: s.q75 for m, s in stats.items()},
        round_ratios={m: list(s.samples) for m, s in stats.items()},
    )


__all__ = ["MIN_ROUNDS", "ROUNDS", "RatioCase", "RatioRecord", "ratio_fields", "resolve", "run_ratios"]
