"""The published-claim checks on hand-made frames: like-for-like pairs, n, and the verdict rules."""

from __future__ import annotations

from report_synthetic import frame_of, synthetic_records

from odebench.record import Case, Record
from odebench.report.data import ok_rows, prepare
from odebench.report.findings import (
    FAILS,
    HOLDS,
    INSUFFICIENT,
    MIN_CASES,
    PARTLY,
    UNTESTABLE,
    check_all,
    discrete_exact,
    lower_error_than_adjoint,
    memory_order,
    seminorm_backward_nfe,
)


def _ok(records):
    return ok_rows(prepare(frame_of(records)))


def test_planted_effects_hold_with_n_and_spread():
    findings = check_all(_ok(synthetic_records()))
    assert [f.verdict for f in findings] == [HOLDS] * 5
    assert [f.n for f in findings] == [8, 8, 8, 16, 6]
    assert findings[0].measured == (
        "median 40% (IQR 40% to 40%, range 40% to 40%) fewer backward NFE over n = 8 cases (dopri5 8)"
    )
    assert findings[2].measured.startswith("lower in 6 of n = 8 adaptive cases (75%; dopri5 8)")
    assert "within 1e-10 in 16 of n = 16 cases" in findings[3].measured


def _pair(method, error, at_resolution, rtol, nfe=100, task="t", **case):
    case = Case(task=task, method=method, rtol=rtol, **case)
    return Record(
        case,
        case.case_id,
        "ok",
        grad_rel_error=error,
        at_reference_resolution=at_resolution,
        nfe_backward=nfe,
    )


def _pairs(n, aca_error, adjoint_error, **kw):
    return [
        record
        for i in range(n)
        for record in (
            _pair("aca", aca_error, False, 1e-4, task=f"t{i}", **kw),
            _pair("adjoint", adjoint_error, False, 1e-4, task=f"t{i}", **kw),
        )
    ]


def test_fewer_than_the_minimum_of_matching_cases_is_insufficient_evidence():
    finding = lower_error_than_adjoint(_ok(_pairs(MIN_CASES - 1, 1e-6, 1e-3)), "aca", "src")
    assert finding.verdict == INSUFFICIENT and finding.n == MIN_CASES - 1
    assert finding.measured == f"only {MIN_CASES - 1} matching adaptive cases (a verdict needs at least 5)"
    assert lower_error_than_adjoint(_ok(_pairs(MIN_CASES, 1e-6, 1e-3)), "aca", "src").verdict == HOLDS


def test_pairs_both_at_reference_resolution_are_left_out():
    records = [_pair("aca", 1e-9, True, 1e-4), _pair("adjoint", 1e-9, True, 1e-4), *_pairs(5, 1e-3, 1e-5)]
    finding = lower_error_than_adjoint(_ok(records), "aca", "src")
    assert finding.verdict == FAILS and finding.n == 5
    assert "lower in 0 of n = 5" in finding.measured
    assert "1 cases with both at reference resolution left out" in finding.measured
    only_unresolved = lower_error_than_adjoint(_ok(records[:2]), "aca", "src")
    assert only_unresolved.verdict == UNTESTABLE
    assert "both errors are at reference resolution" in only_unresolved.measured


def test_error_claims_leave_fixed_step_cases_out():
    """'At the same tolerance' means nothing on a fixed grid: rk4 pairs are not counted."""
    fixed = _pairs(6, 1e-6, 1e-3, solver="rk4", step_size=0.01)
    finding = lower_error_than_adjoint(_ok(fixed + _pairs(2, 1e-6, 1e-3)), "aca", "src")
    assert finding.verdict == INSUFFICIENT and finding.n == 2


def test_seminorm_untestable_without_matching_cases():
    records = [_pair("seminorm", 1e-5, False, 1e-4), _pair("adjoint", 1e-5, False, 1e-6)]
    finding = seminorm_backward_nfe(_ok(records))
    assert finding.verdict == UNTESTABLE
    assert "no case where seminorm, adjoint all succeeded" in finding.measured
    assert "no successful record of seminorm" in seminorm_backward_nfe(_ok(records[1:])).measured


def test_discrete_exactness_partly_holds_when_a_case_misses():
    records = []
    for i, error in enumerate([1e-16] * 5 + [1e-6]):
        case = Case(task=f"t{i}", method="aca", rtol=1e-4)
        records.append(Record(case, case.case_id, "ok", grad_rel_error_discrete=error))
    finding = discrete_exact(_ok(records))
    assert finding.verdict == PARTLY and "within 1e-10 in 5 of n = 6 cases" in finding.measured


def _memory_records(orders, steps=100):
    records = []
    for i, order in enumerate(orders):
        for method, mem in zip(("symplectic", "aca", "naive"), order):
            case = Case(task=f"t{i}", method=method, rtol=1e-6)
            records.append(
                Record(case, case.case_id, "ok", peak_memory_bytes=int(mem * 2**20), steps_accepted=steps)
            )
    return records


def test_memory_order_counts_only_clear_orders_in_cases_with_many_steps():
    in_order, reversed_, within_noise = (1, 2, 3), (3, 2, 1), (1.0, 1.02, 3)
    finding = memory_order(_ok(_memory_records([in_order] * 3 + [reversed_, within_noise])))
    assert finding.n == 5 and finding.verdict == PARTLY
    assert "in order (each step below the next by more than 5%) in 3 of n = 5 cases" in finding.measured
    assert "least favourable: t3 dopri5 tol=1e-06, symplectic 3 MiB vs aca 2 MiB" in finding.measured
    few_steps = memory_order(_ok(_memory_records([in_order] * 6, steps=10)))
    assert few_steps.verdict == INSUFFICIENT and "at least 50 forward steps" in few_steps.measured
