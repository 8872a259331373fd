"""`run_training`: the one training loop, for every study and every gradient method.

One iteration is one optimiser step with a closure that computes the study's training loss on the
iteration's batch (forward, with the vector field wrapped in `CountedField`) and its gradient
(backward): once for first-order optimisers, as often as a line search needs for L-BFGS. Recorded
per iteration: the loss at the starting parameters, the training wall time so far (the whole
step, device synchronised), evaluations, VJPs and solver steps per phase, the number of solves,
and what the study observes of its solver (`odebench.studies.base.Setup.observe`). Every
``eval_every`` iterations, and at the last, two checks that do not count as training time:

* the gradient's relative error at the iteration's starting parameters on the same batch, the
  loss's first gradient against a float64 reference (the study's loss through torchdiffeq's
  dopri8 at the study's reference tolerance, with a step ending on every output time,
  differentiated by autograd);
* the held-out metric of the model after the iteration's step.

A run that diverges (a non-finite loss or gradient, a step size underflow, the step budget) or
raises stops with that status; the curve up to there and the iteration it reached are kept.
"""

from __future__ import annotations

import copy
import hashlib
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

from odebench import methods, studies
from odebench.cases import torch_dtype
from odebench.errors import OdebenchError, describe
from odebench.harness.run import NonFiniteGradient, check_device, classify
from odebench.measure import CountedField
from odebench.measure.timing import synchronizer
from odebench.methods.base import quiet_fixed_step_callbacks
from odebench.studies.base import Study, cast
from odebench.training.case import CURVE_COLUMNS, TrainingCase, TrainingRecord, resolve, summarise

Progress = Callable[[dict[str, Any]], None]


def run_training(case: TrainingCase, *, progress: Progress | None = None) -> TrainingRecord:
    """Train one case; never raises for a failing run.

    `progress` is called with each curve point as it is measured (the worker streams them, so a
    run killed by its timeout keeps its curve so far).
    """
    started = time.perf_counter()
    try:
        case = resolve(case)
    except OdebenchError as exc:
        return TrainingRecord.failed(case, "error", describe(exc))
    points: list[dict[str, Any]] = []
    measured: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        for category in (UserWarning, RuntimeWarning):
            warnings.simplefilter("always", category)
        try:
            with quiet_fixed_step_callbacks():
                _train(case, measured, points, progress)
            status, error = "ok", None
        except Exception as exc:  # a diverging run is a result
            status, error = classify(exc), describe(exc)
    study = studies.get(case.study)
    measured.update(summarise(points, study.smooth, study.target_loss))
    measured["warnings"] = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    measured["wall_time_s"] = time.perf_counter() - started
    return TrainingRecord(case=case, case_id=case.case_id, status=status, error=error, **measured)


def _train(case: TrainingCase, measured: dict, points: list, progress: Progress | None) -> None:
    study = studies.get(case.study)
    check_device(case.device)
    method = methods.get(case.method)
    dtype = torch_dtype(case.dtype)
    setup = study.build(case.seed)
    model = setup.model.to(dtype=dtype, device=case.device)
    counted = CountedField(model.field)
    model.field = counted
    measured.update(heldout_name=study.heldout_name, target_loss=study.target_loss)
    measured["n_params"] = sum(p.numel() for p in model.parameters())
    if case.step_size is None:
        options = {**setup.solver_options, "max_num_steps": case.max_steps}
    else:
        options = {"step_size": case.step_size}
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
        before = _counts(counted)
        solves[0] = 0
        check = i % case.eval_every == 0 or i == case.iterations - 1
        # At the iteration's starting parameters, before the step moves them (not training time).
        reference = _reference_gradient(study, model, data, key=(case.seed, i)) if check else None
        sync()
        start = time.perf_counter()
        loss, grads = _step(optimizer, study, model, solve, batch, counted, params, i)
        if scheduler is not None:
            scheduler.step()
        sync()
        train_time += time.perf_counter() - start
        point = dict.fromkeys(CURVE_COLUMNS)
        point.update(iteration=i, train_loss=loss.item(), elapsed_s=train_time, solves=solves[0])
        point.update({k: v - before[k] for k, v in _counts(counted).items()})
        if setup.observe is not None:
            point.update(setup.observe())
        if check:
            point["grad_rel_error"] = _relative_error(grads, params, reference)
            with _uncounted(model), torch.no_grad():
                point["heldout"] = float(study.evaluate(model, solve, heldout))
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


def _counts(counted: CountedField) -> dict[str, int]:
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
    mine = _flat([g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)])
    norm = exact.norm().item()
    return (mine - exact).norm().item() / norm if norm > 0 else (mine - exact).norm().item()


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).to(dtype=torch.float64, device="cpu") for t in tensors])
