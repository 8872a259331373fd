"""compare: regressions, improvements, changes and one-sided cases between two frames."""

from __future__ import annotations

import pytest
from report_synthetic import frame_of, synthetic_records

from odebench.report import compare


@pytest.fixture
def base():
    return frame_of(synthetic_records())


def _row(frame, method="adjoint", task="linear", size=8, rtol=1e-4):
    hit = frame[
        (frame.method == method) & (frame.task == task) & (frame["size"] == size) & (frame.rtol == rtol)
    ]
    assert len(hit) == 1
    return hit.index[0]


def test_identical_frames_do_not_regress(base):
    result = compare(base, base.copy())
    assert not result.regressed and not result.improved
    assert result.changes == () and result.only_in_base == () and result.only_in_new == ()
    assert result.n_common == len(base)
    assert "no regression" in result.markdown


def test_doubled_time_regresses_naming_case_and_metric(base):
    new = base.copy()
    i = _row(new)
    new.loc[i, "time_backward_s"] *= 2
    result = compare(base, new)
    assert result.regressed
    (delta,) = result.regressions
    assert delta.metric == "time_backward_s" and delta.ratio == pytest.approx(2)
    assert delta.label == "linear[8]/adjoint/dopri5/tol=0.0001/float64/cpu/atol=1e-06"
    assert f"| {delta.label} | time_backward_s | 0.5 | 1 | 2x |" in result.markdown
    assert "**REGRESSED**" in result.markdown


def test_time_within_factor_is_noise_and_faster_is_an_improvement(base):
    new = base.copy()
    new.loc[_row(new), "time_forward_s"] *= 1.05
    new.loc[_row(new, "aca"), "peak_memory_bytes"] //= 2
    result = compare(base, new)
    assert not result.regressed
    assert [(d.metric, d.label.split("/")[1]) for d in result.improvements] == [("peak_memory_bytes", "aca")]


@pytest.mark.parametrize("step, regressed", [(1, True), (-1, False)])
def test_any_nfe_change_counts(base, step, regressed):
    new = base.copy()
    new.loc[_row(new, "seminorm"), "nfe_backward"] += step
    result = compare(base, new)
    assert result.regressed is regressed and result.improved is not regressed
    deltas = result.regressions or result.improvements
    assert [d.metric for d in deltas] == ["nfe_backward"]


def test_gradient_error_changes_beyond_tight_tolerance(base):
    new = base.copy()
    new.loc[_row(new, "aca"), "grad_rel_error"] *= 1 + 1e-9
    assert not compare(base, new).regressed
    new.loc[_row(new, "aca"), "grad_rel_error"] *= 1.01
    assert [d.metric for d in compare(base, new).regressions] == ["grad_rel_error"]


def test_status_ok_to_failed_regresses_and_back_improves(base):
    new = base.copy()
    i = _row(new, "symplectic")
    new.loc[i, ["status", "error"]] = ["nan", "NaN in the adjoint state"]
    result = compare(base, new)
    assert [(d.metric, d.new) for d in result.regressions] == [("status", "nan: NaN in the adjoint state")]
    assert compare(new, base).improved


def test_cases_only_in_one_side_are_listed(base):
    new = base.drop(index=_row(base, "naive", "spiral", 32, 1e-6))
    result = compare(base, new)
    assert not result.regressed
    assert [r.label for r in result.only_in_base] == ["spiral[32]/naive/dopri5/tol=1e-06/float64/cpu"]
    assert compare(new, base).only_in_new == result.only_in_base
    assert "## Only in base (1)" in result.markdown and result.only_in_base[0].case_id in result.markdown


def test_descriptive_changes_and_hosts_are_reported(base):
    new = base.copy()
    new.loc[_row(new), "method_backend"] = "torchdiffeq"
    new["meta_hostname"] = "elsewhere"
    result = compare(base, new)
    assert not result.regressed and [d.metric for d in result.changes] == ["method_backend"]
    assert "different hosts (testhost vs elsewhere)" in result.markdown


def test_factor_below_one_is_rejected(base):
    with pytest.raises(ValueError, match="factor"):
        compare(base, base, factor=0.9)
