"""Small pieces: palette, data preparation, Pareto front, slope fit, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from report_synthetic import frame_of, synthetic_records

from odebench.comparison import compare
from odebench.jobs.gradient import Case, Record
from odebench.methods import CORE
from odebench.report.claims import gradient_findings
from odebench.report.data import case_label, ok_rows, paired, prepare
from odebench.report.plots.cost import pareto_mask
from odebench.report.plots.memory import fit_slope
from odebench.report.style import method_order, method_styles
from odebench.report.tables import TIME_VS_NAIVE, failures_table, measurements_table


def test_core_methods_keep_their_colour_whatever_else_is_present():
    full = method_styles(["aca@torchdiffeqpack", *CORE, "zeta"])
    assert method_styles(["adjoint"])["adjoint"] == full["adjoint"]
    assert (
        method_styles(["symplectic", "aca@torchdiffeqpack"])["aca@torchdiffeqpack"]
        == full["aca@torchdiffeqpack"]
    )
    assert len({s.colour for s in full.values()}) == len(full)
    assert method_order(["zeta", "aca@torchdiffeqpack", "aca", "naive"]) == [
        "naive",
        "aca",
        "aca@torchdiffeqpack",
        "zeta",
    ]


def test_pareto_mask():
    cost = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    error = np.array([5.0, 2.0, 1.0, 3.0, 5.0])
    assert pareto_mask(cost, error).tolist() == [True, True, True, False, True]


def test_fit_slope():
    x = np.array([8.0, 16.0, 32.0])
    assert abs(fit_slope(x, 3 * x) - 1) < 1e-12
    assert abs(fit_slope(x, np.full(3, 7.0))) < 1e-12
    assert fit_slope(np.array([8.0, 8.0]), np.array([1.0, 2.0])) is None


def test_prepare_adds_missing_columns_and_medians_repeated_cases():
    case = Case(task="t", method="naive", size=4)
    rows = [
        {
            "task": "t",
            "method": "naive",
            "size": 4,
            "case_id": case.case_id,
            "status": "ok",
            "time_forward_s": t,
        }
        for t in (1.0, 2.0, 6.0)
    ]
    df = prepare(pd.DataFrame(rows))
    ok = ok_rows(df)
    assert len(ok) == 1 and ok.loc[0, "time_forward_s"] == 2.0
    assert ok.loc[0, "problem"] == "t[4]" and not ok.loc[0, "at_reference_resolution"]
    assert ok.loc[0, "regime"] == "t[4] · ? · ? · ?"  # what the rows do not say stays unknown
    assert case_label(rows[0]) == case.label()


def test_paired_matches_on_everything_but_method():
    ok = ok_rows(prepare(frame_of(synthetic_records())))
    pairs = paired(ok, "seminorm", "adjoint", ["nfe_backward"])
    assert len(pairs) == 8
    assert np.allclose(pairs["nfe_backward_a"] / pairs["nfe_backward_b"], 0.6)


def test_measurements_table_keeps_groups_apart_with_ratios_to_naive():
    df = prepare(frame_of(synthetic_records()))
    table = measurements_table(df).set_index(["regime", "setting", "method"])
    # 2 tasks x 2 sizes x 2 tolerances = 8 groups; 5 methods each, plus the failed peer (2 groups)
    # and the timed-out adjoint at rtol 1e-8 (its own group)
    assert len(table) == 8 * 5 + 2 + 1
    row = table.loc[("linear[8] · dopri5 · float64 · cpu", "tol=0.0001", "adjoint")]
    assert row["time fwd [ms], own process"] == "100" and row["time bwd [ms], own process"] == "500"
    assert row["memory vs naive"] == "0.25x"  # 2e5 / 8e5
    assert row[TIME_VS_NAIVE] == "–"  # per-case times of separate processes never give a ratio
    assert row["grad error"] == "1.0e-03" and row["ok"] == "1/1"
    naive = table.loc[("linear[8] · dopri5 · float64 · cpu", "tol=0.0001", "naive")]
    assert naive["grad error"] == "5.0e-13"
    failed = table.loc[("spiral[32] · dopri5 · float64 · cpu", "tol=1e-08", "adjoint")]
    assert failed["ok"] == "0/1" and failed["grad error"] == "–"


def test_failures_table_shows_the_exception_line_of_a_traceback():
    case = Case(task="t", method="m")
    tb = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad y0'
    table = failures_table(prepare(frame_of([Record.failed(case, "error", tb)])))
    assert table.loc[0, "error"] == "ValueError: bad y0"


def test_nullable_dtypes_as_the_results_loader_gives_them():
    """results.load gives Int64/boolean/object columns with NA: the same numbers come out."""
    records = synthetic_records()
    records.append(Record(Case(task="linear", method="naive", size=64), "x", "ok", grad_rel_error=1e-3))
    plain = frame_of(records)
    nullable = plain.convert_dtypes()
    assert (
        str(nullable["nfe_backward"].dtype) == "Int64"
        and str(nullable["at_reference_resolution"].dtype) == "boolean"
    )
    a, b = prepare(plain), prepare(nullable)
    assert a["at_reference_resolution"].tolist() == b["at_reference_resolution"].tolist()
    pd.testing.assert_frame_equal(measurements_table(a), measurements_table(b))
    assert gradient_findings(ok_rows(a)) == gradient_findings(ok_rows(b))
    assert not compare(plain, nullable).regressed and not compare(plain, nullable).changes


def test_unlike_cases_are_never_pooled():
    """A dopri5 and an rk4 case of one task and method stay apart in every table and figure
    input (the report once showed their median, 9.67e-05, a number no case produced)."""
    records = []
    for solver, error, memory in (("dopri5", 1.9e-4, 5.67 * 2**20), ("rk4", 2.2e-10, 13.06 * 2**20)):
        for size in (1, 5):
            step = 0.01 if solver == "rk4" else None
            rtol = 1e-4 if solver == "dopri5" else None
            case = Case(task="spiral", method="naive", solver=solver, size=size, rtol=rtol, step_size=step)
            records.append(
                Record(case, case.case_id, "ok", grad_rel_error=error, peak_memory_bytes=int(memory * size))
            )
    df = prepare(frame_of(records))
    table = measurements_table(df)
    assert sorted(table["grad error"]) == ["1.9e-04", "1.9e-04", "2.2e-10", "2.2e-10"]
    assert list(table["setting"]) == ["tol=0.0001", "tol=0.0001", "h=0.01", "h=0.01"]
    from odebench.report.plots.memory import scaling_facets

    facets = {key: sorted(rows["peak_memory_mib"].round(2)) for key, rows in scaling_facets(ok_rows(df))}
    assert facets == {
        ("spiral", "dopri5", "tol=0.0001", "float64", "cpu"): [5.67, 28.35],
        ("spiral", "rk4", "h=0.01", "float64", "cpu"): [13.06, 65.3],
    }


def test_seeds_are_replicates_of_a_regime_never_regimes_of_their_own():
    """Three seeds of each method: one group per regime and setting, n = 3, medians over seeds."""
    from odebench.report.recommend import wins_table

    records = []
    for seed, error in zip((0, 1, 2), (1e-4, 2e-4, 9e-4)):
        for method, factor in (("naive", 1.0), ("aca", 0.5)):
            case = Case(task="linear", method=method, rtol=1e-4, atol=1e-6, size=8, seed=seed)
            records.append(
                Record(case, case.case_id, "ok", grad_rel_error=error * factor, peak_memory_bytes=10**6,
                       time_forward_s=0.1, time_backward_s=0.1)
            )  # fmt: skip
    df = prepare(frame_of(records))
    assert set(df["regime"]) == {"linear[8] · dopri5 · float64 · cpu"}
    wins = wins_table(df)
    assert len(wins) == 1 and int(wins.iloc[0]["n"]) == 3
    assert wins.iloc[0]["most accurate"].startswith("aca (1.0e-04)")  # the median of 0.5, 1 and 4.5e-4


def test_the_report_flags_a_case_recorded_against_two_references():
    from odebench.report.tables import warnings_table

    case = Case(task="linear", method="aca", rtol=1e-4, atol=1e-6, size=8)
    records = [Record(case, case.case_id, "ok", reference_hash=h) for h in ("aaaa", "bbbb")]
    table = warnings_table(prepare(frame_of(records)))
    assert table["warning"].str.contains("different reference gradients").tolist() == [True]
