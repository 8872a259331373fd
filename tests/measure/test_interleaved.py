"""Interleaved time ratios: rounds, rotation, the statistic, and the ratio records built on them."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from odebench.comparison import compare
from odebench.jobs.ratio import RatioCase, RatioRecord, run_ratios
from odebench.measure.interleaved import interleaved_ratios
from odebench.policy import Policy


def fake_clock(durations: dict[str, list[float]], calls: list[str]):
    """A clock that advances by the next duration of whichever run was called last."""
    now = [0.0]
    position = dict.fromkeys(durations, 0)
    ticks = itertools.count()

    def clock():
        if next(ticks) % 2 == 1:  # the reading after a run: advance by its duration
            name = calls[-1]
            now[0] += durations[name][position[name]]
            position[name] += 1
        return now[0]

    return clock


def test_ratios_are_per_round_medians_and_the_order_rotates():
    calls: list[str] = []
    durations = {"naive": [1.0, 1.0, 2.0, 2.0, 4.0], "aca": [1.1, 1.2, 2.2, 2.4, 9.0], "adj": [5.0] * 5}
    runs = {name: (lambda name=name: calls.append(name)) for name in durations}
    stats, base = interleaved_ratios(runs, "naive", rounds=4, warmup=1, clock=fake_clock(durations, calls))
    # the warm-up round's times are discarded; rounds 2-5 give aca/naive 1.2, 1.1, 1.2, 2.25
    aca = stats["aca"]
    assert (aca.median, aca.q25, aca.q75, aca.rounds) == (
        pytest.approx(1.2),
        pytest.approx(1.175),
        pytest.approx(1.4625),
        4,
    )
    assert stats["naive"].median == 1.0 and base == 2.0
    assert calls[:6] == ["naive", "aca", "adj", "aca", "adj", "naive"]


def test_a_time_budget_stops_after_the_least_rounds_once_spent():
    calls: list[str] = []
    durations = {"naive": [1.0] * 15, "aca": [2.0] * 15}
    runs = {name: (lambda name=name: calls.append(name)) for name in durations}
    clock = fake_clock(durations, calls)
    stats, _ = interleaved_ratios(runs, "naive", rounds=15, warmup=0, budget_s=4.0, min_rounds=5, clock=clock)
    assert stats["aca"].rounds == 5 and stats["aca"].median == 2.0  # 3 s a round: over 4 s, but 5 at least
    calls.clear()
    stats, _ = interleaved_ratios(
        runs, "naive", rounds=3, warmup=0, budget_s=100.0, clock=fake_clock(durations, calls)
    )
    assert stats["aca"].rounds == 3  # never more than `rounds`


def test_a_method_that_fails_is_left_out_and_the_others_are_timed(faults_registered):
    case = RatioCase(task="linear", methods=("aca", "fault_raise", "fault_nan"), size=2, rtol=1e-4, rounds=3)
    record = run_ratios(case)
    assert record.status == "ok" and list(record.ratios) == ["aca"] and len(record.round_ratios["aca"]) == 3
    assert record.failed_methods == {
        "fault_raise": "error: RuntimeError: injected failure",
        "fault_nan": record.failed_methods["fault_nan"],
    }
    assert record.failed_methods["fault_nan"].startswith("nan: ")
    broken = run_ratios(RatioCase(task="linear", methods=("aca",), baseline="fault_raise", size=2, rtol=1e-4))
    assert broken.status == "error" and broken.ratios == {}  # the baseline failing fails the case


def test_a_baseline_outside_the_runs_or_no_rounds_is_refused():
    with pytest.raises(ValueError, match="baseline 'x' is not among the runs"):
        interleaved_ratios({"a": lambda: None}, "x", rounds=3)
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        interleaved_ratios({"a": lambda: None}, "a", rounds=0)


def test_a_ratio_case_times_real_methods_and_round_trips_through_its_record():
    case = RatioCase(task="linear", methods=("aca", "adjoint"), size=2, rtol=1e-4, rounds=3)
    record = run_ratios(case)
    assert record.status == "ok" and set(record.ratios) == {"aca", "adjoint"}
    assert record.case.atol == pytest.approx(1e-6) and record.case.size == 2  # resolved as a gradient case
    assert all(record.ratios_q25[m] <= record.ratios[m] <= record.ratios_q75[m] for m in record.ratios)
    again = RatioRecord.from_dict(record.to_dict())
    assert again == record and again.case.case_id == record.case_id
    assert (
        RatioCase(task="linear", methods=("aca",), rounds=9).case_id
        == RatioCase(task="linear", methods=("aca",)).case_id
    )


def _ratios(value: float, status: str = "ok") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"case_id": "c1", "task": "mlp", "methods": "aca", "baseline": "naive", "solver": "dopri5",
             "rtol": 1e-6, "status": status, "method": "aca", "ratio": value}
        ]
    )  # fmt: skip


@pytest.mark.parametrize("new, regressed", [(1.25, False), (1.35, True), (0.7, False)])
def test_compare_judges_interleaved_ratios_by_the_policy_factor(new, regressed):
    empty = pd.DataFrame()
    result = compare(
        empty, empty, Policy(interleaved_factor=1.3), base_ratios=_ratios(1.0), new_ratios=_ratios(new)
    )
    assert result.regressed is regressed
    deltas = result.regressions or result.improvements
    assert [d.metric for d in deltas] == ([] if new == 1.25 else ["interleaved_ratio"])


def test_a_missing_or_failed_ratio_case_regresses():
    empty = pd.DataFrame()
    failed = _ratios(float("nan"), status="error")
    assert compare(empty, empty, base_ratios=_ratios(1.0), new_ratios=failed).regressed
    missing = compare(empty, empty, base_ratios=_ratios(1.0), new_ratios=_ratios(1.0).assign(case_id="c2"))
    assert missing.regressed and [r.case_id for r in missing.only_in_base] == ["c1"]  # a case counts once
