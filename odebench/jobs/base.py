"""What every kind of job shares: the identity of its case, its record's form, and one guard.

A job kind (`odebench.jobs.JobKind`) is a case type, the record it produces and the runner that
turns one into the other. Every case type extends `CaseBase`: how the ODE is solved (solver,
tolerances or step, step budget), in what (dtype, device) and from which seed. Its identity
(`CaseBase.case_id`) holds exactly what changes its result: an adaptive case has tolerances and a
step budget but no step, a fixed-step case a step but no tolerances (`CaseBase.with_setting`),
and settings of the measurement (timed repeats, rounds, check intervals) are not part of it.

Every record type extends `RecordBase` (a status from `STATUSES`, flat dict form), and every
runner runs its work inside `run_job`: resolve the case, catch warnings, classify a failure into
a status, time the whole job. Nothing downstream of a record solves.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

from odebench.statuses import STATUSES

SCHEMA_VERSION = 2


#: atol = rtol * ATOL_RATIO unless a gradient case says otherwise.
ATOL_RATIO = 1e-2
#: The default step budget of adaptive solvers per output interval.
MAX_STEPS = 20_000
#: The counts every kind of job records per phase (`odebench.measure.CountedField`).
COUNTS = (
    "nfe_forward",
    "nfe_backward",
    "vjp_backward",
    "steps_accepted",
    "steps_rejected",
    "steps_accepted_backward",
    "steps_rejected_backward",
)


def counts_of(counted) -> dict[str, int]:
    """The `COUNTS` of a `odebench.measure.CountedField` so far, by record field."""
    forward, backward = counted.counts["forward"], counted.counts["backward"]
    return {
        "nfe_forward": forward.nfe,
        "nfe_backward": backward.nfe,
        "vjp_backward": backward.vjp,
        "steps_accepted": forward.accepted,
        "steps_rejected": forward.rejected,
        "steps_accepted_backward": backward.accepted,
        "steps_rejected_backward": backward.rejected,
    }


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


@dataclass(frozen=True, kw_only=True)
class CaseBase:
    """How a job's ODE is solved, in what, from which seed: the fields every case type shares.

    ``solver`` None is the subject's own (a training study's published solver). Adaptive solvers
    use ``rtol``, ``atol`` and ``max_steps`` (the step budget per output interval, torchdiffeq's
    ``max_num_steps``); fixed-step solvers use ``step_size``.
    """

    solver: str | None = "dopri5"
    rtol: float | None = None
    atol: float | None = None
    step_size: float | None = None
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    max_steps: int | None = MAX_STEPS

    #: The job kind's name.
    KIND: ClassVar[str]
    #: Fields that are settings of the measurement, not part of its identity.
    SETTINGS: ClassVar[tuple[str, ...]] = ()
    #: Fields that cannot be negative (`check_fields`).
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("rtol", "atol", "step_size", "max_steps")
    #: Whether the kind's name enters the id (gradient cases predate the other kinds: their ids,
    #: which committed baselines join on, have none).
    TAGGED_ID: ClassVar[bool] = True
    #: How a grid (`odebench.suites.Grid`) makes cases of this kind: the grid field that lists
    #: its subjects (tasks or studies), whether each method is a case of its own, and the
    #: solvers a grid that names none spans (None: each subject's own).
    SUBJECTS: ClassVar[str] = "tasks"
    ONE_CASE_PER_METHOD: ClassVar[bool] = True
    DEFAULT_SOLVERS: ClassVar[tuple[str | None, ...]] = ("dopri5",)

    @classmethod
    def default_solver(cls, subject: str) -> str:
        """The solver of a grid point that names none."""
        return "dopri5"

    @classmethod
    def extra_axis(cls, grid, subject: str) -> tuple:
        """The values of the kind's own grid axis for one subject (a task's sizes)."""
        from odebench import tasks

        return grid.sizes or tasks.get(subject).sizes

    @classmethod
    def from_point(cls, point, grid, settings, repeats: int):
        """The resolved case of one grid point (`odebench.suites.Point`)."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """The fields that change the result (everything but the measurement settings)."""
        return {k: v for k, v in asdict(self).items() if k not in self.SETTINGS}

    @property
    def case_id(self) -> str:
        """A stable identifier of what is measured (resume skips ids already recorded)."""
        tag = {"kind": self.KIND} if self.TAGGED_ID else {}
        payload = json.dumps({**tag, **self.identity()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def setting(self) -> str:
        """``h=..`` or ``tol=..`` (`setting_label`)."""
        return setting_label(self.step_size, self.rtol, self.atol)

    def _label(self, head: list[str], tail: list[str]) -> str:
        """``head/solver/setting/dtype/device/tail``, then ``seed=`` where it is not 0."""
        parts = [*head, str(self.solver), self.setting(), self.dtype, self.device, *tail]
        return "/".join(parts + ([f"seed={self.seed}"] if self.seed != 0 else []))

    def with_setting(
        self,
        adaptive: bool,
        tolerances: Callable[[float | None, float | None], tuple[float, float]],
        step: Callable[[], float],
        **resolved: Any,
    ):
        """This case resolved: tolerances (completed by `tolerances` from what the case gives) and
        a step budget for an adaptive solver, or a step (`step()` when none is given) for a fixed
        one, never both; `resolved` sets further fields the caller completed."""
        if adaptive:
            rtol, atol = tolerances(self.rtol, self.atol)
            budget = MAX_STEPS if self.max_steps is None else self.max_steps
            return replace(self, rtol=rtol, atol=atol, step_size=None, max_steps=budget, **resolved)
        size = self.step_size if self.step_size is not None else step()
        return replace(self, rtol=None, atol=None, step_size=size, max_steps=None, **resolved)

    def solver_options(self, adaptive_options: Mapping[str, Any] = ()) -> dict[str, Any]:
        """torchdiffeq-style options of a resolved case: its step budget (after any published
        `adaptive_options`, such as a first step or an error norm) or its step."""
        if self.step_size is None:
            return {**dict(adaptive_options), "max_num_steps": self.max_steps}
        return {"step_size": self.step_size}

    def methods_used(self) -> tuple[str, ...]:
        """The gradient methods the case runs."""
        return (self.method,)  # type: ignore[attr-defined]

    def unsupported(self) -> str | None:
        """Why a method of the case cannot use its solver, or None."""
        from odebench import methods

        for name in self.methods_used():
            method = methods.get(name)
            if not method.supports(self.solver):
                valid = ", ".join(method.solvers())
                return f"{name} does not support solver {self.solver} (it supports: {valid})"
        return None

    def infeasible(self) -> str | None:
        """Why the resolved case cannot run at all (a method without its solver, a tolerance its
        dtype cannot meet), so a suite leaves it out with the reason instead of recording it."""
        from odebench import solvers
        from odebench.jobs.gradient import torch_dtype

        if self.rtol is not None:
            return self.unsupported() or solvers.tolerance_problem(self.rtol, torch_dtype(self.dtype))
        return self.unsupported()


#: Integers fit the int64 columns a results frame reads them into.
INT64 = 2**63


def check_fields(obj: Any) -> None:
    """Refuse (one line, `ValueError`) a field of a case or record whose value does not fit its
    annotation (an ``int`` field holding a float, a string where a number belongs, an integer
    beyond int64) or its range (the class's ``NON_NEGATIVE`` fields below 0)."""
    for name, options, annotation, floored in _schema(type(obj)):
        value = getattr(obj, name)
        if not any(_fits(value, option) for option in options):
            raise ValueError(f"{name} is {value!r}, not {annotation}")
        if floored and _number(value) and value < 0:
            raise ValueError(f"{name} is {value!r}, below 0")


@functools.cache
def _schema(cls: type) -> tuple[tuple[str, tuple[str, ...], str, bool], ...]:
    """Per field of a case or record class (but ``case``): its name, the types its annotation
    allows, the annotation, and whether it must not be negative."""
    floor = getattr(cls, "NON_NEGATIVE", ())
    out = []
    for f in fields(cls):
        if f.name != "case":
            options = tuple(o.strip() for o in re.sub(r"\[.*\]", "", str(f.type)).split("|"))
            out.append((f.name, options, str(f.type), f.name in floor))
    return tuple(out)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fits(value: Any, annotation: str) -> bool:
    if annotation == "None":
        return value is None
    if annotation == "int":
        return _number(value) and isinstance(value, int) and -INT64 <= value < INT64
    if annotation == "float":
        return _number(value) and (isinstance(value, float) or -INT64 <= value < INT64)
    if annotation == "str":
        return isinstance(value, str)
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "dict":
        return isinstance(value, dict)
    if annotation in ("list", "tuple"):
        return isinstance(value, (list, tuple))
    return True  # Any, and annotations this check does not read


class RecordBase:
    """What every kind of record shares: a status from `STATUSES`, a flat dict of its case's
    fields then its own, and back.

    Subclasses are frozen dataclasses with ``case``, ``case_id``, ``status`` and ``error`` first
    (and ``wall_time_s`` and ``warnings``, which `run_job` fills), and name their case type
    (``CASE_TYPE``) and results-file line type (``LINE``).
    """

    CASE_TYPE: ClassVar[type]
    LINE: ClassVar[str]
    #: Measurements that cannot be negative (`check_fields`).
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("wall_time_s",)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; valid: {', '.join(STATUSES)}")

    def validate(self) -> None:
        """The one schema of a results line, for every kind: each field of the case and the
        record of its annotated type and range, and the ``case_id`` the case's identity gives
        (`ValueError` naming what is wrong)."""
        check_fields(self.case)
        check_fields(self)
        if self.case_id != self.case.case_id:
            raise ValueError(f"case_id {self.case_id!r} is not its fields' ({self.case.case_id})")

    def to_dict(self) -> dict[str, Any]:
        """Flat dict: the case's fields first, then the measurements."""
        row = asdict(self.case)
        for f in fields(self):
            if f.name != "case":
                row[f.name] = getattr(self, f.name)
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]):
        """The record of a flat dict (`to_dict`), validated (`validate`): `ValueError` or
        `TypeError` for one that is not a valid record."""
        case_names = {f.name for f in fields(cls.CASE_TYPE)}
        case = cls.CASE_TYPE(**{k: v for k, v in row.items() if k in case_names})
        known = {f.name for f in fields(cls)} - {"case"}
        record = cls(case=case, **{k: v for k, v in row.items() if k in known})
        record.validate()
        return record

    @classmethod
    def failed(cls, case, status: str, error: str, **measured: Any):
        """A record of a case that did not complete, keeping whatever was measured."""
        return cls(case=case, case_id=case.case_id, status=status, error=error, **measured)


