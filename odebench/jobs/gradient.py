"""Gradient cases: `Case` -> `run_case` -> `Record`, the one place a gradient is measured.

Order of work for one case, each stage on a fresh graph:

1. build the task's problem; a counted run: forward solve and loss, then the gradient, with
   the field wrapped in `CountedField` (NFE, VJPs and steps per phase) and the peak memory of
   the forward plus backward measured (`odebench.measure.memory`: the allocator backend slows
   the run by a few percent and counts tensor bytes exactly); it is also the warm-up of the
   timed runs;
2. the reference gradient of the task (cached on disk) and the errors against it;
3. the discrete-exact gradient on the same grid, where the method's grid is torchdiffeq's;
4. timing: forward and backward separately, median and IQR over ``repeats`` runs.

Failures become a Record with a status; whatever was measured before the failure is kept. A
Record is written once by the harness and only read afterwards: reports and comparisons read
it, nothing downstream of it solves.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch

from odebench import methods, references, solvers, tasks
from odebench.errors import InvalidInputError
from odebench.jobs.base import (
    ATOL_RATIO,
    COUNTS,
    MAX_STEPS,
    CaseBase,
    NonFiniteGradient,
    RecordBase,
    Stages,
    check_device,
    counts_of,
    problem_label,
    run_job,
)
from odebench.measure import CountedField, time_forward_backward, track_peak
from odebench.measure.memory import XLA, PeakReading
from odebench.methods.stepwise import trajectory_of
from odebench.solvers.runge_kutta import replay


@dataclass(frozen=True)
class Case(CaseBase):
    """One gradient measurement: which task, at which size, differentiated how, solved how.

    ``size`` is the task's size knob (None: the task's default). Adaptive solvers use ``rtol``,
    ``atol`` (None: the dtype's defaults, `odebench.solvers.default_tolerances`) and
    ``max_steps``, the step budget per output interval (torchdiffeq's ``max_num_steps``, also
    applied to the adjoint's backward solve). Fixed-step solvers use ``step_size`` (None: the
    task's own step at that size). ``repeats`` is how many timed forward+backward runs follow the
    counted run; ``memory`` names the backend that measures peak memory (None: the device's
    default, the allocator's exact tensor bytes; `odebench.measure.memory`). Neither is part of
    the case's identity.
    """

    task: str
    method: str
    size: int | None = None
    repeats: int = 3
    memory: str | None = None

    KIND: ClassVar[str] = "gradient"
    SETTINGS: ClassVar[tuple[str, ...]] = ("repeats", "memory")
    TAGGED_ID: ClassVar[bool] = False
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = (*CaseBase.NON_NEGATIVE, "size", "repeats")

    @classmethod
    def from_point(cls, point, grid, settings, repeats: int) -> Case:
        case = cls(
            task=point.subject,
            method=point.methods[0],
            size=point.extra,
            max_steps=settings.max_steps,
            repeats=repeats,
            memory=settings.memory,
            **point.solve_fields(),
        )
        return resolve(case, atol_ratio=settings.atol_ratio)

    def label(self) -> str:
        """A readable identity, unique among cases that differ in anything but ``repeats``:
        ``task[size]/method/solver/setting/dtype/device``, then ``seed=`` and ``max_steps=``
        where they are not the defaults."""
        label = self._label([problem_label(self.task, self.size), self.method], [])
        if self.step_size is None and self.max_steps not in (None, MAX_STEPS):
            label += f"/max_steps={self.max_steps}"
        return label


@dataclass(frozen=True)
class Record(RecordBase):
    """The outcome of one Case. Fields that could not be measured are None.

    Errors are relative 2-norm errors of the flattened gradient against the task's reference
    (``grad_rel_error``), split into the initial state and the parameters, with the cosine
    similarity; ``grad_rel_error_discrete`` is against autograd through the method's own forward
    grid, where that grid is known. ``at_reference_resolution`` is True when the error is not
    at least 10x the reference's own error estimate, so the number says only "below that".
    ``reference_hash`` names the content of the reference the errors were scored against.
    Times are the median and interquartile range over ``repeats`` runs after the counted run.
    Memory is the peak of forward plus backward above the pre-case baseline, in the counted run,
    by ``memory_backend`` (``allocator``: exact tensor bytes; ``xla``: a JAX case's compiled
    programs, `odebench.jax.program`). ``compile_time_s`` is a JAX case's ahead-of-time
    compilation of its forward and backward programs, or a compiling torch method's first
    forward and backward (`Capabilities.compiles`); None otherwise. ``framework`` is where the
    method's solve runs (torch or jax). ``wall_time_s`` is the whole case
    and ``stage_times_s`` its stages (build, counted run, reference, discrete-exact check,
    timing): the harness's own cost. ``warnings`` are
    the distinct warnings raised while the case ran (a worker's stderr is not read by anyone).
    """

    case: Case
    case_id: str
    status: str
    error: str | None = None
    method_backend: str | None = None
    framework: str | None = None
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
    compile_time_s: float | None = None
    wall_time_s: float | None = None
    stage_times_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    CASE_TYPE = Case
    LINE = "record"
    NON_NEGATIVE = (
        *COUNTS,
        "n_params",
        "state_size",
        "grad_rel_error",
        "grad_rel_error_y0",
        "grad_rel_error_params",
        "grad_rel_error_discrete",
        "reference_error",
        "time_forward_s",
        "time_forward_iqr_s",
        "time_backward_s",
        "time_backward_iqr_s",
        "peak_memory_bytes",
        "compile_time_s",
        "wall_time_s",
    )


CASE_FIELDS = tuple(f.name for f in fields(Case))
IDENTITY_FIELDS = tuple(name for name in CASE_FIELDS if name not in Case.SETTINGS)
RECORD_FIELDS = CASE_FIELDS + tuple(f.name for f in fields(Record) if f.name != "case")


DTYPES = {"float64": torch.float64, "float32": torch.float32}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype a Case names; a one-line refusal for any other name."""
    if name not in DTYPES:
        raise InvalidInputError(f"unknown dtype {name!r}; valid: {', '.join(DTYPES)}")
    return DTYPES[name]


@functools.cache
def task_step(task: str, size: int) -> float:
    """The task's own step for fixed-step solvers at `size` (it may depend on the size)."""
    return float(tasks.get(task).build(size).step_size)


def resolve(case: Case, *, atol_ratio: float = ATOL_RATIO) -> Case:
    """`case` with its size, and its tolerances or its step, made explicit: the task's default
    size; the dtype's default tolerances, or ``atol = rtol * atol_ratio`` when only rtol is given;
    the task's own step at that size. Two cases that would measure the same thing resolve to the
    same case, with the same ``case_id`` and label.

    Unknown task, solver or dtype names are refused in one line naming the valid ones.
    """
    task = tasks.get(case.task)
    dtype = torch_dtype(case.dtype)
    size = task.default_size if case.size is None else case.size

    def tolerances(rtol: float | None, atol: float | None) -> tuple[float, float]:
        if rtol is None:
            default_rtol, default_atol = solvers.default_tolerances(dtype)
            return default_rtol, default_atol if atol is None else atol
        return rtol, rtol * atol_ratio if atol is None else atol

    adaptive = solvers.get(case.solver).adaptive
    return case.with_setting(adaptive, tolerances, lambda: task_step(case.task, size), size=size)


@dataclass
class BuiltCase:
    """What a case solves: the problem, the method and the solver options."""

    case: Case
    problem: tasks.Problem
    method: methods.GradientMethod
    options: dict[str, Any]
    #: A JAX method's compiled gradient (`odebench.jax.program.Program`); None for torch methods.
    program: Any = None

    def solve(self, func, y0):
        return self.method.odeint(
            func,
            y0,
            self.problem.t,
            solver=self.case.solver,
            rtol=self.case.rtol,
            atol=self.case.atol,
            options=self.options,
        )

    def forward_backward(self) -> None:
        """One forward and backward pass on the bare field, from a fresh leaf of the initial
        state (what ratio cases time round by round), or a JAX method's compiled forward and
        backward; a non-finite loss raises."""
        if self.program is not None:
            loss = self.program.forward_backward()
            if not math.isfinite(loss):
                raise NonFiniteGradient(f"the loss is {loss}")
            return
        y0 = self.problem.y0.detach().clone().requires_grad_(True)
        loss = self.problem.loss(self.solve(self.problem.func, y0))
        if not torch.isfinite(loss):
            raise NonFiniteGradient(f"the loss is {loss.item()}")
        gradients(self.problem.func, y0, loss)


def build_case(case: Case, problem: tasks.Problem | None = None) -> BuiltCase:
    """Build the case's problem and method (what asv and pytest-benchmark time directly).

    The case is resolved first (`resolve`), so ``BuiltCase.case`` holds the size, tolerances or
    step it actually runs with; a `problem` already built for the same task, size, seed, dtype
    and device is reused (the methods of a ratio case share one). A JAX method's gradient is
    compiled here (`odebench.jax.program`).
    """
    case = resolve(case)
    check_device(case.device)
    method = methods.get(case.method)
    if problem is None:
        problem = tasks.get(case.task).build(
            case.size, dtype=torch_dtype(case.dtype), device=case.device, seed=case.seed
        )
    program = None
    if method.capabilities.framework == "jax":
        program = method.program(
            problem,
            solver=case.solver,
            rtol=case.rtol,
            atol=case.atol,
            step_size=case.step_size,
            max_steps=MAX_STEPS if case.max_steps is None else case.max_steps,
            device=case.device,
        )
    return BuiltCase(case, problem, method, case.solver_options(), program)


def gradients(func, y0: torch.Tensor, loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    """``dL/dy0`` then ``dL/dtheta`` in ``func.parameters()`` order (None where unused)."""
    return torch.autograd.grad(loss, [y0, *func.parameters()], allow_unused=True)


def flatten_gradients(func, y0: torch.Tensor, grads) -> torch.Tensor:
    """`gradients`' result flattened as the references are (`references.flatten`); a parameter
    the loss does not use gets zeros."""
    inputs = [y0, *func.parameters()]
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]
    names = [name for name, _ in func.named_parameters()]
    return references.flatten(grads[0], dict(zip(names, grads[1:])))


def flat_gradient(func, y0: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """``dL/dy0`` then ``dL/dtheta``, flattened as the references are."""
    return flatten_gradients(func, y0, gradients(func, y0, loss))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    norm = b.norm().item()
    diff = (a - b).norm().item()
    return diff / norm if norm > 0 else diff


def _check_finite(loss: torch.Tensor, gradient: torch.Tensor) -> None:
    if not torch.isfinite(loss).all():
        raise NonFiniteGradient(f"loss is {loss.item()}")
    if not torch.isfinite(gradient).all():
        raise NonFiniteGradient("gradient contains NaN or Inf")


def run_case(case: Case, *, cache_dir=None) -> Record:
    """Solve, differentiate and measure one case; never raises for a failing case.

    The Record carries the resolved case (`resolve`) and every distinct warning raised on the
    way (`odebench.jobs.base.run_job`).
    """
    return run_job(case, Record, resolve, lambda resolved, measured: _run(resolved, measured, cache_dir))


def _run(case: Case, measured: dict[str, Any], cache_dir) -> None:
    stage = Stages(measured)
    with stage("build"):
        built = build_case(case)
    method, problem = built.method, built.problem
    caps = method.capabilities
    measured.update(
        method_backend=caps.backend,
        framework=caps.framework,
        exact_discrete_gradient=caps.exact_discrete_gradient,
    )
    measured.update(size_knob=tasks.get(case.task).size_knob)
    measured.update(n_params=problem.n_params, state_size=problem.state_size)
    if built.program is not None:
        _run_program(built, measured, stage, cache_dir)
        return

    if caps.compiles:  # the first solve compiles: timed apart, so the counted run measures the graph
        with stage("compile"):
            built.forward_backward()
        measured.update(compile_time_s=stage.times["compile"])

    # 1. counted run, which is also where peak memory is measured and the timed runs' warm-up
    counted = CountedField(problem.func)
    y0 = problem.y0.detach().clone().requires_grad_(True)
    gc.collect()  # garbage of earlier stages is not this run's; collections start from zero
    try:
        with track_peak(case.device, case.memory) as memory:
            with stage("counted_run"), counted.phase("forward"):
                solution = built.solve(counted, y0)
                trajectory = trajectory_of(solution)
                loss = problem.loss(solution)
            with stage("counted_run_backward"), counted.phase("backward"):
                grads = gradients(counted, y0, loss)
    finally:
        measured.update(counts_of(counted))
    measured.update(peak_memory_bytes=memory.peak_bytes, memory_backend=memory.backend)
    stage.times["memory_readout"] = memory.readout_s
    flat = flatten_gradients(counted, y0, grads)
    _check_finite(loss, flat)

    # 2. reference (after the method, so a failing method fails as itself)
    _score(case, problem, flat, measured, stage, cache_dir)

    # 3. discrete-exact gradient: autograd through the method's own discrete solve
    with stage("discrete_exact"):
        exact = _discrete_exact(built, trajectory)
    if exact is not None:
        measured["grad_rel_error_discrete"] = _rel(flat, exact)

    # 4. timing, on the bare field; the counted run was the warm-up
    def forward_run():
        y = problem.y0.detach().clone().requires_grad_(True)
        return built.solve(problem.func, y), y

    def backward_run(out):
        solution, y = out
        gradients(problem.func, y, problem.loss(solution))

    with stage("timing"):
        timing = time_forward_backward(
            forward_run, backward_run, repeats=case.repeats, warmup=0, device=case.device
        )
    _record_timing(measured, timing)


def _score(case: Case, problem: tasks.Problem, flat: torch.Tensor, measured, stage, cache_dir) -> None:
    """The errors of the flattened gradient `flat` against the task's cached reference."""
    with stage("reference"):
        reference = references.reference_gradient(case.task, case.size, case.seed, cache_dir=cache_dir)
    measured.update(
        reference_kind=reference.kind,
        reference_error=reference.error_estimate,
        reference_hash=reference.content_hash,
    )
    flat = flat.to(torch.float64).cpu()
    ref = reference.flat
    n_y0 = problem.y0.numel()
    error = _rel(flat, ref)
    measured.update(
        grad_rel_error=error,
        grad_rel_error_y0=_rel(flat[:n_y0], ref[:n_y0]),
        grad_rel_error_params=_rel(flat[n_y0:], ref[n_y0:]) if len(ref) > n_y0 else None,
        grad_cosine=torch.nn.functional.cosine_similarity(flat, ref, dim=0).item(),
        at_reference_resolution=bool(error < 10 * reference.error_estimate),
    )


def _run_program(built: BuiltCase, measured: dict[str, Any], stage: Stages, cache_dir) -> None:
    """A JAX method's case: its program was compiled at build (`odebench.jax.program`); the
    counted run is one forward and backward (also the timed runs' warm-up), counts come from a
    counting program of their own, memory from XLA's account of the compiled programs (memray's
    around the counted run when the case asks for memray; the torch allocator sees no XLA
    buffer, so any other request is read as XLA's). diffrax's grid is its own: no discrete-exact
    figure, and its backward steps are not reported."""
    case, problem, program = built.case, built.problem, built.program
    measured.update(compile_time_s=sum(program.compile_s.values()))
    tracker = track_peak(case.device, "memray") if case.memory == "memray" else contextlib.nullcontext()
    with tracker as memory, stage("counted_run"):
        state = program.forward()
        grads = program.backward(state)
    if memory is None:
        memory = PeakReading(XLA, program.peak_bytes())
    measured.update(peak_memory_bytes=memory.peak_bytes, memory_backend=memory.backend)
    flat = program.flat_gradient(grads, problem.func)
    _check_finite(torch.tensor(float(state[0])), flat)
    with stage("counting"):
        measured.update(program.counts())
    _score(case, problem, flat, measured, stage, cache_dir)
    with stage("timing"):
        timing = time_forward_backward(
            program.forward, program.backward, repeats=case.repeats, warmup=0, device=case.device
        )
    _record_timing(measured, timing)


def _record_timing(measured: dict[str, Any], timing) -> None:
    measured.update(
        time_forward_s=timing.forward.median,
        time_forward_iqr_s=timing.forward.iqr,
        time_backward_s=timing.backward.median,
        time_backward_iqr_s=timing.backward.iqr,
    )


def _discrete_exact(built: BuiltCase, trajectory=None) -> torch.Tensor | None:
    """Autograd through the method's own discrete solve: the grid a stepwise method kept, else
    `GradientMethod.discrete_solve` (None for a method that has none)."""
    problem, case = built.problem, built.case
    y0 = problem.y0.detach().clone().requires_grad_(True)
    if trajectory is not None:
        solution = replay(problem.func, y0, trajectory)
    else:
        solution = built.method.discrete_solve(
            problem.func,
            y0,
            problem.t,
            solver=case.solver,
            rtol=case.rtol,
            atol=case.atol,
            options=built.options,
        )
        if solution is None:
            return None
    return flat_gradient(problem.func, y0, problem.loss(solution)).to(torch.float64).cpu()
