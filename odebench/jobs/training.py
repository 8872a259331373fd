"""Training runs: `TrainingCase` -> `run_training` -> `TrainingRecord`, the one training loop.

A training run trains a study's model (`odebench.studies`) with one gradient method, solver and
tolerances (or step) from one seed for a budget of iterations. Its identity follows
`odebench.jobs.base.CaseBase`; how often the held-out metric and the gradient's error are
checked (``eval_every``) is a setting of the measurement, not part of what is measured. A case
left with its defaults open is completed by `resolve` from the study's published setup.

The loop is the same for every study and every gradient method. One iteration is one optimiser
step with a closure that computes the study's training loss on the iteration's batch (forward,
with the vector field wrapped in `CountedField`) and its gradient (backward): once for
first-order optimisers, as often as a line search needs for L-BFGS. Recorded per iteration: the
loss at the starting parameters, the training wall time so far (the whole step, device
synchronised), evaluations, VJPs and solver steps per phase, the number of solves, and what the
study observes of its solver (`odebench.studies.base.Setup.observe`). Every ``eval_every``
iterations, and at the last, checks that do not count as training time (and what the study
inspects then, `odebench.studies.base.Setup.inspect`):

* the gradient's relative error at the iteration's starting parameters on the same batch, the
  loss's first gradient against a float64 reference (the study's loss through torchdiffeq's
  dopri8 at the study's reference tolerance, with a step ending on every output time,
  differentiated by autograd; a study without a reference tolerance has no gradient check);
* the held-out metric of the model after the iteration's step.

A run that stops early (NaN loss, step underflow, step budget, timeout, crash) keeps its status,
the iteration it stopped at and the curve up to there.
"""

from __future__ import annotations

import copy
import hashlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch

from odebench import methods, solvers, studies
from odebench.errors import InvalidInputError
from odebench.jobs.base import (
    COUNTS,
    CaseBase,
    NonFiniteGradient,
    RecordBase,
    check_device,
    counts_of,
    run_job,
)
from odebench.jobs.gradient import _rel, torch_dtype
from odebench.measure import CountedField
from odebench.measure.timing import synchronizer
from odebench.studies.base import Study, cast, layers_of

#: Per-iteration columns of a curve, always present (None where not measured).
CURVE_COLUMNS = (
    "iteration",
    "train_loss",
    "elapsed_s",
    *COUNTS,
    "solves",
    "heldout",
    "grad_rel_error",
)


@dataclass(frozen=True)
class TrainingCase(CaseBase):
    """One training run: which study, trained with which method and solver, from which seed.

    ``solver``/``rtol``/``atol``/``step_size`` None take the study's published setting;
    ``iterations`` None the study's budget; ``max_seconds`` stops training after that much
    training wall time (None: no limit). ``eval_every`` (None: the study's) is how often the
    held-out metric and the gradient's error are checked; it is not part of the identity.
    """

    study: str
    method: str
    solver: str | None = field(default=None, kw_only=True)
    iterations: int | None = None
    max_seconds: float | None = None
    eval_every: int | None = None

    KIND: ClassVar[str] = "training"
    SETTINGS: ClassVar[tuple[str, ...]] = ("eval_every",)
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = (
        *CaseBase.NON_NEGATIVE,
        "iterations",
        "max_seconds",
        "eval_every",
    )
    SUBJECTS: ClassVar[str] = "studies"
    DEFAULT_SOLVERS: ClassVar[tuple[str | None, ...]] = (None,)

    @classmethod
    def default_solver(cls, subject: str) -> str:
        return studies.get(subject).solver

    @classmethod
    def extra_axis(cls, grid, subject: str) -> tuple:
        return grid.iterations

    @classmethod
    def from_point(cls, point, grid, settings, repeats: int) -> TrainingCase:
        case = cls(
            study=point.subject,
            method=point.methods[0],
            iterations=point.extra,
            max_steps=settings.max_steps,
            eval_every=settings.eval_every,
            max_seconds=settings.max_seconds,
            **point.solve_fields(),
        )
        return resolve(case)

    def label(self) -> str:
        """``study/method/solver/setting/dtype/device/it=N`` and ``seed=`` where it is not 0."""
        label = self._label([self.study, self.method], [f"it={self.iterations}"])
        return label + (f"/max_s={self.max_seconds:g}" if self.max_seconds is not None else "")

    def infeasible(self) -> str | None:
        """Why the run cannot run (a method without its solver). A tolerance its dtype cannot
        meet is kept: it is the study's published setup (the ACA paper trains in float32 at
        1e-7), and what the solver then does is a finding; the solve warns
        (`odebench.errors.ToleranceWarning`) and the warning is in the record. A ResNet study
        (one layer per step) needs a fixed step."""
        if studies.get(self.study).layer_per_step:
            if self.step_size is None:
                return f"study {self.study} is a ResNet with one layer per step: it needs a fixed-step solver"
            try:
                layers_of(self.step_size)
            except InvalidInputError as error:
                return str(error)
        return self.unsupported()


