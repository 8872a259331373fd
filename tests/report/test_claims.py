"""The one claim evaluator on hand-made frames: sign-test intervals, pairs that differ in the
compared field alone, and the verdict rules (holds, holds in part, not reproduced, no
detectable difference, insufficient evidence, cannot test)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from report_synthetic import frame_of, synthetic_records

from odebench.claims import DIFFERENCE, HIGHER, AtLeast, Claim, Metric, Part
from odebench.jobs.gradient import IDENTITY_FIELDS, Case, Record
from odebench.report.claims import (
    DIRECTION,
    HOLDS,
    INCONCLUSIVE,
    INSUFFICIENT,
    NO_DIFFERENCE,
    NOT_REPRODUCED,
    PART,
    TRAINING_KEYS,
    UNTESTABLE,
    evaluate,
    gradient_findings,
    median_interval,
    with_curve_metrics,
)
from odebench.report.data import ok_rows, prepare

ERROR = Metric("heldout", "test error")
TIME = Metric("train_time_s", "training time")


def runs(values: dict[str, list[float]], column: str = "heldout", **fixed) -> pd.DataFrame:
    """Training runs: one per method and seed (seed i gets each method's i-th value)."""
    rows = []
    for method, column_values in values.items():
        for seed, value in enumerate(column_values):
            rows.append(
                {"study": "s", "method": method, "seed": seed, "iterations": 10, column: value, **fixed}
            )
    frame = pd.DataFrame(rows)
    for key in TRAINING_KEYS:
        if key not in frame.columns:
            frame[key] = None
    return frame


def claim(*parts: Part, deviations=()) -> Claim:
    return Claim("a claim", "a paper", "half", parts, deviations=deviations)


def versus(metric=ERROR, published=None, **kw) -> Part:
    return Part(
        "error vs b", metric, treatment={"method": "a"}, control={"method": "b"}, published=published, **kw
    )


def test_the_interval_is_the_sign_test_interval_of_the_median():
    five = median_interval([5, 1, 4, 2, 3])
    assert (five.median, five.low, five.high) == (3, 1, 5)
    assert five.coverage == pytest.approx(1 - 2 / 32)  # 93.75 %: the range of 5 values
    ten = median_interval(range(10))
    assert (ten.low, ten.high) == (1, 8)  # 2nd and 9th of 10
    assert ten.coverage == pytest.approx(1 - 2 * 11 / 1024)


def test_two_identical_run_sets_show_no_detectable_difference():
    same = [0.08, 0.11, 0.09, 0.10, 0.07]
    finding = evaluate(claim(versus()), runs({"a": same, "b": same}), TRAINING_KEYS)
    assert finding.verdict == NO_DIFFERENCE and finding.n == 5
    assert finding.parts[0].interval.low == finding.parts[0].interval.high == 1.0


def test_a_clear_effect_holds_and_its_opposite_is_not_reproduced_at_this_scale():
    low, high = [0.04, 0.05, 0.045, 0.05, 0.055], [0.10, 0.09, 0.11, 0.10, 0.095]
    holds = evaluate(claim(versus(published=0.5)), runs({"a": low, "b": high}), TRAINING_KEYS)
    assert holds.verdict == HOLDS
    assert holds.measured.startswith(
        "error vs b: a/b median 0.5 (93.8% CI 0.4 to 0.5789); published 0.5, n = 5"
    )
    opposite = claim(versus(published=0.5), deviations=("smaller data",))
    finding = evaluate(opposite, runs({"a": high, "b": low}), TRAINING_KEYS)
    assert finding.verdict == f"{NOT_REPRODUCED} at this scale"
    assert evaluate(claim(versus()), runs({"a": high, "b": low}), TRAINING_KEYS).verdict == NOT_REPRODUCED


def test_a_split_of_seed_pairs_is_no_detectable_difference_not_a_refutation():
    """Three of five pairs one way, two the other: the interval covers 1 (the old rule called
    such a split 'does not hold')."""
    a, b = [1.0, 1.0, 1.0, 2.0, 2.0], [2.0, 2.0, 2.0, 1.0, 1.0]
    finding = evaluate(claim(versus(), deviations=("x",)), runs({"a": a, "b": b}), TRAINING_KEYS)
    assert finding.verdict == f"{NO_DIFFERENCE} at this scale"


def test_an_effect_short_of_half_the_published_size_holds_in_direction_only():
    a, b = [0.9] * 5, [1.0] * 5  # 10 % lower where 50 % was published
    frame = runs({"a": a, "b": b}).assign(train_time_s=[1.0] * 5 + [2.0] * 5)
    result = evaluate(claim(versus(published=0.5), versus(TIME, published=0.5)), frame, TRAINING_KEYS)
    assert [p.verdict for p in result.parts] == [DIRECTION, HOLDS]
    assert result.verdict == f"{PART}: error vs b (direction only), error vs b"


def test_a_no_worse_part_holds_within_its_margin_and_is_inconclusive_across_it():
    """ "At equal or better accuracy": a non-inferiority test with the negligible band as margin."""
    part = versus(no_worse=True, negligible=0.1)
    same = [0.08, 0.11, 0.09, 0.10, 0.07]
    assert evaluate(claim(part), runs({"a": same, "b": same}), TRAINING_KEYS).verdict == HOLDS
    wide = runs({"a": [1.0, 1.0, 1.3, 0.8, 1.0], "b": [1.0] * 5})
    assert evaluate(claim(part), wide, TRAINING_KEYS).verdict == INCONCLUSIVE
    worse = runs({"a": [1.3] * 5, "b": [1.0] * 5})
    assert evaluate(claim(part), worse, TRAINING_KEYS).verdict == NOT_REPRODUCED
    # "Does not fall": higher is the published side; a drop beyond the margin refutes it.
    kept = versus(no_worse=True, negligible=0.5, direction=HIGHER)
    assert evaluate(claim(kept), runs({"a": [0.9] * 5, "b": [1.0] * 5}), TRAINING_KEYS).verdict == HOLDS
    assert (
        evaluate(claim(kept), runs({"a": [0.1] * 5, "b": [1.0] * 5}), TRAINING_KEYS).verdict == NOT_REPRODUCED
    )
    with pytest.raises(ValueError, match="margin"):
        versus(no_worse=True)


def test_fewer_than_five_pairs_is_insufficient_evidence_and_a_missing_method_cannot_be_tested():
    four = evaluate(claim(versus()), runs({"a": [1] * 4, "b": [2] * 4}), TRAINING_KEYS)
    assert (
        four.verdict == INSUFFICIENT
        and four.measured == "error vs b: only 4 pairs (a verdict needs at least 5)"
    )
    absent = evaluate(claim(versus()), runs({"a": [1] * 5}), TRAINING_KEYS)
    assert absent.verdict == UNTESTABLE and "no successful run with method b" in absent.measured


def test_only_runs_equal_in_every_other_field_are_paired():
    frame = pd.concat([runs({"a": [1] * 5}), runs({"b": [2] * 5}).assign(iterations=20)])
    assert evaluate(claim(versus()), frame, TRAINING_KEYS).n == 0


def test_a_one_sample_part_compares_each_run_with_the_published_bound():
    share = Metric("accepted_share", "share", scale=DIFFERENCE)
    part = Part("at least 99 %", share, treatment={"method": "a"}, bound=0.99, direction=HIGHER)
    frame = runs({"a": [0.999, 0.998, 1.0, 0.997, 0.9995]}, column="accepted_share")
    finding = evaluate(claim(part), frame, TRAINING_KEYS)
    assert finding.verdict == HOLDS
    assert (
        finding.measured
        == "at least 99 %: share median 0.999 (93.8% CI 0.997 to 1); bound 0.99, n = 5: holds"
    )
    below = runs({"a": [0.9] * 5}, column="accepted_share")
    assert evaluate(claim(part), below, TRAINING_KEYS).verdict == NOT_REPRODUCED


def test_a_window_of_the_curve_is_averaged_per_run_and_uncovered_windows_are_missing():
    curves = pd.DataFrame(
        {
            "case_id": ["r1"] * 4 + ["r2"] * 2,
            "iteration": [0, 1, 2, 3, 0, 1],
            "train_loss": [100.0, 10.0, 1.0, 0.1, 5.0, 5.0],
        }
    )
    metric = Metric("train_loss", "loss", window=(1, 3), log=True)
    out = with_curve_metrics(pd.DataFrame({"case_id": ["r1", "r2"]}), curves, [metric])
    values = out["log:train_loss@1:3"].tolist()
    assert values[0] == pytest.approx(math.sqrt(10.0 * 1.0)) and math.isnan(values[1])


def _case(method, error, *, task="t", resolved=False, **kw):
    case = Case(task=task, method=method, **kw)
    return Record(
        case, case.case_id, "ok", grad_rel_error=error, at_reference_resolution=resolved, steps_accepted=10
    )


def test_gradient_parts_leave_out_fixed_steps_unresolved_pairs_and_few_steps():
    part = Part(
        "error",
        Metric("grad_rel_error", "error", resolution="at_reference_resolution"),
        treatment={"method": "aca"},
        control={"method": "adjoint"},
        where={"step_size": None},
    )
    records = [
        *(
            _case(m, e, task=f"a{i}", rtol=1e-4)
            for i in range(5)
            for m, e in (("aca", 1e-6), ("adjoint", 1e-3))
        ),
        *(
            _case(m, 1e-9, task=f"f{i}", solver="rk4", step_size=0.1)
            for i in range(5)
            for m in ("aca", "adjoint")
        ),
        *(_case(m, 1e-13, task="r", rtol=1e-4, resolved=True) for m in ("aca", "adjoint")),
    ]
    ok = ok_rows(prepare(frame_of(records)))
    result = evaluate(claim(part), ok, IDENTITY_FIELDS)
    assert result.n == 5 and result.verdict == HOLDS
    many_steps = Part("e", Metric("grad_rel_error", "e"), {"method": "aca"}, {"method": "adjoint"},
                      where={"steps_accepted": AtLeast(50)})  # fmt: skip
    assert evaluate(claim(many_steps), ok, IDENTITY_FIELDS).n == 0


def test_planted_gradient_effects():
    """Seminorm 40 % fewer backward NFE (published 40 %): holds. ACA's error below the adjoint's
    everywhere: holds. Symplectic's below in 6 of 8: no detectable difference (its interval
    covers 1). Both discrete-exact; memory symplectic < aca < naive at >= 50 steps: holds."""
    every = gradient_findings(ok_rows(prepare(frame_of(synthetic_records()))))
    # The claims of methods the synthetic run lacks (every newer method's) cannot be tested.
    findings = [f for f in every if f.verdict != UNTESTABLE]
    assert len(every) > len(findings)
    verdicts = {f.claim.sentence.split(" ")[0] + f"/{i}": f.verdict for i, f in enumerate(findings)}
    assert verdicts == {
        "The/0": HOLDS,
        "aca/1": HOLDS,
        "aca/2": HOLDS,
        "symplectic/3": f"{NO_DIFFERENCE} on these tasks",
        "symplectic/4": HOLDS,
        "At/5": HOLDS,
    }
    assert [f.n for f in findings] == [8, 8, 8, 8, 8, 6]
    assert findings[0].measured == (
        "backward NFE, seminorm vs adjoint: seminorm/adjoint median 0.6 (93.0% CI 0.6 to 0.6); "
        "published 0.6, n = 8: holds"
    )
