"""Speed verdicts come from same-run ratios only: planted per-round ratios in, verdicts out."""

from __future__ import annotations

import pandas as pd
import pytest
from report_synthetic import METHODS, frame_of, ratio_frame_of, synthetic_ratios, synthetic_records

from odebench.report.data import prepare
from odebench.report.recommend import pareto, per_method, recommend, wins_table
from odebench.report.speed import GroupSpeed, prepare_ratios, speed_table, speeds
from odebench.report.tables import TIME_VS_NAIVE, measurements_table

GROUP = ("linear[8] · dopri5 · float64 · cpu", "tol=0.0001")


@pytest.fixture(scope="module")
def timed():
    return speeds(prepare_ratios(ratio_frame_of(synthetic_ratios())))


@pytest.fixture(scope="module")
def measured():
    return prepare(frame_of(synthetic_records()))


def test_pairs_are_compared_round_by_round_and_a_range_covering_one_is_a_tie(timed):
    speed = timed[GROUP]
    verdicts = {m: speed.compare(m, "naive").verdict for m in METHODS[1:]}
    assert verdicts == {"adjoint": "slower", "seminorm": "tie", "aca": "faster", "symplectic": "faster"}
    aca_over_symplectic = speed.compare("aca", "symplectic")
    assert aca_over_symplectic.verdict == "tie" and aca_over_symplectic.rounds == 9
    assert aca_over_symplectic.q25 < 1 < aca_over_symplectic.q75
    assert speed.compare("adjoint", "naive").median == pytest.approx(1.2 * 1.0)
    assert speed.fastest(METHODS) == ["aca", "symplectic"]


def test_files_without_per_round_ratios_bound_a_pair_by_the_quartiles(timed):
    old = speeds(prepare_ratios(ratio_frame_of(synthetic_ratios(rounds=False))))[GROUP]
    new = timed[GROUP]
    wide, narrow = old.compare("aca", "symplectic"), new.compare("aca", "symplectic")
    assert wide.q25 <= narrow.q25 and wide.q75 >= narrow.q75 and wide.rounds == 15  # the case setting
    assert old.compare("adjoint", "naive").verdict == "slower"


def test_seeds_and_files_pool_their_rounds():
    frame = ratio_frame_of(synthetic_ratios())
    twice = prepare_ratios(pd.concat([frame, frame.assign(case_id=frame["case_id"] + "-seed1")]))
    speed = speeds(twice)[GROUP].compare("aca", "naive")
    assert (speed.rounds, speed.runs) == (18, 2)


def test_a_tie_on_time_goes_to_the_least_memory_and_says_so(timed, measured):
    group = measured[(measured["regime"] == GROUP[0]) & (measured["setting"] == GROUP[1])]
    choice = recommend(group, timed[GROUP])
    assert choice.pick == "symplectic"  # tied with aca on time, less memory
    assert choice.reasons["aca"].startswith("meets the limits; a tie with symplectic on time (1.00x")
    assert "the time of symplectic" in choice.reasons["adjoint"]
    assert recommend(group, None).pick is None  # no same-run ratio: no speed ranking at all
    assert recommend(group, None, max_memory_mib=0.05).pick == "symplectic"  # alone in the limits


def test_pareto_reads_time_from_same_run_ratios_only(timed, measured):
    group = measured[(measured["regime"] == GROUP[0]) & (measured["setting"] == GROUP[1])]
    values = per_method(group[group["status"] == "ok"])
    assert pareto(values, None) == []
    front = pareto(values, timed[GROUP])
    assert "adjoint" not in front and "symplectic" in front  # adjoint: slower, more memory than aca


def test_tables_show_the_same_run_ratio_and_no_group_without_one_gets_a_speed_verdict(timed, measured):
    table = measurements_table(measured, timed).set_index(["regime", "setting", "method"])
    assert table.loc[(*GROUP, "adjoint"), TIME_VS_NAIVE] == "1.20x [1.18-1.22]"
    assert table.loc[(*GROUP, "naive"), TIME_VS_NAIVE] == "1x"
    wins = wins_table(measured, timed).set_index(["regime", "setting"])
    assert wins.loc[GROUP, "fastest (same-run ratio)"] == "aca, symplectic (a tie)"
    assert wins.loc[GROUP, "pick if memory is tight"] == "symplectic"
    untimed = wins_table(measured).set_index(["regime", "setting"])
    assert untimed.loc[GROUP, "fastest (same-run ratio)"] == "– (no same-run ratio)"
    assert untimed.loc[GROUP, "Pareto set"] == "–"
    assert untimed.loc[GROUP, "pick if accuracy matters"] == "naive"  # alone within the limits


def test_speed_table_lists_failed_cases_and_methods_left_out():
    records = synthetic_ratios()[:1]
    record = records[0]
    failed = type(record)(
        record.case,
        record.case_id,
        "ok",
        ratios={"aca": 0.8},
        ratios_q25={"aca": 0.7},
        ratios_q75={"aca": 0.9},
        round_ratios={"aca": [0.7, 0.8, 0.9]},
        failed_methods={"adjoint": "underflow: underflow in dt"},
    )
    table = speed_table(prepare_ratios(ratio_frame_of([failed]))).set_index("method")
    assert table.loc["aca", "verdict"] == "faster" and table.loc["aca", "rounds"] == 3
    assert table.loc["adjoint", "verdict"] == "not timed (underflow)"
    assert GroupSpeed(prepare_ratios(ratio_frame_of([failed]))).compare("adjoint", "naive") is None


def test_a_pair_within_the_run_to_run_resolution_is_a_tie_however_narrow_its_range():
    from odebench.report.speed import RESOLUTION, Speed

    assert Speed(0.95, 0.94, 0.96, 15, 1).verdict == "tie"  # a range clear of 1, but within 1.1x
    assert Speed(1.05, 1.04, 1.06, 15, 1).verdict == "tie"
    assert Speed(0.85, 0.84, 0.86, 15, 1).verdict == "faster"
    assert Speed(1.2, 0.9, 1.5, 15, 1).verdict == "tie"  # a range covering 1
    assert Speed(RESOLUTION * 1.01, 1.05, 1.2, 15, 1).verdict == "slower"
