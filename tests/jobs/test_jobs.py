"""Every job kind through the one guard, the one grid and the one reader."""

from __future__ import annotations

import pytest

from odebench import suites
from odebench.jobs import KINDS, RatioCase, kind_of
from odebench.jobs.ratio import run_ratios
from odebench.results import ResultsWriter, load_ratios

#: A case of each kind that names something no registry has.
UNKNOWN = {
    "gradient": {"task": "nope", "method": "naive"},
    "training": {"study": "nope", "method": "naive"},
    "ratio": {"task": "nope", "methods": ("aca",)},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_case_that_cannot_resolve_is_an_error_record_of_its_kind(kind):
    job = KINDS[kind]
    case = job.case(UNKNOWN[kind])
    record = job.run(case)
    assert type(record) is job.record_type and kind_of(record.case) is job
    assert record.status == "error" and record.error.startswith("UnknownNameError: unknown")
    assert record.case_id == case.case_id and "\n" not in record.error


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_keeps_its_warnings_and_wall_time(kind):
    cases = {
        "gradient": {"task": "linear", "method": "naive", "size": 2, "rtol": 1e-20, "repeats": 1},
        "training": {
            "study": "cnf_seminorm",
            "method": "naive",
            "iterations": 1,
            "rtol": 1e-20,
            "atol": 1e-6,
        },
        "ratio": {"task": "linear", "methods": ("aca",), "size": 2, "rtol": 1e-20, "rounds": 1},
    }
    job = KINDS[kind]
    record = job.run(job.case({**cases[kind], "atol": 1e-10} if kind != "training" else cases[kind]))
    assert any("ToleranceWarning" in w for w in record.warnings), record.warnings
    assert record.wall_time_s > 0


def test_the_atol_ratio_reaches_every_kind_of_case_that_takes_one():
    settings = suites.Settings(atol_ratio=1e-3)
    for job in ("gradient", "ratio"):
        grid = suites.Grid(job, tasks=("linear",), methods=("naive", "aca"), rtols=(1e-4,))
        cases = grid.expand(settings, repeats=1).cases
        assert cases and all(c.atol == pytest.approx(1e-7) for c in cases)


def test_a_ratio_case_builds_its_problem_once_for_all_its_methods(monkeypatch):
    from odebench import tasks

    task = tasks.get("linear")
    built = []
    original = type(task).build
    monkeypatch.setattr(type(task), "build", lambda self, *a, **k: built.append(1) or original(self, *a, **k))
    record = run_ratios(RatioCase(task="linear", methods=("aca", "symplectic"), size=2, rounds=1))
    assert record.status == "ok" and set(record.ratios) == {"aca", "symplectic"}
    assert len(built) == 1


def test_a_failed_ratio_case_reads_as_a_row_per_method_so_a_comparison_meets_it(tmp_path):
    path = tmp_path / "r.jsonl"
    case = RatioCase(task="nope", methods=("aca", "symplectic"))
    with ResultsWriter(path, {"run_id": "r"}) as writer:
        writer.write(run_ratios(case))
    rows = load_ratios(path)
    assert rows["method"].tolist() == ["aca", "symplectic"] and rows["ratio"].isna().all()
    assert set(rows["status"]) == {"error"}


def test_a_gradient_case_measures_exact_memory_in_its_counted_run():
    """Peak memory is read in the counted run (no run of its own), in tensor bytes that are the
    same each time from the same process state (the harness forks every case from one warmed-up
    template; in this process the first run also pays 616 bytes of lazily made constants);
    ``memory`` picks another backend without changing the case's identity."""
    from dataclasses import replace

    from odebench.jobs.gradient import Case, run_case
    from odebench.measure import memory
    from odebench.measure.memory import backend_for

    if backend_for("cpu") != "allocator":
        pytest.skip("the allocator backend needs torch's profiler")
    case = Case(task="spiral", method="aca", rtol=1e-6, repeats=1)
    run_case(case)
    first, second = run_case(case), run_case(case)
    assert first.status == second.status == "ok"
    assert first.memory_backend == "allocator"
    assert first.peak_memory_bytes == second.peak_memory_bytes > 0
    assert "memory" not in first.stage_times_s and "memory_readout" in first.stage_times_s
    with_memray = replace(case, memory="memray")
    assert with_memray.case_id == case.case_id
    if memory.memray is not None:
        process = run_case(with_memray)
        assert process.memory_backend == "memray"
        assert process.peak_memory_bytes >= first.peak_memory_bytes
