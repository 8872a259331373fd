"""The Python API's input: what `compare_methods`, `MethodComparison`, `GradientMethod.odeint` and
``import odebench`` accept, and the one line that refuses the rest."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from odebench import methods, tasks
from odebench.errors import InvalidInputError, OdebenchError
from odebench.jobs.gradient import Case, Record
from odebench.results import ResultsWriter
from odebench.usermodel import MethodComparison, compare_methods

ROOT = Path(__file__).resolve().parents[1]


def linear():
    return tasks.get("linear").build(2)


def test_one_method_one_tolerance_and_an_atol_need_no_tuples():
    p = linear()
    result = compare_methods(
        p.func, p.y0, p.t, p.loss, methods="aca", rtols=1e-5, atol=1e-9, repeats=1, progress=False
    )
    (record,) = [r for r in result.records if r.case.KIND == "gradient"]
    assert (record.case.method, record.case.rtol, record.case.atol, record.status) == (
        "aca",
        1e-5,
        1e-9,
        "ok",
    )
    assert "atol=(1e-09,)" in result.table["meta_command"].iloc[0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rtols": (-1,)}, "rtols must be positive finite numbers, got -1"),
        ({"rtols": 0.0}, "rtols must be positive finite numbers, got 0.0"),
        ({"rtols": ()}, "rtols is empty; give a number or a sequence of numbers"),
        ({"atol": -1e-9}, "atol must be a finite number >= 0, got -1e-09"),
        ({"atol": float("nan")}, "atol must be a finite number >= 0, got nan"),
        (
            {"atol": 1e-9, "solver": "rk4"},
            "atol applies to adaptive solvers; rk4 is fixed-step: give step_sizes",
        ),
        ({"step_sizes": -0.1, "solver": "rk4"}, "step_sizes must be positive finite numbers, got -0.1"),
        ({"y0": "nan"}, "y0 holds 1 NaN or infinite value(s); every value must be finite"),
        ({"y0": "inf"}, "y0 holds 1 NaN or infinite value(s); every value must be finite"),
        ({"methods": "acca"}, "unknown method 'acca'; valid"),
    ],
)
def test_input_no_case_could_measure_is_refused_in_one_line(change, message):
    p = linear()
    y0 = p.y0.clone()
    if "y0" in change:
        y0[0] = float(change.pop("y0"))
    with pytest.raises(OdebenchError) as refusal:
        compare_methods(p.func, y0, p.t, p.loss, progress=False, **{"methods": "aca", **change})
    assert str(refusal.value).startswith(message) and "\n" not in str(refusal.value)


@pytest.fixture
def comparison(tmp_path) -> MethodComparison:
    """A `MethodComparison` over two records written by hand (no solving)."""
    path = tmp_path / "mine.jsonl"
    with ResultsWriter(path, {"run_id": "r"}) as writer:
        for method in ("naive", "aca"):
            case = Case(task="model:Mine-00000000", method=method, size=1, rtol=1e-3, atol=1e-5)
            writer.write(Record(case, case.case_id, "ok", grad_rel_error=1e-3, peak_memory_bytes=2**20))
    return MethodComparison(path)


def test_save_refuses_an_existing_or_unwritable_path_in_one_line(comparison, tmp_path):
    taken = tmp_path / "taken.jsonl"
    taken.write_text("anything\n")
    with pytest.raises(InvalidInputError) as refusal:
        comparison.save(taken)
    assert str(refusal.value) == f"{taken} already exists; choose another path or remove it"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InvalidInputError) as refusal:
        comparison.save(blocker / "mine.jsonl")
    assert str(refusal.value).startswith(f"cannot write {blocker / 'mine.jsonl'}: ") and "\n" not in str(
        refusal.value
    )
    assert comparison.save(tmp_path / "new" / "mine.jsonl").is_file()


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"max_memory": -1}, "max_memory must be a positive finite number, got -1"),
        ({"max_memory": "abc"}, "max_memory must be a positive number or None, got 'abc'"),
        ({"max_error": 0.0}, "max_error must be a positive finite number, got 0.0"),
    ],
)
def test_recommend_refuses_limits_that_cannot_be_meant(comparison, limits, message):
    with pytest.raises(InvalidInputError) as refusal:
        comparison.recommend(**limits)
    assert str(refusal.value) == message


def test_odeint_names_the_solver_keyword():
    p = linear()
    with pytest.raises(InvalidInputError) as refusal:
        methods.get("naive").odeint(p.func, p.y0, p.t, method="dopri5")
    assert str(refusal.value) == (
        "odebench calls the solver solver=, not method= (torchdiffeq's spelling): pass solver='dopri5'; "
        "valid keywords: solver, rtol, atol, options"
    )
    with pytest.raises(InvalidInputError, match=r"unexpected keyword\(s\) max_steps; valid keywords: solver"):
        methods.get("naive").odeint(p.func, p.y0, p.t, max_steps=10)
    assert methods.get("naive").odeint(p.func, p.y0, p.t, solver="rk4", options={"step_size": 0.1}).shape[
        0
    ] == len(p.t)


def test_every_module_the_docs_name_is_reachable_after_import_odebench():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = sorted({m for doc in docs for m in re.findall(r"\bodebench\.([A-Za-z_]\w*)", doc.read_text())})
    assert {"results", "harness", "compare_methods", "methods"} <= {*named, "harness"}
    script = (
        "import sys, odebench\n"
        "assert 'torch' not in sys.modules, 'import odebench imported torch'\n"
        "import odebench.cli; odebench.cli.build_parser()\n"
        "assert 'torch' not in sys.modules, 'parsing a command line imported torch'\n"
        f"for name in {[*named, 'harness']!r}:\n"
        "    getattr(odebench, name)\n"
        "odebench.results.load, odebench.harness.__name__\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr


def test_a_users_reference_is_recorded_as_the_users():
    p = linear()
    given = p.exact_gradient()
    result = compare_methods(
        p.func, p.y0, p.t, p.loss, methods="naive", rtols=1e-6, reference=given, repeats=1, progress=False
    )
    assert {r.reference_kind for r in result.records if r.case.KIND == "gradient"} == {"user"}
    assert torch.equal(given[0], p.exact_gradient()[0])  # the user's tensors are left alone
