"""What one training run is (`TrainingCase`) and what it produced (`TrainingRecord`).

A training run trains a study's model with one gradient method, solver and tolerance (or step)
from one seed for a budget of iterations. Its identity follows the rules of `odebench.record`:
an adaptive run has tolerances and a step budget but no step, a fixed-step run a step but no
tolerances, and how often the held-out metric and the gradient's error are checked
(``eval_every``) is a setting of the measurement, not part of what is measured. A case left
with its defaults open is completed by `resolve` from the study's published setup.

A TrainingRecord holds the run's final metrics and its curve: one point per iteration, with the
held-out metric and the gradient's error against a float64 reference on the points where they
were checked. A run that stops early (NaN loss, step underflow, step budget, timeout, crash)
keeps its status, the iteration it stopped at and the curve up to there.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from odebench.errors import InvalidInputError
from odebench.record import MAX_STEPS, RecordBase, setting_label

#: Per-iteration columns of a curve, always present (None where not measured).
CURVE_COLUMNS = (
    "iteration",
    "train_loss",
    "elapsed_s",
    "nfe_forward",
    "nfe_backward",
    "vjp_backward",
    "steps_accepted",
    "steps_rejected",
    "steps_accepted_backward",
    "steps_rejected_backward",
    "solves",
    "heldout",
    "grad_rel_error",
)


@dataclass(frozen=True)
class TrainingCase:
    """One training run: which study, trained with which method and solver, from which seed.

    ``rtol``/``atol``/``step_size`` None take the study's published setting; ``iterations`` None
    the study's budget; ``max_seconds`` stops training after that much training wall time
    (None: no limit). ``eval_every`` (None: the study's) is how often the held-out metric and
    the gradient's error are checked; it is not part of the identity.
    """

    study: str
    method: str
    solver: str | None = None
    rtol: float | None = None
    atol: float | None = None
    step_size: float | None = None
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    iterations: int | None = None
    max_seconds: float | None = None
    max_steps: int | None = MAX_STEPS
    eval_every: int | None = None

    KIND = "training"

    def identity(self) -> dict[str, Any]:
        """The fields that change the result (everything but ``eval_every``)."""
        return {k: v for k, v in asdict(self).items() if k != "eval_every"}

    @property
    def case_id(self) -> str:
        """A stable identifier (resume skips ids already recorded), distinct from any gradient
        case's."""
        payload = json.dumps({"kind": self.KIND, **self.identity()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def label(self) -> str:
        """``study/method/solver/setting/dtype/device/it=N`` and ``seed=`` where it is not 0."""
        parts = [
            self.study,
            self.method,
            str(self.solver),
            setting_label(self.step_size, self.rtol, self.atol),
            self.dtype,
            self.device,
            f"it={self.iterations}",
        ]
        if self.seed != 0:
            parts.append(f"seed={self.seed}")
        if self.max_seconds is not None:
            parts.append(f"max_s={self.max_seconds:g}")
        return "/".join(parts)


def resolve(case: TrainingCase) -> TrainingCase:
    """`case` with the study's published solver, tolerances or step, budget and check interval
    filled in where it leaves them open.

    Tolerances are never derived: none given takes the study's published pair; one given takes
    the other from the published pair that has it; a pair the study does not publish must be
    given whole (rtol and atol), else it is refused naming the published pairs.
    """
    from odebench import solvers, studies

    study = studies.get(case.study)
    solver_name = case.solver or study.solver
    solver = solvers.get(solver_name)
    iterations = study.iterations if case.iterations is None else case.iterations
    eval_every = study.eval_every if case.eval_every is None else case.eval_every
    common = dict(solver=solver_name, iterations=iterations, eval_every=eval_every)
    if solver.adaptive:
        rtol, atol = _tolerances(study, case.rtol, case.atol)
        max_steps = MAX_STEPS if case.max_steps is None else case.max_steps
        return replace(case, rtol=rtol, atol=atol, step_size=None, max_steps=max_steps, **common)
    step = study.step_size if case.step_size is None else case.step_size
    return replace(case, rtol=None, atol=None, step_size=step, max_steps=None, **common)


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

    @classmethod
    def failed(cls, case: TrainingCase, status: str, error: str, **measured: Any) -> TrainingRecord:
        """A record of a run that did not finish; a ``partial`` curve (streamed by a worker that
        was then killed) is kept as the curve, with the iterations it completed."""
        partial = measured.pop("partial", None)
        if partial and "curve" not in measured:
            from odebench import studies

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

__all__ = [
    "CURVE_COLUMNS",
    "TRAINING_CASE_FIELDS",
    "TRAINING_FIELDS",
    "TrainingCase",
    "TrainingRecord",
    "resolve",
    "summarise",
]
