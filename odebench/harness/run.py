"""`run_case`: the one place where a case is solved, differentiated and measured.

Order of work for one case, each stage on a fresh graph:

1. build the task's problem; a counted run: forward solve and loss, then the gradient, with
   the field wrapped in `CountedField` (NFE, VJPs and steps per phase); it also warms up
   allocators and caches;
2. the reference gradient of the task (cached on disk) and the errors against it;
3. the discrete-exact gradient on the same grid, where the method's grid is torchdiffeq's;
4. timing: forward and backward separately, median and IQR over ``repeats`` runs;
5. peak memory of one forward plus backward, in a run of its own (the profiler slows it).

Failures become a Record with a status; whatever was measured before the failure is kept.
"""

from __future__ import annotations

import contextlib
import gc
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from odebench import methods, references, solvers, tasks
from odebench.cases import resolve, torch_dtype
from odebench.errors import InvalidInputError, MaxStepsExceeded, OdebenchError, describe
from odebench.measure import CountedField, measure_peak, time_forward_backward
from odebench.methods.base import quiet_fixed_step_callbacks
from odebench.methods.checkpointed import trajectory_of
from odebench.record import Case, Record
from odebench.solvers.runge_kutta import integrate, replay


class NonFiniteGradient(FloatingPointError):
    """The loss or the gradient contains NaN or Inf."""


def check_device(device: str) -> None:
    """Refuse a device this machine does not have (one line)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} requested but CUDA is not available; valid: cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise InvalidInputError(f"unknown device {device!r}; valid: cpu, cuda")


def solver_options(case: Case) -> dict[str, Any]:
    """Options for torchdiffeq-style solvers of a resolved case: its step budget or its step."""
    if solvers.get(case.solver).adaptive:
        return {"max_num_steps": case.max_steps}
    return {"step_size": case.step_size}


@dataclass
class Prepared:
    """What a case solves: the problem, the method and the solver options."""

    case: Case
    problem: tasks.Problem
    method: methods.GradientMethod
    options: dict[str, Any]

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


def prepare(case: Case) -> Prepared:
    """Build the case's problem and method (what asv and pytest-benchmark time directly).

    The case is resolved first (`odebench.cases.resolve`), so ``Prepared.case`` holds the size,
    tolerances or step it actually runs with.
    """
    case = resolve(case)
    check_device(case.device)
    method = methods.get(case.method)
    problem = tasks.get(case.task).build(
        case.size, dtype=torch_dtype(case.dtype), device=case.device, seed=case.seed
    )
    return Prepared(case, problem, method, solver_options(case))


def flat_gradient(func, y0: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """``dL/dy0`` then ``dL/dtheta`` in ``func.named_parameters()`` order, flattened as the
    references are (`references.flatten`); a parameter the loss does not use gets zeros."""
    named = list(func.named_parameters())
    inputs = [y0, *(p for _, p in named)]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]
    return references.flatten(grads[0], {name: g for (name, _), g in zip(named, grads[1:])})


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    norm = b.norm().item()
    diff = (a - b).norm().item()
    return diff / norm if norm > 0 else diff


def _check_finite(loss: torch.Tensor, gradient: torch.Tensor) -> None:
    if not torch.isfinite(loss).all():
        raise NonFiniteGradient(f"loss is {loss.item()}")
    if not torch.isfinite(gradient).all():
        raise NonFiniteGradient("gradient contains NaN or Inf")


def classify(exc: BaseException) -> str:
    """The Record status of an exception raised while running a case.

    torchdiffeq asserts and the native integrator raises with the same messages, so a failure
    gets the same status whichever integrator met it.
    """
    message = str(exc)
    if isinstance(exc, MaxStepsExceeded) or "max_num_steps exceeded" in message:
        return "max_steps"
    if "underflow in dt" in message:
        return "underflow"
    if isinstance(exc, FloatingPointError) or "non-finite values" in message:
        return "nan"
    return "error"


def run_case(case: Case, *, cache_dir=None) -> Record:
    """Solve, differentiate and measure one case; never raises for a failing case.

    The Record carries the resolved case (`odebench.cases.resolve`) and every distinct warning
    raised on the way, so a warning reaches the user also when the case ran in a worker.
    """
    measured: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        case = resolve(case)
    except OdebenchError as exc:
        return Record.failed(case, "error", describe(exc))
    with warnings.catch_warnings(record=True) as caught:
        for category in (UserWarning, RuntimeWarning):  # every time, not once per process
            warnings.simplefilter("always", category)
        try:
            # The adjoint's backward solve re-checks callbacks outside the method's own call.
            with quiet_fixed_step_callbacks():
                _run(case, measured, cache_dir)
            status, error = "ok", None
        except Exception as exc:  # a failing case is a result, not a crash of the sweep
            status, error = classify(exc), describe(exc)
    measured["warnings"] = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    measured["wall_time_s"] = time.perf_counter() - started
    return Record(case=case, case_id=case.case_id, status=status, error=error, **measured)


class _Stages:
    """Wall seconds per stage of a case, kept in the record (``stage_times_s``) so the harness's
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


