"""The training loop: reproducible curves, discrete-exact methods training alike, failures that
keep their curve, and sweeps of training runs that resume exactly."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odebench import plugins, studies
from odebench.environment import collect_metadata
from odebench.harness.executors import Local
from odebench.harness.summary import counted
from odebench.harness.sweep import run_sweep
from odebench.jobs.training import CURVE_COLUMNS, TrainingCase, run_training
from odebench.results import load_curves, load_training

PLUGIN = str(Path(__file__).with_name("study_plugin.py"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def toy_studies():
    """The test studies, registered here as in the worker, removed afterwards."""
    plugins.load_plugins([PLUGIN])
    yield
    for name in [n for n in studies.names() if n.startswith("toy_")]:
        studies.registry.unregister(name)
    plugins._loaded.discard(Path(PLUGIN).resolve())


def test_the_same_seed_gives_the_same_curve_twice():
    runs = [run_training(TrainingCase(study="toy_decay", method="aca", seed=3)) for _ in range(2)]
    for name in CURVE_COLUMNS:
        if name != "elapsed_s":
            assert runs[0].curve[name] == runs[1].curve[name], name
    assert runs[0].final_loss == runs[1].final_loss and runs[0].parameter_error == runs[1].parameter_error
    other_seed = run_training(TrainingCase(study="toy_decay", method="aca", seed=4))
    assert other_seed.curve["train_loss"][0] != runs[0].curve["train_loss"][0]


def test_discrete_exact_methods_train_to_the_same_parameters_on_a_fixed_grid():
    """On rk4 naive, ACA and the symplectic adjoint all give the gradient of the same discrete
    solve, so 20 SGD steps end at the same rate to round-off; the adjoint's does not."""
    runs = {
        method: run_training(TrainingCase(study="toy_decay", method=method, solver="rk4", step_size=0.1))
        for method in ("naive", "aca", "symplectic", "adjoint")
    }
    assert all(r.status == "ok" and r.iterations_done == 20 for r in runs.values())
    # parameter_error = |a - 1.3| / 1.3, so a difference in it is a relative difference in a.
    error = {m: r.parameter_error for m, r in runs.items()}
    assert abs(error["aca"] - error["naive"]) < 1e-10
    assert abs(error["symplectic"] - error["naive"]) < 1e-10
    assert abs(error["adjoint"] - error["naive"]) > 1e-8
    assert runs["aca"].curve["nfe_backward"][0] == 10 * 4 and runs["naive"].curve["nfe_backward"][0] == 0


def test_counts_per_iteration_and_totals_agree():
    record = run_training(TrainingCase(study="toy_decay", method="symplectic", iterations=6))
    assert record.nfe_forward_total == sum(record.curve["nfe_forward"])
    assert record.nfe_backward_total == sum(record.curve["nfe_backward"])
    # dopri5 attempts: 6 evaluations each plus 2 choosing the first step
    steps = [a + r for a, r in zip(record.curve["steps_accepted"], record.curve["steps_rejected"])]
    assert record.curve["nfe_forward"] == [2 + 6 * s for s in steps]
    assert record.curve["solves"] == [1] * 6
    checked = [i for i, e in enumerate(record.curve["grad_rel_error"]) if e is not None]
    assert checked == [0, 5] and all(e < 1e-5 for e in record.curve["grad_rel_error"] if e is not None)
    assert [i for i, h in enumerate(record.curve["heldout"]) if h is not None] == [0, 5]


def test_a_diverging_run_records_its_status_iteration_and_curve():
    record = run_training(TrainingCase(study="toy_diverge", method="aca"))
    assert record.status == "underflow" and "underflow in dt" in record.error
    assert record.iterations_done == 4 and record.curve["iteration"] == [0, 1, 2, 3]
    losses = record.curve["train_loss"]
    assert all(b > a for a, b in itertools.pairwise(losses))  # ascent: the loss grew until it blew up
    assert record.final_loss == losses[-1] and record.time_to_target_s is None


def test_a_sweep_goes_on_past_divergence_and_timeout_keeping_curves(tmp_path):
    cases = [
        TrainingCase(study="toy_diverge", method="naive"),
        TrainingCase(study="toy_slow", method="naive"),
        TrainingCase(study="toy_decay", method="naive"),
    ]
    out = tmp_path / "runs.jsonl"
    result = run_sweep(
        cases, out, metadata=collect_metadata(), executor=Local(plugins=[PLUGIN]), timeout=8, progress=False
    )
    statuses = {
        r.case.study: (r.status, r.iterations_done, len(r.curve.get("iteration", []))) for r in result.records
    }
    assert statuses == {
        "toy_diverge": ("underflow", 4, 4),
        "toy_slow": ("timeout", 3, 3),
        "toy_decay": ("ok", 20, 20),
    }
    runs = load_training(out).set_index("study")
    assert runs.loc["toy_slow", "error"].startswith("TimeoutError: no result within 8 s")
    assert runs.loc["toy_decay", "final_loss"] < 1e-5
    curves = load_curves(out)
    required = [
        "study",
        "method",
        "solver",
        "seed",
        "iteration",
        "train_loss",
        "elapsed_s",
        "nfe_forward",
        "nfe_backward",
    ]
    assert set(required) <= set(curves.columns)
    assert curves.groupby("study").size().to_dict() == {"toy_decay": 20, "toy_diverge": 4, "toy_slow": 3}


def test_kill_dash_nine_mid_training_sweep_then_resume_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "killed.jsonl"
    command = [
        sys.executable,
        "-m",
        "odebench",
        "train",
        "--study",
        "toy_pause",
        "--method",
        "naive",
        "aca",
    ]
    command += ["--seed", "0", "1", "--plugin", PLUGIN, "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().count('"type": "training"') >= 1:
            break
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(load_training(out))
    assert 1 <= done < 4
    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{counted(4 - done, 'train', done=True)} (0 failed)" in resumed.stdout
    runs = load_training(out)
    assert len(runs) == 4 and runs.case_id.is_unique and (runs.status == "ok").all()
    assert load_curves(out).groupby("case_id").size().tolist() == [20] * 4
