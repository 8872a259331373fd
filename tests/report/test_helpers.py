"""Small pieces: palette, data preparation, Pareto front, slope fit, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from report_synthetic import frame_of, synthetic_records

from odebench.methods import CORE
from odebench.record import Case, Record
from odebench.report import compare
from odebench.report.data import case_label, ok_rows, paired, prepare
from odebench.report.findings import check_all
from odebench.report.plots.cost import pareto_mask
from odebench.report.plots.memory import fit_slope
from odebench.report.style import method_order, method_styles
from odebench.report.tables import failures_table, medians_table


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
    assert case_label(rows[0]) == case.label()


def test_paired_matches_on_everything_but_method():
    ok = ok_rows(prepare(frame_of(synthetic_records())))
    pairs = paired(ok, "seminorm", "adjoint", ["nfe_backward"])
    assert len(pairs) == 8
    assert np.allclose(pairs["nfe_backward_a"] / pairs["nfe_backward_b"], 0.6)


def test_medians_table_ratios_against_naive():
    df = prepare(frame_of(synthetic_records()))
    table = medians_table(df, ok_rows(df)).set_index(["task", "method"])
    assert table.loc[("linear", "adjoint"), "time fwd [s]"] == "0.15 (0.5x)"
    assert table.loc[("linear", "naive"), "time fwd [s]"] == "0.3"
    assert table.loc[("linear", "adjoint"), "grad error"] == "5.05e-04"  # naive at reference resolution


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
    pd.testing.assert_frame_equal(medians_table(a, ok_rows(a)), medians_table(b, ok_rows(b)))
    assert check_all(ok_rows(a)) == check_all(ok_rows(b))
    assert not compare(plain, nullable).regressed and not compare(plain, nullable).changes