def _run(case: Case, measured: dict[str, Any], cache_dir) -> None:
    stage = _Stages(measured)
    with stage("build"):
        prepared = prepare(case)
    method, problem = prepared.method, prepared.problem
    caps = method.capabilities
    measured.update(method_backend=caps.backend, exact_discrete_gradient=caps.exact_discrete_gradient)
    measured.update(size_knob=tasks.get(case.task).size_knob)
    measured.update(n_params=problem.n_params, state_size=problem.state_size)

    # 1. counted run
    counted = CountedField(problem.func)
    y0 = problem.y0.detach().clone().requires_grad_(True)
    try:
        with stage("counted_run"), counted.phase("forward"):
            solution = prepared.solve(counted, y0)
            trajectory = trajectory_of(solution) if caps.keeps_trajectory else None
            loss = problem.loss(solution)
        with stage("counted_run_backward"), counted.phase("backward"):
            flat = flat_gradient(counted, y0, loss)
    finally:
        forward, backward = counted.counts["forward"], counted.counts["backward"]
        measured.update(
            nfe_forward=forward.nfe,
            nfe_backward=backward.nfe,
            vjp_backward=backward.vjp,
            steps_accepted=forward.accepted,
            steps_rejected=forward.rejected,
            steps_accepted_backward=backward.accepted,
            steps_rejected_backward=backward.rejected,
        )
    _check_finite(loss, flat)

    # 2. reference (after the method, so a failing method fails as itself)
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

    # 3. discrete-exact gradient on the very grid the forward solve took
    if caps.torchdiffeq_grid:
        with stage("discrete_exact"):
            measured["grad_rel_error_discrete"] = _rel(flat, _discrete_exact(prepared, trajectory))

    # 4. timing, on the bare field
    def forward_run():
        y = problem.y0.detach().clone().requires_grad_(True)
        return prepared.solve(problem.func, y), y

    def backward_run(out):
        solution, y = out
        torch.autograd.grad(problem.loss(solution), [y, *problem.func.parameters()], allow_unused=True)

    with stage("timing"):
        timing = time_forward_backward(
            forward_run, backward_run, repeats=case.repeats, warmup=1, device=case.device
        )
    measured.update(
        time_forward_s=timing.forward.median,
        time_forward_iqr_s=timing.forward.iqr,
        time_backward_s=timing.backward.median,
        time_backward_iqr_s=timing.backward.iqr,
    )

    # 5. peak memory of one forward plus backward, from a collected heap
    with stage("memory"):
        gc.collect()
        _, peak, backend = measure_peak(lambda: backward_run(forward_run()), case.device)
    measured.update(peak_memory_bytes=peak, memory_backend=backend)


def _discrete_exact(prepared: Prepared, trajectory=None) -> torch.Tensor:
    """Autograd through odebench's replay of the forward grid (torchdiffeq's accepted steps):
    the grid the method kept, or, for one that keeps none, the native integrator's solve."""
    problem, case = prepared.problem, prepared.case
    if trajectory is None:
        solver = solvers.get(case.solver)
        with torch.no_grad():
            _, trajectory = integrate(
                problem.func, problem.y0, problem.t, solver, case.rtol, case.atol, prepared.options
            )
    y0 = problem.y0.detach().clone().requires_grad_(True)
    loss = problem.loss(replay(problem.func, y0, trajectory))
    return flat_gradient(problem.func, y0, loss).to(torch.float64).cpu()
