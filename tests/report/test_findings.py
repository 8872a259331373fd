"""The published-claim checks on hand-made frames."""

from __future__ import annotations

from report_synthetic import frame_of, synthetic_records

from odebench.record import Case, Record
from odebench.report.data import ok_rows, prepare
from odebench.report.findings import (
    FAILS,
    HOLDS,
    PARTLY,
    UNTESTABLE,
    check_all,
    lower_error_than_adjoint,
    memory_order,
    seminorm_backward_nfe,
)


def _ok(records):
    return ok_rows(prepare(frame_of(records)))


def test_planted_effects_hold():
    findings = check_all(_ok(synthetic_records()))
    assert [f.verdict for f in findings] == [HOLDS] * 4
    assert findings[0].measured.startswith("median 40% fewer backward NFE over 8 matching cases")


def _pair(method, error, at_resolution, rtol, nfe=100):
    case = Case(task="t", method=method, rtol=rtol)
    return Record(
        case,
        case.case_id,
        "ok",
        grad_rel_error=error,
        at_reference_resolution=at_resolution,
        nfe_backward=nfe,
    )


def test_pairs_both_at_reference_resolution_are_left_out():
    records = [
        _pair("aca", 1e-9, True, 1e-4),
        _pair("adjoint", 1e-9, True, 1e-4),
        _pair("aca", 1e-3, False, 1e-6),
        _pair("adjoint", 1e-5, False, 1e-6),
    ]
    finding = lower_error_than_adjoint(_ok(records), "aca", "src")
    assert finding.verdict == FAILS
    assert (
        "lower in 0 of 1" in finding.measured
        and "1 cases with both at reference resolution" in finding.measured
    )
    only_unresolved = lower_error_than_adjoint(_ok(records[:2]), "aca", "src")
    assert (
        only_unresolved.verdict == UNTESTABLE
        and "both errors are at reference resolution" in only_unresolved.measured
    )


def test_seminorm_untestable_without_matching_cases():
    records = [_pair("seminorm", 1e-5, False, 1e-4), _pair("adjoint", 1e-5, False, 1e-6)]
    finding = seminorm_backward_nfe(_ok(records))
    assert finding.verdict == UNTESTABLE
    assert "no case where seminorm, adjoint all succeeded" in finding.measured
    assert "no successful record of seminorm" in seminorm_backward_nfe(_ok(records[1:])).measured


def test_memory_order_partly_holds_and_uses_largest_size_tightest_tolerance():
    records = []
    for task, order in (("a", (1, 2, 3)), ("b", (3, 2, 1))):
        for size, rtol, scale in ((4, 1e-6, 1), (16, 1e-4, 10), (16, 1e-6, 100)):
            for method, mem in zip(("symplectic", "aca", "naive"), order):
                case = Case(task=task, method=method, rtol=rtol, size=size)
                records.append(Record(case, case.case_id, "ok", peak_memory_bytes=mem * scale * 2**20))
    finding = memory_order(_ok(records))
    assert finding.verdict == PARTLY
    assert "in order in 1 of 2" in finding.measured
    assert "a[16] at rtol=1e-06: symplectic 100 MiB, aca 200 MiB, naive 300 MiB" in finding.measured