def resolve(case: TrainingCase) -> TrainingCase:
    """`case` with the study's published solver, tolerances or step, budget and check interval
    filled in where it leaves them open (`CaseBase.with_setting`).

    Tolerances are never derived: none given takes the study's published pair; one given takes
    the other from the published pair that has it; a pair the study does not publish must be
    given whole (rtol and atol), else it is refused naming the published pairs.
    """
    study = studies.get(case.study)
    solver_name = case.solver or study.solver
    solver = solvers.get(solver_name)
    iterations = study.iterations if case.iterations is None else case.iterations
    eval_every = study.eval_every if case.eval_every is None else case.eval_every
    return case.with_setting(
        solver.adaptive,
        lambda rtol, atol: _tolerances(study, rtol, atol),
        lambda: study.step_size,
        solver=solver_name,
        iterations=iterations,
        eval_every=eval_every,
    )


def _tolerances(study, rtol: float | None, atol: float | None) -> tuple[float, float]:
    """``(rtol, atol)`` of a run: as given, or completed from the study's published pairs."""
    pairs = study.published_tolerances
    if rtol is None and atol is None:
        return pairs[0]
    if rtol is not None and atol is not None:
        return float(rtol), float(atol)
    index, value = (0, rtol) if rtol is not None else (1, atol)
    for pair in pairs:
        if math.isclose(pair[index], value, rel_tol=1e-9, abs_tol=0.0):
            return pair
    published = ", ".join(f"rtol {r:g} with atol {a:g}" for r, a in pairs)
    given, missing = ("rtol", "atol") if rtol is not None else ("atol", "rtol")
    raise InvalidInputError(
        f"study {study.name!r} publishes no tolerance pair with {given} {value:g} (it publishes "
        f"{published}); training tolerances are explicit: give --{missing} too"
    )


@dataclass(frozen=True)
class TrainingRecord(RecordBase):
    """The outcome of one TrainingCase. Fields that could not be measured are None.

    ``iterations_done`` counts the iterations completed: the budget for a finished run, the
    index of the iteration it stopped in for one that diverged.
    ``final_loss`` is the mean training loss over the last `odebench.studies.base.Study.smooth`
    iterations; ``heldout`` the study's held-out metric (``heldout_name``) at the end and
    ``parameter_error`` the relative error of the learnt physical parameters where the study
    has ground truth. ``train_time_s`` counts forward, backward and optimiser steps only (not
    the checks); ``time_to_target_s``/``iterations_to_target`` when the smoothed training loss
    first reached the study's target (None: never). ``grad_rel_error_median`` is the median of
    the gradient's relative error against the float64 reference over the checked iterations.
    ``curve`` maps each `CURVE_COLUMNS` name, then each column the study observes of its solver,
    to its per-iteration values.
    """

    case: TrainingCase
    case_id: str
    status: str
    error: str | None = None
    iterations_done: int | None = None
    final_loss: float | None = None
    heldout: float | None = None
    heldout_name: str | None = None
    parameter_error: float | None = None
    train_time_s: float | None = None
    time_to_target_s: float | None = None
    iterations_to_target: int | None = None
    target_loss: float | None = None
    nfe_forward_total: int | None = None
    nfe_backward_total: int | None = None
    grad_rel_error_median: float | None = None
    n_params: int | None = None
    wall_time_s: float | None = None
    warnings: list[str] = field(default_factory=list)
    curve: dict[str, list] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    CASE_TYPE = TrainingCase
    LINE = "training"
    NON_NEGATIVE = (
        "iterations_done",
        "parameter_error",
        "train_time_s",
        "time_to_target_s",
        "iterations_to_target",
        "nfe_forward_total",
        "nfe_backward_total",
        "grad_rel_error_median",
        "n_params",
        "wall_time_s",
    )

    @classmethod
    def failed(cls, case: TrainingCase, status: str, error: str, **measured: Any) -> TrainingRecord:
        """A record of a run that did not finish; a ``partial`` curve (streamed by a worker that
        was then killed) is kept as the curve, with the iterations it completed."""
        partial = measured.pop("partial", None)
        if partial and "curve" not in measured:
            study = studies.get(case.study)
            points = [{**dict.fromkeys(CURVE_COLUMNS), **point} for point in partial]
            measured.update(summarise(points, study.smooth, study.target_loss))
        return super().failed(case, status, error, **measured)


