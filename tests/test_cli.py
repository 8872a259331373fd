"""The command line: one-line errors with exit 2, listings, and run -> report -> compare."""

from __future__ import annotations

import json

import pytest
import torch

from odebench import methods
from odebench.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "--method", "adjiont"], "valid: naive, adjoint, seminorm, aca, symplectic"),
        (["run", "--task", "nope"], "unknown task 'nope'; valid: linear"),
        (["run", "--solver", "rk45"], "unknown solver 'rk45'; valid: euler"),
        (["run", "--suite", "huge"], "unknown suite 'huge'; valid: quick, full"),
        (["run", "--rtol", "1e-20"], "below the machine epsilon"),
        (["run", "--rtol", "0"], "rtol must be a positive finite number"),
        (["run", "--rtol", "1e-9", "--dtype", "float32"], "machine epsilon of torch.float32"),
        (["run", "--size", "0"], "--size must be positive"),
        (["run", "--plugin", "missing.py"], "is not a Python file"),
        (["run", "--method", "seminorm", "--solver", "rk4"], "no case matches"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, fragment):
    code, _out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and fragment in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_gpu_exits_2(capsys):
    code, _, err = run_cli(capsys, "run", "--device", "cuda")
    assert code == 2 and "CUDA is not available; valid: cpu" in err


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["run", "--dtype", "float16"])
    assert excinfo.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_list_shows_every_registry(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in [*methods.names(), "dopri5", "rk4", "quick", "full", "linear", "mlp"]:
        assert name in out
    for name, reason in methods.unavailable().items():
        assert f"{name}" in out and reason in out


def test_dry_run_lists_cases(capsys):
    code, out, _ = run_cli(capsys, "run", "--suite", "quick", "--dry-run")
    assert code == 0 and out.strip().endswith("42 cases")
    assert "spiral[5]/aca/rk4/h=" in out and "spiral/seminorm/dopri5/tol=0.0001" in out
    assert "seminorm/rk4" not in out


def test_task_override_does_not_borrow_another_tasks_sizes(capsys):
    """The quick suite's horizons (1, 2, 5) belong to spiral; mlp's knob is its width."""
    code, out, _ = run_cli(capsys, "run", "--suite", "quick", "--task", "mlp", "--dry-run")
    assert code == 0 and "mlp[" not in out and "mlp/aca/rk4/h=" in out
    code, out, _ = run_cli(capsys, "run", "--suite", "quick", "--task", "mlp", "--size", "16", "--dry-run")
    assert "mlp[16]/aca/dopri5" in out


def test_run_report_compare(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ODEBENCH_CACHE", str(tmp_path / "cache"))
    results = tmp_path / "r.jsonl"
    argv = [
        "run",
        "--task",
        "linear",
        "--method",
        "naive",
        "aca",
        "--size",
        "2",
        "--rtol",
        "1e-4",
        "--solver",
        "dopri5",
    ]
    argv += ["--repeats", "1", "--in-process", "--no-progress", "--out", str(results)]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "2 cases run (0 failed)" in out and "harness cost" in out
    header = json.loads(results.read_text().splitlines()[0])
    assert header["metadata"]["command"].startswith("odebench run --task linear")

    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "--resume" in err

    code, out, _ = run_cli(capsys, "report", str(results), "--out", str(tmp_path / "rep"))
    assert code == 0 and (tmp_path / "rep" / "report.html").exists()
    assert (tmp_path / "rep" / "report.md").exists()

    code, out, _ = run_cli(capsys, "compare", str(results), str(results), "--out", str(tmp_path / "c.md"))
    assert code == 0 and (tmp_path / "c.md").read_text().strip() == out.strip()
