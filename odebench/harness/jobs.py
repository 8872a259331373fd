"""The kinds of work a sweep runs: a gradient case, a training run or a same-run time ratio,
behind one interface.

A job kind names its case type, the record it produces (and that record's line in a results
file), the function that runs it, and how a case is completed (`resolve`). The worker, the
sweep and the results store dispatch on the kind, so both kinds get the same isolation,
timeouts, crash records and resume.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """One kind of job; the callables are named ``module:attribute`` and imported on first use."""

    name: str
    case_type: str
    record_type: str
    runner: str
    resolver: str
    #: The runner takes ``progress`` and reports points as it goes (a training curve).
    streams: bool = False

    def case(self, fields: dict[str, Any]):
        return _load(self.case_type)(**fields)

    def record(self, row: dict[str, Any]):
        return _load(self.record_type).from_dict(row)

    def failed(self, case, status: str, error: str, **measured):
        return _load(self.record_type).failed(case, status, error, **measured)

    def run(self, case, *, cache_dir=None, progress: Callable[[dict], None] | None = None):
        """The case's record; `progress` receives each streamed point of a streaming kind."""
        if self.streams:
            return _load(self.runner)(case, progress=progress)
        return _load(self.runner)(case, cache_dir=cache_dir)

    def resolve(self, case):
        return _load(self.resolver)(case)


KINDS = {
    "gradient": Kind(
        "gradient",
        case_type="odebench.record:Case",
        record_type="odebench.record:Record",
        runner="odebench.harness.run:run_case",
        resolver="odebench.cases:resolve",
    ),
    "training": Kind(
        "training",
        case_type="odebench.training.case:TrainingCase",
        record_type="odebench.training.case:TrainingRecord",
        runner="odebench.training.run:run_training",
        resolver="odebench.training.case:resolve",
        streams=True,
    ),
    "ratio": Kind(
        "ratio",
        case_type="odebench.harness.ratios:RatioCase",
        record_type="odebench.harness.ratios:RatioRecord",
        runner="odebench.harness.ratios:run_ratios",
        resolver="odebench.harness.ratios:resolve",
    ),
}


def kind_of(case) -> Kind:
    """The kind of a case object (its class's ``KIND``)."""
    return KINDS[case.KIND]


def _load(name: str):
    module, attribute = name.split(":")
    return getattr(importlib.import_module(module), attribute)


__all__ = ["KINDS", "Kind", "kind_of"]