def summarise(points: list[dict[str, Any]], smooth: int, target_loss: float) -> dict[str, Any]:
    """Final metrics and totals of a curve (whatever part of it was measured): the mean of the
    last `smooth` losses, the last held-out value, totals, the first time the mean of `smooth`
    losses reached `target_loss`. The curve keeps a study's own columns after `CURVE_COLUMNS`."""
    names = list(dict.fromkeys([*CURVE_COLUMNS, *(name for p in points for name in p)]))
    curve = {name: [p.get(name) for p in points] for name in names}
    out: dict[str, Any] = {"curve": curve, "iterations_done": len(points)}
    if not points:
        return out
    losses = curve["train_loss"]
    out["final_loss"] = statistics.fmean(losses[-smooth:])
    out["train_time_s"] = curve["elapsed_s"][-1]
    out["nfe_forward_total"] = sum(curve["nfe_forward"])
    out["nfe_backward_total"] = sum(curve["nfe_backward"])
    checked = [e for e in curve["grad_rel_error"] if e is not None and math.isfinite(e)]
    out["grad_rel_error_median"] = statistics.median(checked) if checked else None
    heldout = [h for h in curve["heldout"] if h is not None]
    out["heldout"] = heldout[-1] if heldout else None
    for i in range(len(losses)):
        window = losses[max(0, i - smooth + 1) : i + 1]
        if len(window) == min(smooth, i + 1) and statistics.fmean(window) <= target_loss:
            out["iterations_to_target"] = i + 1
            out["time_to_target_s"] = curve["elapsed_s"][i]
            break
    return out


TRAINING_CASE_FIELDS = tuple(f.name for f in fields(TrainingCase))
TRAINING_FIELDS = TRAINING_CASE_FIELDS + tuple(
    f.name for f in fields(TrainingRecord) if f.name not in ("case", "curve")
)

Progress = Callable[[dict[str, Any]], None]


def run_training(case: TrainingCase, *, progress: Progress | None = None) -> TrainingRecord:
    """Train one case; never raises for a failing run (a diverging run is a result).

    `progress` is called with each curve point as it is measured (the worker streams them, so a
    run killed by its timeout keeps its curve so far).
    """
    return run_job(
        case, TrainingRecord, resolve, lambda resolved, measured: _train(resolved, measured, progress)
    )


def _train(case: TrainingCase, measured: dict, progress: Progress | None) -> None:
    """The loop; the curve's summary is kept whether or not it finishes."""
    study = studies.get(case.study)
    points: list[dict[str, Any]] = []
    try:
        _iterate(case, study, measured, points, progress)
    finally:
        measured.update(summarise(points, study.smooth, study.target_loss))


