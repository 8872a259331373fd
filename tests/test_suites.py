"""Case identity and suites: what runs is exactly what was asked, each case once, each size with
its own step, tolerances only where they mean something."""

from __future__ import annotations

import pytest
import torch

from odebench import suites, tasks
from odebench.errors import InvalidInputError
from odebench.jobs.gradient import Case, resolve
from odebench.jobs.ratio import RatioCase
from odebench.methods import CORE, NEWER


def labels(expansion, kind: str = "gradient") -> list[str]:
    return [case.label() for case in expansion.cases if kind == case.KIND]


def test_a_fixed_step_case_has_a_step_and_no_tolerance():
    cases = [Case(task="spiral", method="aca", solver="rk4", rtol=rtol) for rtol in (1e-3, 1e-5, None)]
    resolved = {resolve(case) for case in cases}
    assert len(resolved) == 1
    (case,) = resolved
    assert (case.rtol, case.atol, case.max_steps, case.step_size, case.size) == (None, None, None, 0.01, 2)
    assert case.label() == "spiral[2]/aca/rk4/h=0.01/float64/cpu"


def test_an_adaptive_case_has_tolerances_from_its_dtype_and_no_step():
    case = resolve(Case(task="linear", method="aca", step_size=0.5))
    assert (case.rtol, case.atol, case.step_size, case.max_steps) == (1e-6, 1e-8, None, 20_000)
    single = resolve(Case(task="linear", method="aca", dtype="float32"))
    assert (single.rtol, single.atol) == (1e-4, 1e-6)
    assert torch.finfo(torch.float32).eps * 100 < single.rtol


def test_repeats_are_a_setting_not_part_of_the_identity():
    assert (
        Case(task="mlp", method="aca", repeats=1).case_id == Case(task="mlp", method="aca", repeats=9).case_id
    )
    assert Case(task="mlp", method="aca", seed=1).case_id != Case(task="mlp", method="aca").case_id


@pytest.mark.parametrize("suite", [None, "full"])
def test_each_size_of_a_sweep_gets_its_tasks_own_step(suite):
    """The bug this guards against: every size reused the first size's step (h = 0.1 for all mu)."""
    selection = {"tasks": ["van_der_pol_stiff"], "methods": ["naive"], "solvers": ["rk4"]}
    selection["sizes"] = [1, 10, 100, 1000]
    steps = {case.size: case.step_size for case in suites.plan(suite, selection).cases}
    task = tasks.get("van_der_pol_stiff")
    assert steps == {mu: task.build(mu).step_size for mu in (1, 10, 100, 1000)}
    assert steps == pytest.approx({1: 0.1, 10: 0.01, 100: 0.001, 1000: 0.0001})


def test_explicit_axes_give_exactly_their_product():
    methods = ["naive", "adjoint", "aca", "symplectic"]
    expansion = suites.plan(None, {"tasks": ["mlp", "spiral"], "methods": methods, "rtols": [1e-4]})
    assert labels(expansion) == [
        f"{problem}/{method}/dopri5/tol=0.0001/float64/cpu"
        for problem in ("mlp[32]", "spiral[2]")
        for method in methods
    ]
    # and one ratio case per problem, timing its methods interleaved: the speed verdicts' source
    assert labels(expansion, "ratio") == [
        f"{problem}/adjoint+aca+symplectic vs naive/dopri5/tol=0.0001/float64/cpu"
        for problem in ("mlp[32]", "spiral[2]")
    ]
    assert expansion.left_out == []
    timed = [c for c in expansion.cases if c.KIND == "ratio"]
    assert {(c.rounds, c.budget_s) for c in timed} == {(15, suites.RATIO_BUDGET_S)}
    plain = suites.plan(None, {"tasks": ["mlp"], "methods": methods}, settings=suites.Settings(ratios=False))
    assert labels(plain, "ratio") == []


def test_tolerances_do_not_multiply_fixed_step_cases():
    selection = {"tasks": ["spiral"], "methods": ["aca"], "solvers": ["rk4", "dopri5"]}
    selection |= {"rtols": [1e-3, 1e-5, 1e-7], "step_sizes": [0.001]}
    assert labels(suites.plan(None, selection)) == [
        "spiral[2]/aca/rk4/h=0.001/float64/cpu",
        "spiral[2]/aca/dopri5/tol=0.001/float64/cpu",
        "spiral[2]/aca/dopri5/tol=1e-05/float64/cpu",
        "spiral[2]/aca/dopri5/tol=1e-07/float64/cpu",
    ]


