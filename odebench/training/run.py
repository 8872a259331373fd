"""`run_training`: the one training loop, for every study and every gradient method.

One iteration: the study's training loss on the iteration's batch (forward, with the vector field
wrapped in `CountedField`), its gradient (backward), an optimiser step. Recorded per iteration:
the loss, the training wall time so far (forward, backward and optimiser steps only, device
synchronised), evaluations, VJPs and solver steps per phase, and the number of solves. Every
``eval_every`` iterations, and at the last, two checks that do not count as training time:

* the gradient's relative error against a float64 reference at the same parameters on the same
  batch (the study's loss through torchdiffeq's dopri8 at the study's reference tolerance, with a
  step ending on every output time, differentiated by autograd);
* the held-out metric of the model after the iteration's step.

A run that diverges (a non-finite loss or gradient, a step size underflow, the step budget) or
raises stops with that status; the curve up to there and the iteration it reached are kept.
"""

from __future__ import annotations

import copy
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
    setup = study.build(torch.Generator(device="cpu").manual_seed(case.seed))
    model = setup.model.to(dtype=dtype, device=case.device)
    counted = CountedField(model.field)
    model.field = counted
    measured.update(heldout_name=study.heldout_name, target_loss=study.target_loss)
    measured["n_params"] = sum(p.numel() for p in model.parameters())
    if case.step_size is None:
        options = {**study.solver_options, "max_num_steps": case.max_steps}
    else:
        options = {"step_size": case.step_size}
    solves = [0]

    def solve(field, y0, t):
        solves[0] += 1
        return method.odeint(
            field, y0, t, solver=case.solver, rtol=case.rtol, atol=case.atol, options=options
        )

    optimizer = setup.optimizer(model.parameters())
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
        sync()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with counted.phase("forward"):
            loss = study.loss(model, solve, batch)
        if not torch.isfinite(loss):
            raise NonFiniteGradient(f"training loss is {loss.item()} at iteration {i}")
        with counted.phase("backward"):
            loss.backward()
        sync()
        train_time += time.perf_counter() - start
        grad_error = _gradient_error(study, model, data, case) if check else None
        start = time.perf_counter()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        sync()
        train_time += time.perf_counter() - start
        point = dict.fromkeys(CURVE_COLUMNS)
        point.update(iteration=i, train_loss=loss.item(), elapsed_s=train_time, solves=solves[0])
        point.update({k: v - before[k] for k, v in _counts(counted).items()})
        point["grad_rel_error"] = grad_error
        if check:
            with _uncounted(model), torch.no_grad():
                point["heldout"] = float(study.evaluate(model, solve, heldout))
        points.append(point)
        if progress is not None:
            progress(point)
    model.field = counted.func
    measured["parameter_error"] = study.parameter_error(model, setup)


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


def _gradient_error(study: Study, model, data: tuple, case: TrainingCase) -> float:
    """Relative 2-norm error of the model's current gradient against a float64 reference."""
    mine = _flat([p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()])
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
    exact = _flat([g if g is not None else torch.zeros_like(p) for p, g in zip(params, grads)])
    norm = exact.norm().item()
    return (mine - exact).norm().item() / norm if norm > 0 else (mine - exact).norm().item()


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).to(dtype=torch.float64, device="cpu") for t in tensors])