def _iterate(
    case: TrainingCase, study: Study, measured: dict, points: list, progress: Progress | None
) -> None:
    check_device(case.device)
    method = methods.get(case.method)
    dtype = torch_dtype(case.dtype)
    setup = study.build(case.seed, step_size=case.step_size)
    model = setup.model.to(dtype=dtype, device=case.device)
    counted = CountedField(model.field)
    model.field = counted
    measured.update(heldout_name=study.heldout_name, target_loss=study.target_loss)
    measured["n_params"] = sum(p.numel() for p in model.parameters())
    options = case.solver_options(setup.solver_options)
    solves = [0]

    def solve(field, y0, t):
        solves[0] += 1
        return method.odeint(
            field, y0, t, solver=case.solver, rtol=case.rtol, atol=case.atol, options=options
        )

    params = list(model.parameters())
    optimizer = setup.optimizer(params)
    scheduler = setup.scheduler(optimizer) if setup.scheduler is not None else None
    heldout = cast(setup.heldout, dtype, case.device)
    sync = synchronizer(case.device)
    train_time = 0.0
    for i in range(case.iterations):
        if case.max_seconds is not None and train_time >= case.max_seconds:
            break
        data = setup.batch(i)
        batch = cast(data, dtype, case.device)
        before = counts_of(counted)
        solves[0] = 0
        check = i % case.eval_every == 0 or i == case.iterations - 1
        # At the iteration's starting parameters, before the step moves them (not training time).
        checks_gradient = check and study.reference_tolerance is not None
        reference = _reference_gradient(study, model, data, key=(case.seed, i)) if checks_gradient else None
        inspected = {}
        if check and setup.inspect is not None:
            with _uncounted(model), torch.no_grad():
                inspected = setup.inspect()
        sync()
        start = time.perf_counter()
        loss, grads = _step(optimizer, study, model, solve, batch, counted, params, i)
        if scheduler is not None:
            scheduler.step()
        sync()
        train_time += time.perf_counter() - start
        point = dict.fromkeys(CURVE_COLUMNS)
        point.update(iteration=i, train_loss=loss.item(), elapsed_s=train_time, solves=solves[0])
        point.update({k: v - before[k] for k, v in counts_of(counted).items()})
        if setup.observe is not None:
            point.update(setup.observe())
        point.update(inspected)
        if check:
            if reference is not None:
                point["grad_rel_error"] = _relative_error(grads, params, reference)
            with _uncounted(model), torch.no_grad():
                model.eval()  # layers with running statistics (batch norm) use them here
                point["heldout"] = float(study.evaluate(model, solve, heldout))
                model.train()
        points.append(point)
        if progress is not None:
            progress(point)
    model.field = counted.func
    measured["parameter_error"] = study.parameter_error(model, setup)


def _step(optimizer, study: Study, model, solve, batch, counted: CountedField, params, iteration: int):
    """One optimiser step, its closure computing the loss (forward) and its gradient (backward);
    line-search optimisers (L-BFGS) call it repeatedly. Returns the loss and the gradients at the
    starting parameters (the closure's first call)."""
    first: dict[str, Any] = {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        with counted.phase("forward"):
            loss = study.loss(model, solve, batch)
        if not torch.isfinite(loss):
            raise NonFiniteGradient(f"training loss is {loss.item()} at iteration {iteration}")
        with counted.phase("backward"):
            loss.backward()
        if not first:
            first.update(loss=loss.detach(), grads=[p.grad for p in params])
        return loss

    optimizer.step(closure)
    return first["loss"], first["grads"]


class _uncounted:
    """Evaluate with the bare field, so checks do not add to the training's counts."""

    def __init__(self, model) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.counted = self.model.field
        self.model.field = self.counted.func

    def __exit__(self, *exc_info) -> None:
        self.model.field = self.counted


#: Reference gradients of this process by study, data key and the parameters' bytes: runs of one
#: study from one seed with several methods (in one process: tests, --in-process) start from
#: the same parameters and batch, and a reference can cost seconds (1000 output times).
_REFERENCES: dict[tuple, torch.Tensor] = {}


def _reference_gradient(study: Study, model, data: tuple, *, key: tuple) -> torch.Tensor:
    """The loss's gradient at the model's current parameters on `data` (the batch `key` names:
    seed and iteration), in float64 on the CPU by torchdiffeq's dopri8 at the study's reference
    tolerance (a step ending on every output time), flattened."""
    weights = _flat(model.parameters())
    memo = (study.name, *key, hashlib.sha256(weights.numpy().tobytes()).hexdigest())
    if memo not in _REFERENCES:
        if len(_REFERENCES) >= 8:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[memo] = _compute_reference(study, model, data)
    return _REFERENCES[memo]


def _compute_reference(study: Study, model, data: tuple) -> torch.Tensor:
    reference = copy.deepcopy(model).to(dtype=torch.float64, device="cpu")
    reference.field = reference.field.func
    tolerance = study.reference_tolerance
    naive = methods.get("naive")

    def tight(field, y0, t):
        options = {"step_t": t}
        return naive.odeint(field, y0, t, solver="dopri8", rtol=tolerance, atol=tolerance, options=options)

    params = list(reference.parameters())
    with torch.enable_grad():
        loss = study.loss(reference, tight, data)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    return _flat([g if g is not None else torch.zeros_like(p) for p, g in zip(params, grads)])


def _relative_error(grads, params, exact: torch.Tensor) -> float:
    """Relative 2-norm error of a gradient (None entries: zero) against the flattened `exact`."""
    return _rel(_flat([g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]), exact)


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).to(dtype=torch.float64, device="cpu") for t in tensors])
