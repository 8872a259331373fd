"""The report's training sections on hand-made training records with planted effects.

Planted, over seeds 0-4 of three_body_masses (aca, adjoint, naive) and of a CNF study (seminorm,
adjoint): ACA's mass error is a third of the others' in every seed; the seminorm adjoint needs
40% fewer backward evaluations than the adjoint in every seed. One extra run diverged.
"""

from __future__ import annotations

import pytest

from odebench.jobs.training import CURVE_COLUMNS, TrainingCase, TrainingRecord
from odebench.report import write_report
from odebench.report.claims import INSUFFICIENT, PART, training_findings
from odebench.report.training import prepare_training
from odebench.results import ResultsWriter, load, load_curves, load_training

SEEDS = range(5)


def _curve(n: int, backward: int) -> dict:
    curve = {name: [None] * n for name in CURVE_COLUMNS}
    curve.update(
        iteration=list(range(n)),
        train_loss=[1.0 / (i + 1) for i in range(n)],
        elapsed_s=[0.1 * (i + 1) for i in range(n)],
        nfe_forward=[100] * n,
        nfe_backward=[backward] * n,
        steps_accepted=[16] * n,
        solves=[1] * n,
    )
    return curve


def _run(study, method, seed, *, parameter_error=None, backward=100, status="ok", n=10):
    case = TrainingCase(
        study=study, method=method, solver="dopri5", rtol=1e-6, atol=1e-8, seed=seed, iterations=10
    )
    return TrainingRecord(
        case,
        case.case_id,
        status,
        error=None if status == "ok" else "FloatingPointError: underflow in dt 1e-17",
        iterations_done=n,
        final_loss=1.0 / n,
        heldout=0.5,
        heldout_name="heldout MSE",
        parameter_error=parameter_error,
        train_time_s=0.1 * n,
        nfe_forward_total=100 * n,
        nfe_backward_total=backward * n,
        curve=_curve(n, backward),
    )


def planted() -> list[TrainingRecord]:
    records = []
    for seed in SEEDS:
        for method, error in (("naive", 3e-3), ("adjoint", 3e-3), ("aca", 1e-3)):
            records.append(
                _run(
                    "three_body_masses",
                    method,
                    seed,
                    parameter_error=error,
                    backward=0 if method == "naive" else 200,
                )
            )
        for method, backward in (("adjoint", 500), ("seminorm", 300)):
            records.append(_run("cnf_seminorm", method, seed, backward=backward))
    records.append(_run("three_body_masses", "symplectic", 0, parameter_error=1e-3, status="underflow", n=4))
    return records


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    path = tmp_path_factory.mktemp("training") / "runs.jsonl"
    with ResultsWriter(path, metadata={"run_id": "r1", "git_commit": "abc1234"}) as writer:
        for record in planted():
            writer.write(record)
    return path


def test_training_claims_hold_in_the_parts_planted_with_n_and_say_insufficient_below_five(results):
    runs = prepare_training(load_training(results))
    curves = load_curves(results)
    masses, seminorm = training_findings(runs, curves)
    assert masses.claim.needs["studies"] == ("three_body_masses",) and masses.n == 5
    assert masses.verdict == f"{PART}: mass error vs adjoint, mass error vs naive"
    assert "mass error vs adjoint: aca/adjoint median 0.3333 (93.8% CI 0.3333 to 0.3333)" in masses.measured
    assert "extrapolation error on (0, 2] vs adjoint: aca/adjoint median 1 (" in masses.measured
    assert seminorm.claim.needs["studies"] == ("cnf_seminorm",)
    assert seminorm.verdict == f"{PART}: backward NFE over training, seminorm vs plain adjoint"
    assert seminorm.measured.startswith(
        "backward NFE over training, seminorm vs plain adjoint: seminorm/adjoint median 0.6 (93.8% CI "
        "0.6 to 0.6); published 0.6, n = 5: holds"
    )
    (few,) = training_findings(runs[(runs["seed"] < 2) & (runs["study"] == "cnf_seminorm")], curves)
    assert few.verdict == INSUFFICIENT and "only 2 pairs" in few.measured


def test_a_report_of_training_runs_alone_has_the_training_sections(results, tmp_path):
    assert load(results).empty
    write_report(
        load(results), tmp_path, command="cmd", sources=[str(results)],
        training=load_training(results), curves=load_curves(results),
    )  # fmt: skip
    md = (tmp_path / "report.md").read_text()
    assert "## Summary" not in md and "No records" not in md
    assert md.index("## Training") < md.index("## Training findings") < md.index("## Training: final metrics")
    assert "26 training runs: 25 finished, 1 stopped early" in md
    final = md.split("## Training: final metrics")[1].split("## Training curves")[0]
    assert (
        "| three_body_masses · dopri5 · tol=1e-06 · float64 · cpu · it=10 | aca | 5/5 | 0.500 (1x) "
        "| 1.0e-03 (0.33x) |" in final
    )
    assert "| three_body_masses · dopri5 · tol=1e-06 · float64 · cpu · it=10 | symplectic | 0/1 |" in final
    failures = md.split("## Failed cases")[1].split("## Warnings")[0]
    assert (
        "three_body_masses/symplectic/dopri5/tol=1e-06/seed=0 (stopped after 4 iterations) | underflow"
        in failures
    )
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == [
        "training-cnf_seminorm.png",
        "training-three_body_masses.png",
    ]