def test_selecting_from_a_suite_brings_in_nothing_unasked():
    quick = suites.plan("quick")
    assert (len(labels(quick)), len(labels(quick, "ratio"))) == (60, 9)
    dopri5 = suites.plan("quick", {"solvers": ["dopri5"]})
    assert (len(labels(dopri5)), len(labels(dopri5, "ratio"))) == (42, 6)
    assert {c.rtol for c in dopri5.cases} == {1e-4, 1e-7}
    only = suites.plan("quick", {"tasks": ["mlp", "spiral"], "methods": ["naive", "aca"], "rtols": [1e-4]})
    assert labels(only) == [
        "spiral[2]/naive/dopri5/tol=0.0001/float64/cpu",
        "spiral[2]/aca/dopri5/tol=0.0001/float64/cpu",
        "mlp[32]/naive/dopri5/tol=0.0001/float64/cpu",
        "mlp[32]/aca/dopri5/tol=0.0001/float64/cpu",
    ]
    assert labels(only, "ratio") == [
        f"{p}/aca vs naive/dopri5/tol=0.0001/float64/cpu" for p in ("spiral[2]", "mlp[32]")
    ]
    alone = suites.plan("quick", {"tasks": ["mlp"], "methods": ["aca"], "rtols": [1e-4]})
    assert labels(alone, "ratio") == []  # one method: nothing to time it against


@pytest.mark.parametrize(
    "selection, fragment",
    [
        (
            {"tasks": ["lorenz63"]},
            "suite 'quick' has no case with task lorenz63; its values: linear, mlp, spiral",
        ),
        ({"rtols": [1e-5]}, "no case with rtol 1e-05; its values: 1e-07, 0.0001"),
        ({"sizes": [3]}, "no case with size 3; its values: 1, 2, 5, 8, 32"),
    ],
)
def test_a_value_the_suite_lacks_is_refused_naming_what_it_has(selection, fragment):
    with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        suites.plan("quick", selection)


def test_labels_are_unique_and_show_the_size_in_every_suite():
    for name in ("quick", "gate"):
        expansion = suites.plan(name)
        names = [case.label() for case in expansion.cases]
        assert len(set(names)) == len(names)
        assert all("[" in label.split("/")[0] for label in names)
        assert len({c.case_id for c in expansion.cases}) == len(names)


def test_cases_a_dtype_cannot_meet_are_left_out_with_the_reason():
    expansion = suites.plan("quick", setting_axes={"dtypes": ["float32"]})
    assert (len(labels(expansion)), len(labels(expansion, "ratio"))) == (39, 6)
    assert all(case.rtol is None or case.rtol >= 1e-4 for case in expansion.cases)
    reasons = expansion.reasons()
    assert reasons == {
        "rtol=1e-07 is below the machine epsilon of torch.float32 (1.2e-07); no solver can meet it": 21,
        "seminorm does not support solver rk4 (it supports: adaptive_heun, fehlberg2, fehlberg3, bosh3, "
        "dopri5, dopri8)": 3,
    }


def test_the_gate_suite_is_every_method_on_three_tasks_and_the_core_interleaved_ratios():
    gate = suites.plan("gate")
    gradient = [c for c in gate.cases if isinstance(c, Case)]
    ratios = [c for c in gate.cases if isinstance(c, RatioCase)]
    assert {c.method for c in gradient} == set(CORE) | set(NEWER)
    # Core: 15 at dopri5, 8 on rk4. Newer: 4 of 6 take dopri5 (x 3 tasks, forward mode not on
    # mlp), and on rk4, midpoint and heun2 the four that take every tableau, mali on midpoint,
    # reversible_heun on heun2 (x 2 tasks, forward mode on linear only).
    assert len(gradient) == 15 + 8 + (12 - 1) + (2 * (3 * 4 + 2) - 3)
    assert len(gate.left_out) == 2 + 14
    assert [(c.task, c.methods, c.baseline) for c in ratios] == [
        ("linear", ("adjoint", "seminorm", "aca", "symplectic"), "naive"),
        ("mlp", ("adjoint", "seminorm", "aca", "symplectic"), "naive"),
        ("mlp", ("aca",), "aca@torchdiffeqpack"),
    ]
