"""The size view: memory and same-run time per size, and Table 1's orderings counted per context."""

from __future__ import annotations

from odebench.report.data import ok_rows, prepare
from odebench.report.size import ordering_table, size_tables
from odebench.report.speed import prepare_ratios, speeds
from tests.report.report_synthetic import ratio_frame_of, synthetic_ratios


def test_size_table_gives_each_size_its_memory_and_time_against_naive(synthetic_frame):
    ok = ok_rows(prepare(synthetic_frame))
    groups = speeds(prepare_ratios(ratio_frame_of(synthetic_ratios())))
    tables = size_tables(ok, groups)
    assert list(tables) == ["linear (size), float64, cpu", "spiral (size), float64, cpu"]  # no knob named
    table = tables["linear (size), float64, cpu"].set_index(["setting", "method"])
    # Planted: naive 1e5 * size bytes at rtol 1e-4; aca 3e4 * sqrt(size).
    naive = table.loc[("tol=0.0001", "naive")]
    assert naive["size 8: memory"] == "0.763 MiB (1.00x) n=1"
    assert naive["size 32: memory"] == "3.05 MiB (1.00x) n=1"
    aca = table.loc[("tol=0.0001", "aca")]
    assert aca["size 8: memory"] == "0.0809 MiB (0.11x) n=1"
    assert aca["size 32: memory"] == "0.162 MiB (0.05x) n=1"
    assert len(table) == 2 * 5  # tolerances x methods: nothing pooled


def test_orderings_count_contexts_and_name_where_they_fail(synthetic_frame):
    ok = ok_rows(prepare(synthetic_frame))
    table = ordering_table(ok).set_index("ordering")
    # 2 tasks x 2 sizes x 2 tolerances = 8 contexts, all with every method.
    assert table.loc["symplectic < aca", ["n", "holds", "tie", "reversed"]].tolist() == [8, 8, 0, 0]
    assert table.loc["aca < naive", "holds"] == 8
    adjoint = table.loc["adjoint < symplectic"]  # planted 2e5 against 2e4 * size**0.2: reversed
    assert (adjoint["holds"], adjoint["reversed"]) == (0, 8)
    assert "linear[8] dopri5 tol=0.0001" in adjoint["does not hold at"]
    assert table.loc["symplectic < aca", "does not hold at"] == "–"


def test_no_size_view_without_two_sizes(synthetic_frame):
    one_size = ok_rows(prepare(synthetic_frame[synthetic_frame["size"] == 8]))
    assert size_tables(one_size, {}) == {} and ordering_table(one_size) is None
