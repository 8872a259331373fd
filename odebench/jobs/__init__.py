"""The kinds of work a sweep runs, each a case type, the record it produces and its runner.

* ``gradient`` (`odebench.jobs.gradient`): `Case` -> `run_case` -> `Record`, one gradient
  measured against its reference;
* ``training`` (`odebench.jobs.training`): `TrainingCase` -> `run_training` -> `TrainingRecord`,
  one model trained with one method;
* ``ratio`` (`odebench.jobs.ratio`): `RatioCase` -> `run_ratios` -> `RatioRecord`, methods timed
  against a baseline, interleaved in one process.

`KINDS` holds each as a `JobKind`: the worker, the executors, the sweep and the results store
dispatch on it, so every kind gets the same isolation, timeouts, crash records, resume and
reader. The shared parts (identity, labels, statuses, the guard around a job) are in
`odebench.jobs.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from odebench.jobs import gradient, ratio, training
from odebench.jobs.base import ATOL_RATIO, MAX_STEPS, SCHEMA_VERSION, STATUSES, CaseBase, RecordBase
from odebench.jobs.gradient import Case, Record, run_case
from odebench.jobs.ratio import RatioCase, RatioRecord, run_ratios
from odebench.jobs.training import TrainingCase, TrainingRecord, run_training


@dataclass(frozen=True)
class JobKind:
    """One kind of job: its case and record types (the record names its results-file line), how
    a case is completed and run, whether the runner streams progress points (a curve), and the
    rows and columns its records contribute to a results frame (`odebench.results.read`)."""

    name: str
    case_type: type
    record_type: type
    runner: Callable[..., Any]
    resolver: Callable[[Any], Any]
    #: The frame's leading columns, in order.
    columns: tuple[str, ...]
    #: The runner takes ``progress`` and reports points as it goes (a training curve).
    streams: bool = False
    #: Keys of a line that are not columns (read elsewhere, or spread over rows by `explode`).
    folded: tuple[str, ...] = ()
    #: The frame rows of one line (default: the line itself, one row).
    explode: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
    #: Dtypes of columns that are not fields of the case or the record.
    extra_dtypes: tuple[tuple[str, str], ...] = ()

    def frame_rows(self, line: dict[str, Any]) -> list[dict[str, Any]]:
        """The frame rows of one results-file line of this kind."""
        if self.explode is not None:
            return self.explode(line)
        return [{k: v for k, v in line.items() if k not in self.folded}]

    def dtypes(self) -> dict[str, str]:
        """Column dtype of each of `columns`, from the case's and the record's annotations."""
        annotations = {f.name: str(f.type) for f in fields(self.case_type)}
        annotations.update({f.name: str(f.type) for f in fields(self.record_type) if f.name != "case"})
        kinds = {"int": "Int64", "float": "float64", "bool": "boolean", "str": "object"}
        out = dict(self.extra_dtypes)
        for name in self.columns:
            if name in annotations:
                base = annotations[name].replace(" ", "").removesuffix("|None").removeprefix("None|")
                out[name] = kinds.get(base, "object")
        return out

    @property
    def line(self) -> str:
        """The type of its lines in a results file."""
        return self.record_type.LINE

    def case(self, fields: dict[str, Any]):
        return self.case_type(**fields)

    def record(self, row: dict[str, Any]):
        return self.record_type.from_dict(row)

    def failed(self, case, status: str, error: str, **measured):
        return self.record_type.failed(case, status, error, **measured)

    def run(self, case, *, cache_dir=None, progress: Callable[[dict], None] | None = None):
        """The case's record; `progress` receives each streamed point of a streaming kind."""
        if self.streams:
            return self.runner(case, progress=progress)
        return self.runner(case, cache_dir=cache_dir)

    def resolve(self, case):
        return self.resolver(case)


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("gradient", Case, Record, run_case, gradient.resolve, columns=gradient.RECORD_FIELDS),
        JobKind(
            "training",
            TrainingCase,
            TrainingRecord,
            run_training,
            training.resolve,
            columns=training.TRAINING_FIELDS,
            streams=True,
            folded=("curve",),
        ),
        JobKind(
            "ratio",
            RatioCase,
            RatioRecord,
            run_ratios,
            ratio.resolve,
            columns=ratio.FRAME_COLUMNS,
            folded=ratio.PER_METHOD,
            explode=ratio.frame_rows,
            extra_dtypes=(
                ("method", "object"),
                ("ratio", "float64"),
                ("ratio_q25", "float64"),
                ("ratio_q75", "float64"),
            ),
        ),
    )
}
#: The kind of each results-file line type that holds records.
BY_LINE: dict[str, JobKind] = {kind.line: kind for kind in KINDS.values()}


def kind_of(case) -> JobKind:
    """The kind of a case object (its class's ``KIND``)."""
    return KINDS[case.KIND]


__all__ = [
    "ATOL_RATIO",
    "BY_LINE",
    "KINDS",
    "MAX_STEPS",
    "SCHEMA_VERSION",
    "STATUSES",
    "Case",
    "CaseBase",
    "JobKind",
    "RatioCase",
    "RatioRecord",
    "Record",
    "RecordBase",
    "TrainingCase",
    "TrainingRecord",
    "kind_of",
    "run_case",
    "run_ratios",
    "run_training",
]
