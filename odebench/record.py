"""What one measurement is (`Case`) and what it produced (`Record`): frozen, flat, JSON-ready.

A Record is written once by the harness and only read afterwards: the results store keeps it,
reports and comparisons read it, nothing downstream of it solves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1

#: Every status a Record can have. "ok" is the only one with measurements.
STATUSES = ("ok", "error", "nan", "max_steps", "timeout", "crashed")


@dataclass(frozen=True)
class Case:
    """One measurement: which task, at which size, differentiated how, solved how.

    ``size`` is the task's size knob (None: the task's default). ``step_size`` applies to
    fixed-step solvers only. ``max_steps`` is the adaptive solvers' step budget per output
    interval (torchdiffeq's ``max_num_steps``, also applied to the adjoint's backward solve).
    ``repeats`` is how many timed forward+backward runs follow the warm-up.
    """

    task: str
    method: str
    solver: str = "dopri5"
    rtol: float = 1e-6
    atol: float = 1e-8
    size: int | None = None
    step_size: float | None = None
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    max_steps: int = 20_000
    repeats: int = 3

    @property
    def case_id(self) -> str:
        """A stable identifier of the case (resume skips ids already recorded)."""
        payload = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def label(self) -> str:
        size = "" if self.size is None else f"[{self.size}]"
        tol = f"h={self.step_size:g}" if self.step_size is not None else f"tol={self.rtol:g}"
        return f"{self.task}{size}/{self.method}/{self.solver}/{tol}/{self.dtype}/{self.device}"


@dataclass(frozen=True)
class Record:
    """The outcome of one Case. Fields that could not be measured are None.

    Errors are relative 2-norm errors of the flattened gradient against the task's reference
    (``grad_rel_error``), split into the initial state and the parameters, with the cosine
    similarity; ``grad_rel_error_discrete`` is against autograd through the method's own forward
    grid, where that grid is known. ``at_reference_resolution`` is True when the error is not
    at least 10x the reference's own error estimate, so the number says only "below that".
    Times are the median and interquartile range over ``repeats`` runs after a warm-up.
    Memory is the peak of forward plus backward above the pre-case baseline.
    """

    case: Case
    case_id: str
    status: str
    error: str | None = None
    method_backend: str | None = None
    exact_discrete_gradient: bool | None = None
    n_params: int | None = None
    state_size: int | None = None
    grad_rel_error: float | None = None
    grad_rel_error_y0: float | None = None
    grad_rel_error_params: float | None = None
    grad_cosine: float | None = None
    grad_rel_error_discrete: float | None = None
    reference_kind: str | None = None
    reference_error: float | None = None
    at_reference_resolution: bool | None = None
    nfe_forward: int | None = None
    nfe_backward: int | None = None
    vjp_backward: int | None = None
    steps_accepted: int | None = None
    steps_rejected: int | None = None
    steps_accepted_backward: int | None = None
    steps_rejected_backward: int | None = None
    time_forward_s: float | None = None
    time_forward_iqr_s: float | None = None
    time_backward_s: float | None = None
    time_backward_iqr_s: float | None = None
    peak_memory_bytes: int | None = None
    memory_backend: str | None = None
    wall_time_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; valid: {', '.join(STATUSES)}")

    def to_dict(self) -> dict[str, Any]:
        """Flat dict: the case's fields first, then the measurements."""
        row = asdict(self.case)
        for f in fields(self):
            if f.name != "case":
                row[f.name] = getattr(self, f.name)
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Record:
        case_names = {f.name for f in fields(Case)}
        case = Case(**{k: v for k, v in row.items() if k in case_names})
        known = {f.name for f in fields(cls)} - {"case"}
        return cls(case=case, **{k: v for k, v in row.items() if k in known})

    @classmethod
    def failed(cls, case: Case, status: str, error: str, **measured: Any) -> Record:
        """A Record for a case that did not complete, keeping whatever was measured."""
        return cls(case=case, case_id=case.case_id, status=status, error=error, **measured)


CASE_FIELDS = tuple(f.name for f in fields(Case))
RECORD_FIELDS = CASE_FIELDS + tuple(f.name for f in fields(Record) if f.name != "case")
