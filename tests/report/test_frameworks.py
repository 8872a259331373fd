"""The framework view: torch and JAX methods side by side per context, compile time apart."""

from __future__ import annotations

from odebench.report.data import ok_rows, prepare
from odebench.report.frameworks import framework_table
from odebench.report.speed import prepare_ratios, speeds
from tests.report.report_synthetic import ratio_frame_of, synthetic_ratios


def test_jax_rows_carry_compile_time_and_their_memory_backend(synthetic_frame):
    frame = synthetic_frame.copy()
    jax_rows = frame["method"] == "symplectic"  # planted as if compiled: 2.5 s, XLA's memory
    frame.loc[jax_rows, "compile_time_s"] = 2.5
    frame.loc[jax_rows, "memory_backend"] = "xla"
    frame["framework"] = ["jax" if jax else "torch" for jax in jax_rows]
    groups = speeds(prepare_ratios(ratio_frame_of(synthetic_ratios())))
    table = framework_table(ok_rows(prepare(frame)), groups)
    # 2 tasks x 2 sizes x 2 tolerances, 5 methods each: every context has both frameworks.
    assert len(table) == 8 * 5
    first = table[table["task[size]"] == table["task[size]"].iloc[0]].iloc[:5].set_index("method")
    assert first.loc["symplectic", ["framework", "compile s", "n"]].tolist() == ["jax", "2.50", 1]
    assert first.loc["symplectic", "memory"].endswith("MiB (xla)")
    assert first.loc["naive", ["framework", "compile s", "time x naive"]].tolist() == ["torch", "–", "1"]


def test_no_framework_view_without_jax_cases(synthetic_frame):
    assert framework_table(ok_rows(prepare(synthetic_frame)), {}) is None
