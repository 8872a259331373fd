"""The deterministic-metric gate: it passes on the committed baseline and names what changed."""

from __future__ import annotations

import copy
import json

import pytest
import torchdiffeq

from odebench import baseline, methods
from odebench.methods.adjoint import Adjoint
from odebench.record import Case


@pytest.fixture(scope="module")
def committed() -> dict:
    return baseline.load()["cases"]


@pytest.fixture(scope="module")
def current() -> dict:
    """One run of the whole grid (about 25 s on 2 cores), shared by the tests below."""
    return baseline.compute()


def _id(label: str, rows: dict) -> str:
    return next(case_id for case_id, row in rows.items() if row["label"] == label)


def test_grid_is_fixed_and_covered_by_the_baseline(committed):
    cases = baseline.grid()
    ids = [case.case_id for case in cases]
    assert len(set(ids)) == len(ids) == len({case.label() for case in cases})
    assert set(ids) == set(committed), "grid and results/baseline.json disagree: run the update"
    assert {case.method for case in cases} == set(methods.CORE)
    assert all(row["status"] == "ok" for row in committed.values())


def test_gate_passes_on_the_committed_baseline(committed, current):
    """The CI gate itself (counts and gradient errors; the time ratios run in `make gate`)."""
    findings = baseline.compare(committed, current, times=False)
    assert not [f for f in findings if f.failure], "\n".join(map(str, findings))


def test_an_extra_function_evaluation_fails_naming_case_and_metric(committed, current):
    label = "mlp/symplectic/dopri5/tol=1e-06/float64/cpu"
    changed = copy.deepcopy(current)
    changed[_id(label, changed)]["nfe_backward"] += 1
    failures = [f for f in baseline.compare(committed, changed, times=False) if f.failure]
    assert [(f.label, f.metric) for f in failures] == [(label, "nfe_backward")]
    assert label in str(failures[0]) and "nfe_backward" in str(failures[0])


def test_gradient_error_tolerance_is_relative_with_an_absolute_floor(committed):
    case_id, row = next(iter(committed.items()))
    assert row["grad_rel_error"] > 1e-9
    for factor, fails in ((1 + 1e-7, False), (1 + 1e-5, True)):
        changed = copy.deepcopy(committed)
        changed[case_id]["grad_rel_error"] *= factor
        failures = [f for f in baseline.compare(committed, changed) if f.failure]
        assert [f.metric for f in failures] == (["grad_rel_error"] if fails else [])
    # Round-off-level errors (the discrete-exact methods' ~1e-16) move freely below 1e-12.
    tiny = next(cid for cid, r in committed.items() if (r["grad_rel_error_discrete"] or 1) < 1e-14)
    changed = copy.deepcopy(committed)
    changed[tiny]["grad_rel_error_discrete"] *= 3
    assert not [f for f in baseline.compare(committed, changed) if f.failure]


def test_status_missing_and_new_cases(committed):
    first, second = list(committed)[:2]
    changed = copy.deepcopy(committed)
    changed[first].update(status="nan", error="NonFiniteGradient: gradient contains NaN or Inf")
    del changed[second]
    changed["0123456789abcdef"] = dict(committed[second], label="new/case")
    findings = baseline.compare(committed, changed)
    by_metric = {(f.label, f.metric): f for f in findings}
    assert by_metric[(committed[first]["label"], "status")].failure
    assert "NonFiniteGradient" in by_metric[(committed[first]["label"], "status")].message
    assert by_metric[(committed[second]["label"], "case")].failure  # missing: a failure
    assert not by_metric[("new/case", "case")].failure  # new: reported only


def test_time_ratio_fails_only_past_the_factor(committed):
    case_id = next(cid for cid, r in committed.items() if r["case"]["method"] == "adjoint")
    old = committed[case_id][baseline.RATIO_METRIC]
    for factor, fails in ((0.9 * baseline.TIME_FACTOR, False), (1.1 * baseline.TIME_FACTOR, True)):
        changed = copy.deepcopy(committed)
        changed[case_id][baseline.RATIO_METRIC] = old * factor
        failures = [f for f in baseline.compare(committed, changed) if f.failure]
        assert [f.metric for f in failures] == ([baseline.RATIO_METRIC] if fails else [])
        assert not baseline.compare(committed, changed, times=False)


class LooseAdjoint(Adjoint):
    """The adjoint with its backward solve at 100x the forward tolerances: a real method change."""

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        return torchdiffeq.odeint_adjoint(
            func,
            y0,
            t,
            rtol=rtol,
            atol=atol,
            method=solver,
            options=options,
            adjoint_rtol=100 * rtol,
            adjoint_atol=100 * atol,
            adjoint_params=tuple(func.parameters()),
        )


def test_a_real_change_of_a_method_fails_naming_case_and_metrics(committed, monkeypatch):
    real_get = methods.get
    monkeypatch.setattr(methods, "get", lambda name: LooseAdjoint() if name == "adjoint" else real_get(name))
    case = Case(task="linear", method="adjoint", repeats=baseline.REPEATS)
    current = baseline.compute([case])
    failures = [f for f in baseline.compare({case.case_id: committed[case.case_id]}, current) if f.failure]
    metrics = {f.metric for f in failures}
    assert {"nfe_backward", "grad_rel_error"} <= metrics
    assert all(f.label == case.label() for f in failures)
    message = "\n".join(map(str, failures))
    assert "FAIL linear/adjoint/dopri5/tol=1e-06/float64/cpu: nfe_backward: 138 -> " in message


def test_cli_check_and_update(current, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(baseline, "compute", lambda cases=None, progress=False: copy.deepcopy(current))
    path = tmp_path / "baseline.json"
    assert baseline.main(["update", "--path", str(path)]) == 0
    saved = json.loads(path.read_text())["cases"]
    assert saved.keys() == current.keys()
    assert all("time_backward_s" not in row for row in saved.values())  # absolute times: never stored
    assert baseline.main(["check", "--path", str(path)]) == 0
    assert "baseline check passed: 23 cases" in capsys.readouterr().out

    label = "spiral/aca/dopri5/tol=1e-06/float64/cpu"
    document = json.loads(path.read_text())
    document["cases"][_id(label, document["cases"])]["steps_rejected"] += 1
    path.write_text(json.dumps(document))
    assert baseline.main(["check", "--path", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {label}: steps_rejected: 2 -> 1" in out
    assert "baseline check FAILED: 1 finding(s)" in out


def test_a_missing_baseline_says_how_to_make_one(tmp_path):
    with pytest.raises(SystemExit, match=r"odebench\.baseline update"):
        baseline.load(tmp_path / "none.json")
