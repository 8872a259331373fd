"""Same-run time ratios as a kind of job: `RatioCase` -> `run_ratios` -> `RatioRecord`.

A ratio case names one problem solved one way and the methods to time against a baseline on it
(naive by default, or a peer implementation of the same method). `run_ratios` builds every
method's solve as `run_case` would, then times them interleaved round by round in one process
(`odebench.measure.interleaved`): the steady measurement that time-regression checks (the CI
gate through `odebench compare`, asv's ratio benchmarks, the perf tests) judge.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch

from odebench.errors import OdebenchError, describe
from odebench.measure.interleaved import interleaved_ratios
from odebench.measure.timing import synchronizer
from odebench.record import MAX_STEPS, Case, RecordBase, problem_label, setting_label

#: Rounds of a ratio case unless it says otherwise (see docs/benchmarking.md for the choice).
ROUNDS = 15


@dataclass(frozen=True)
class RatioCase:
    """Time `methods` against `baseline` on one problem, interleaved for `rounds` rounds.

    The problem fields mean what they mean in `odebench.record.Case`; ``rounds`` is a setting of
    the measurement, not part of the identity.
    """

    task: str
    methods: tuple[str, ...]
    baseline: str = "naive"
    solver: str = "dopri5"
    rtol: float | None = None
    atol: float | None = None
    size: int | None = None
    step_size: float | None = None
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    max_steps: int | None = MAX_STEPS
    rounds: int = ROUNDS

    KIND = "ratio"

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "rounds"}

    @property
    def case_id(self) -> str:
        payload = json.dumps({"kind": self.KIND, **self.identity()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def label(self) -> str:
        """``task[size]/m1+m2 vs baseline/solver/setting/dtype/device``."""
        parts = [
            problem_label(self.task, self.size),
            f"{'+'.join(self.methods)} vs {self.baseline}",
            self.solver,
            setting_label(self.step_size, self.rtol, self.atol),
            self.dtype,
            self.device,
        ]
        return "/".join(parts + ([f"seed={self.seed}"] if self.seed else []))

    def case_of(self, method: str) -> Case:
        """The gradient case of one of its methods (same problem, same solve)."""
        shared = {f.name: getattr(self, f.name) for f in fields(Case) if hasattr(self, f.name)}
        return Case(**{**shared, "method": method})


def resolve(case: RatioCase) -> RatioCase:
    """`case` with size and tolerances or step made explicit, as `odebench.cases.resolve` does."""
    from odebench.cases import resolve as resolve_case

    done = resolve_case(case.case_of(case.baseline))
    keep = ("size", "rtol", "atol", "step_size", "max_steps")
    return replace(case, **{name: getattr(done, name) for name in keep})


@dataclass(frozen=True)
class RatioRecord(RecordBase):
    """Per method: the median over rounds of its time over the baseline's, with quartiles."""

    case: RatioCase
    case_id: str
    status: str
    error: str | None = None
    ratios: dict[str, float] = field(default_factory=dict)
    ratios_q25: dict[str, float] = field(default_factory=dict)
    ratios_q75: dict[str, float] = field(default_factory=dict)
    baseline_time_s: float | None = None
    wall_time_s: float | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    CASE_TYPE = RatioCase
    LINE = "ratio"


def run_ratios(case: RatioCase, *, cache_dir=None) -> RatioRecord:
    """Time the case's methods against its baseline; never raises for a failing case."""
    from odebench.harness.run import classify, prepare

    started = time.perf_counter()
    try:
        case = resolve(case)
        prepared = {m: prepare(case.case_of(m)) for m in dict.fromkeys((case.baseline, *case.methods))}
    except OdebenchError as exc:
        return RatioRecord.failed(case, "error", describe(exc))

    def run(p):
        def forward_backward():
            y0 = p.problem.y0.detach().clone().requires_grad_(True)
            loss = p.problem.loss(p.solve(p.problem.func, y0))
            torch.autograd.grad(loss, [y0, *p.problem.func.parameters()], allow_unused=True)

        return forward_backward

    with warnings.catch_warnings(record=True) as caught:
        for category in (UserWarning, RuntimeWarning):
            warnings.simplefilter("always", category)
        try:
            stats, base = interleaved_ratios(
                {m: run(p) for m, p in prepared.items()},
                case.baseline,
                rounds=case.rounds,
                sync=synchronizer(case.device),
            )
            measured = {
                "ratios": {m: s.median for m, s in stats.items() if m != case.baseline},
                "ratios_q25": {m: s.q25 for m, s in stats.items() if m != case.baseline},
                "ratios_q75": {m: s.q75 for m, s in stats.items() if m != case.baseline},
                "baseline_time_s": base,
            }
            status, error = "ok", None
        except Exception as exc:  # a method that fails makes the case a failure, with its status
            measured, status, error = {}, classify(exc), describe(exc)
    measured["warnings"] = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    measured["wall_time_s"] = time.perf_counter() - started
    return RatioRecord(case=case, case_id=case.case_id, status=status, error=error, **measured)


__all__ = ["ROUNDS", "RatioCase", "RatioRecord", "resolve", "run_ratios"]
