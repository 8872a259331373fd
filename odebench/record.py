"""What one measurement is (`Case`) and what it produced (`Record`): frozen, flat, JSON-ready.

A Case's identity (`Case.case_id`) holds exactly what changes its result: an adaptive case has
tolerances and a step budget but no step, a fixed-step case a step but no tolerances, and the
number of timed repeats is a setting of the measurement, not part of what is measured. A Case
built with defaults left open (no size, no tolerances, no step) is completed by
`odebench.cases.resolve` before it runs; the Record always carries the completed Case.

A Record is written once by the harness and only read afterwards: the results store keeps it,
reports and comparisons read it, nothing downstream of it solves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

SCHEMA_VERSION = 2

#: Every status a Record can have. "ok" is the only one with complete measurements;
#: "underflow" is a step size driven below the resolution of the time variable (the solver's
#: controller gave up, typically on a stiff or blowing-up problem), whichever integrator raised it.
STATUSES = ("ok", "error", "nan", "underflow", "max_steps", "timeout", "crashed")

#: atol = rtol * ATOL_RATIO unless a Case says otherwise.
ATOL_RATIO = 1e-2
#: The default step budget of adaptive solvers per output interval.
MAX_STEPS = 20_000

#: Case fields that are settings of the measurement rather than part of what is measured.
NOT_IDENTITY = ("repeats",)


def problem_label(task: str, size: Any) -> str:
    """``task[size]``, or ``task`` when the size is not known (None or NaN)."""
    if size is None or size != size:  # NaN from a DataFrame
        return str(task)
    size = float(size)
    return f"{task}[{int(size) if size.is_integer() else f'{size:g}'}]"


def setting_label(step_size: float | None, rtol: float | None, atol: float | None) -> str:
    """``h=0.01`` for a fixed-step case, ``tol=1e-06`` (plus ``atol`` when it is not
    ``rtol * ATOL_RATIO``) for an adaptive one."""
    if step_size is not None and step_size == step_size:
        return f"h={step_size:g}"
    if rtol is None or rtol != rtol:
        return "tol=?"
    text = f"tol={rtol:g}"
    if atol is not None and atol == atol and not _close(atol, rtol * ATOL_RATIO):
        text += f",atol={atol:g}"
    return text


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b))


@dataclass(frozen=True)
class Case:
    """One measurement: which task, at which size, differentiated how, solved how.

    ``size`` is the task's size knob (None: the task's default). Adaptive solvers use ``rtol``,
    ``atol`` (None: the dtype's defaults, `odebench.solvers.default_tolerances`) and
    ``max_steps``, the step budget per output interval (torchdiffeq's ``max_num_steps``, also
    applied to the adjoint's backward solve). Fixed-step solvers use ``step_size`` (None: the
    task's own step at that size). ``repeats`` is how many timed forward+backward runs follow the
    warm-up; it is not part of the case's identity.
    """

    task: str
    method: str
    solver: str = "dopri5"
    rtol: float | None = None
    atol: float | None = None
    size: int | None = None
    step_size: float | None = None
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    max_steps: int | None = MAX_STEPS
    repeats: int = 3

    KIND = "gradient"

    def identity(self) -> dict[str, Any]:
        """The fields that change the result (everything but the measurement settings)."""
        return {k: v for k, v in asdict(self).items() if k not in NOT_IDENTITY}

    @property
    def case_id(self) -> str:
        """A stable identifier of what is measured (resume skips ids already recorded)."""
        payload = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def label(self) -> str:
        """A readable identity, unique among cases that differ in anything but ``repeats``:
        ``task[size]/method/solver/setting/dtype/device``, then ``seed=`` and ``max_steps=``
        where they are not the defaults."""
        parts = [
            problem_label(self.task, self.size),
            self.method,
            self.solver,
            setting_label(self.step_size, self.rtol, self.atol),
            self.dtype,
            self.device,
        ]
        if self.seed != 0:
            parts.append(f"seed={self.seed}")
        if self.step_size is None and self.max_steps not in (None, MAX_STEPS):
            parts.append(f"max_steps={self.max_steps}")
        return "/".join(parts)


class RecordBase:
    """What every kind of record shares (a gradient `Record`, a training run's, a time ratio's):
    a status from `STATUSES`, a flat dict of its case's fields then its own, and back.

    Subclasses are frozen dataclasses with ``case``, ``case_id``, ``status`` and ``error`` first,
    and name their case type (``CASE_TYPE``) and results-file line type (``LINE``).
    """

    CASE_TYPE: ClassVar[type]
    LINE: ClassVar[str]

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
    def from_dict(cls, row: dict[str, Any]):
        case_names = {f.name for f in fields(cls.CASE_TYPE)}
        case = cls.CASE_TYPE(**{k: v for k, v in row.items() if k in case_names})
        known = {f.name for f in fields(cls)} - {"case"}
        return cls(case=case, **{k: v for k, v in row.items() if k in known})

    @classmethod
    def failed(cls, case, status: str, error: str, **measured: Any):
        """A record of a case that did not complete, keeping whatever was measured."""
        return cls(case=case, case_id=case.case_id, status=status, error=error, **measured)


@dataclass(frozen=True)
class Record(RecordBase):
    """The outcome of one Case. Fields that could not be measured are None.

    Errors are relative 2-norm errors of the flattened gradient against the task's reference
    (``grad_rel_error``), split into the initial state and the parameters, with the cosine
    similarity; ``grad_rel_error_discrete`` is against autograd through the method's own forward
    grid, where that grid is known. ``at_reference_resolution`` is True when the error is not
    at least 10x the reference's own error estimate, so the number says only "below that".
    ``reference_hash`` names the content of the reference the errors were scored against.
    Times are the median and interquartile range over ``repeats`` runs after a warm-up.
    Memory is the peak of forward plus backward above the pre-case baseline. ``wall_time_s`` is
    the whole case and ``stage_times_s`` its stages (build, counted run, reference, discrete-exact
    check, timing, memory run): the harness's own cost. ``warnings`` are
    the distinct warnings raised while the case ran (a worker's stderr is not read by anyone).
    """

    case: Case
    case_id: str
    status: str
    error: str | None = None
    method_backend: str | None = None
    exact_discrete_gradient: bool | None = None
    size_knob: str | None = None
    n_params: int | None = None
    state_size: int | None = None
    grad_rel_error: float | None = None
    grad_rel_error_y0: float | None = None
    grad_rel_error_params: float | None = None
    grad_cosine: float | None = None
    grad_rel_error_discrete: float | None = None
    reference_kind: str | None = None
    reference_error: float | None = None
    reference_hash: str | None = None
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
    stage_times_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    CASE_TYPE = Case
    LINE = "record"


CASE_FIELDS = tuple(f.name for f in fields(Case))
IDENTITY_FIELDS = tuple(name for name in CASE_FIELDS if name not in NOT_IDENTITY)
RECORD_FIELDS = CASE_FIELDS + tuple(f.name for f in fields(Record) if f.name != "case")
