"""compare: regressions, improvements, changes and one-sided cases between two frames, judged by
the policy that `odebench compare` and the CI gate share."""

from __future__ import annotations

import pytest

from odebench.comparison import compare, render_comparison
from odebench.errors import InvalidInputError
from odebench.policy import Policy
from tests.report.report_synthetic import frame_of, synthetic_records


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
    assert "no regression" in render_comparison(result)


def test_a_method_slower_relative_to_naive_in_its_run_regresses_when_asked(base):
    """Times are not judged by default; with a ratio factor, each method's time over naive's in
    the same run is."""
    new = base.copy()
    new.loc[_row(new), "time_backward_s"] *= 2  # adjoint: 0.6 s -> 1.1 s total; naive 0.5 s
    assert not compare(base, new).regressed
    rendered = render_comparison(compare(base, new))
    assert "per-case times are not judged" in rendered
    assert "interleaved time ratios (methods timed round by round in one process) beyond 1.3x" in rendered
    result = compare(base, new, Policy(ratio_factor=1.5))
    assert result.regressed
    (delta,) = result.regressions
    assert delta.label == "linear[8]/adjoint/dopri5/tol=0.0001/float64/cpu"
    assert delta.metric == "time_ratio_to_naive"
    assert (delta.base, delta.new) == (pytest.approx(1.2), pytest.approx(2.2))
    markdown = render_comparison(result)
    assert f"| {delta.label} | time_ratio_to_naive | 1.2 | 2.2 | 1.833x |" in markdown
    assert "**REGRESSED**" in markdown


def test_absolute_times_are_judged_only_when_asked(base):
    new = base.copy()
    new["time_forward_s"] *= 1.6  # the whole run is slower: ratios unchanged
    new["time_backward_s"] *= 1.6
    assert not compare(base, new).regressed
    slower = compare(base, new, Policy(time_factor=1.5))
    assert slower.regressed and {d.metric for d in slower.regressions} == {
        "time_forward_s",
        "time_backward_s",
    }


def test_ratio_within_factor_is_noise_and_less_memory_is_an_improvement(base):
    new = base.copy()
    new.loc[_row(new), "time_backward_s"] *= 1.3  # ratio 1.2 -> 1.5: below 1.5x of 1.2
    new.loc[_row(new, "aca"), "peak_memory_bytes"] //= 2
    result = compare(base, new, Policy(ratio_factor=1.5))
    assert not result.regressed
    assert [(d.metric, d.label.split("/")[1]) for d in result.improvements] == [("peak_memory_bytes", "aca")]


def test_memory_needs_both_the_factor_and_the_floor(base):
    new = base.copy()
    i = _row(new, "symplectic")  # 151,572 bytes
    new.loc[i, "peak_memory_bytes"] += 20_000  # +13%, but under the 32 KiB floor
    assert not compare(base, new).regressed
    new.loc[i, "peak_memory_bytes"] += 20_000  # +26% and 40 KB
    assert [d.metric for d in compare(base, new).regressions] == ["peak_memory_bytes"]


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


@pytest.mark.parametrize("metric", ["grad_rel_error", "peak_memory_bytes", "nfe_backward"])
@pytest.mark.parametrize("lost", [float("nan"), None, float("inf")])
def test_a_measurement_that_disappears_or_becomes_non_finite_regresses(base, metric, lost):
    new = base.copy()
    new[metric] = new[metric].astype(float)
    new.loc[_row(new, "aca"), metric] = lost
    result = compare(base, new)
    assert result.regressed and [d.metric for d in result.regressions] == [metric]


def test_an_infinite_base_is_reported_not_a_free_pass(base):
    base = base.copy()
    base.loc[_row(base, "aca"), "grad_rel_error"] = float("inf")
    result = compare(base, base.assign(grad_rel_error=base["grad_rel_error"].replace(float("inf"), 1e-3)))
    assert not result.regressed
    assert [(d.metric, d.base, d.new) for d in result.changes] == [("grad_rel_error", float("inf"), 1e-3)]


def test_round_off_errors_move_freely_below_the_absolute_floor(base):
    base = base.assign(grad_rel_error_discrete=2e-16)
    new = base.assign(grad_rel_error_discrete=6e-16)
    assert not compare(base, new).regressed


def test_status_ok_to_failed_regresses_and_back_improves(base):
    new = base.copy()
    i = _row(new, "symplectic")
    new.loc[i, ["status", "error"]] = ["nan", "NaN in the adjoint state"]
    result = compare(base, new)
    assert [(d.metric, d.new) for d in result.regressions] == [("status", "nan: NaN in the adjoint state")]
    assert compare(new, base).improved


def test_a_case_missing_from_the_new_run_is_a_regression(base):
    new = base.drop(index=_row(base, "naive", "spiral", 32, 1e-6))
    result = compare(base, new)
    assert result.regressed and result.regressions == ()
    assert [r.label for r in result.only_in_base] == ["spiral[32]/naive/dopri5/tol=1e-06/float64/cpu"]
    assert compare(new, base).only_in_new == result.only_in_base and not compare(new, base).regressed
    markdown = render_comparison(result)
    assert "## Only in base (1)" in markdown and result.only_in_base[0].case_id in markdown


def test_an_empty_run_is_refused(base):
    with pytest.raises(InvalidInputError, match="new results hold no records"):
        compare(base, base.iloc[:0])
    with pytest.raises(InvalidInputError, match="base results hold no records"):
        compare(base.iloc[:0], base)


def test_descriptive_changes_and_hosts_are_reported(base):
    new = base.copy()
    new.loc[_row(new), "method_backend"] = "torchdiffeq"
    new["meta_hostname"] = "elsewhere"
    result = compare(base, new)
    assert not result.regressed and [d.metric for d in result.changes] == ["method_backend"]
    assert "different hosts (testhost vs elsewhere)" in render_comparison(result)


@pytest.mark.parametrize("field", ["ratio_factor", "memory_factor", "time_factor"])
def test_factor_below_one_is_rejected(field):
    with pytest.raises(InvalidInputError, match=f"{field} must be a finite number >= 1"):
        Policy(**{field: 0.9})


def test_a_case_scored_against_another_reference_is_flagged(base):
    new = base.copy()
    new.loc[_row(new, "aca"), "reference_hash"] = "doubled0doubled0"
    result = compare(base, new)
    assert [d.metric for d in result.changes] == ["reference_hash"]
    assert "1 case(s) were scored against a different reference gradient" in render_comparison(result)


def test_exact_memory_counts_on_any_change(base):
    """Tensor bytes from the allocator backend are the same in every run of the same code, so one
    byte more is a regression; memray's figure (the synthetic default) keeps its noise margins."""
    base = base.assign(memory_backend="allocator")
    new = base.copy()
    i = _row(new, "symplectic")
    new.loc[i, "peak_memory_bytes"] += 1
    assert [d.metric for d in compare(base, new).regressions] == ["peak_memory_bytes"]
    new.loc[i, "peak_memory_bytes"] -= 2
    assert [d.metric for d in compare(base, new).improvements] == ["peak_memory_bytes"]
    other = new.assign(memory_backend="memray")  # a backend change is said, not judged as memory
    result = compare(base, other)
    assert not result.regressed and {d.metric for d in result.changes} == {"memory_backend"}