# ------------------------------------------------------------------------------ the guard


class NonFiniteGradient(FloatingPointError):
    """The loss or the gradient contains NaN or Inf."""


def classify(exc: BaseException) -> str:
    """The status of an exception raised while running a job.

    torchdiffeq asserts and the native integrator raises with the same messages, so a failure
    gets the same status whichever integrator met it (diffrax's step budget arrives as
    `MaxStepsExceeded`, `odebench.jax.program`).
    """
    from odebench.errors import MaxStepsExceeded

    message = str(exc)
    if isinstance(exc, MaxStepsExceeded) or "max_num_steps exceeded" in message:
        return "max_steps"
    if isinstance(exc, MemoryError) or any(s in message for s in _OUT_OF_MEMORY):
        return "memory"
    if "underflow in dt" in message:
        return "underflow"
    if isinstance(exc, FloatingPointError) or "non-finite values" in message:
        return "nan"
    return "error"


#: How an allocation beyond the memory limit reads (torch's CPU and CUDA allocators, the OS).
_OUT_OF_MEMORY = ("can't allocate memory", "Cannot allocate memory", "out of memory", "RESOURCE_EXHAUSTED")


def check_device(device: str) -> None:
    """Refuse a device this machine does not have (one line)."""
    import torch

    from odebench.errors import InvalidInputError

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} requested but CUDA is not available; valid: cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise InvalidInputError(f"unknown device {device!r}; valid: cpu, cuda")


def run_job(case: CaseBase, record_type: type, resolve: Callable, body: Callable[[Any, dict], None]):
    """Run one job; never raises for a failing one.

    Resolves `case` (a refusal is an ``error`` record), then calls ``body(case, measured)``,
    which fills `measured` with the record's fields as it goes, under a capture of every warning
    (each distinct one kept in the record, so it reaches the user also from a worker) and
    torchdiffeq's fixed-step callback warning silenced. An exception becomes the record's status
    (`classify`), with whatever was measured before it; ``wall_time_s`` is the whole job.
    """
    from odebench.errors import OdebenchError, describe
    from odebench.methods.base import quiet_fixed_step_callbacks

    started = time.perf_counter()
    try:
        case = resolve(case)
    except OdebenchError as exc:
        return record_type.failed(case, "error", describe(exc))
    measured: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        for category in (UserWarning, RuntimeWarning):  # every time, not once per process
            warnings.simplefilter("always", category)
        try:
            # The adjoint's backward solve re-checks callbacks outside the method's own call.
            with quiet_fixed_step_callbacks():
                body(case, measured)
            status, error = "ok", None
        except Exception as exc:  # a failing job is a result, not a crash of the sweep
            status, error = classify(exc), describe(exc)
    measured["warnings"] = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    measured["wall_time_s"] = time.perf_counter() - started
    return record_type(case=case, case_id=case.case_id, status=status, error=error, **measured)


class Stages:
    """Wall seconds per stage of a job, kept in its record (``stage_times_s``) so the harness's
    own cost can be read off any results file."""

    def __init__(self, measured: dict[str, Any]) -> None:
        self.times: dict[str, float] = {}
        measured["stage_times_s"] = self.times

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = time.perf_counter() - started


__all__ = [
    "ATOL_RATIO",
    "MAX_STEPS",
    "SCHEMA_VERSION",
    "STATUSES",
    "CaseBase",
    "NonFiniteGradient",
    "RecordBase",
    "Stages",
    "check_device",
    "classify",
    "counts_of",
    "problem_label",
    "run_job",
    "setting_label",
]
