"""The command line: one-line errors with exit 2, listings, and run -> report -> compare."""

from __future__ import annotations

import json
import re
import sys

import pytest
import torch

from odebench import methods
from odebench.cli import main


@pytest.fixture
def synthetic_results(tmp_path):
    """A results file of two real records (no solving: written by hand)."""
    from odebench.jobs.gradient import Case, Record
    from odebench.results import ResultsWriter

    path = tmp_path / "synthetic.jsonl"
    with ResultsWriter(path, metadata={"run_id": "r"}) as writer:
        for method in ("naive", "aca"):
            case = Case(task="linear", method=method, size=2, rtol=1e-4, atol=1e-6)
            writer.write(Record(case, case.case_id, "ok", grad_rel_error=1e-4, time_forward_s=0.1))
    return path


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
        (["run", "--suite", "huge"], "unknown suite 'huge'; valid: quick, full, scaling, scale, stiff"),
        (["run", "--rtol", "1e-20"], "below the machine epsilon"),
        (["run", "--rtol", "0"], "rtol and atol are both 0"),
        (["run", "--rtol", "1e-9", "--dtype", "float32"], "machine epsilon of torch.float32"),
        (["run", "--size", "0"], "--size must be positive"),
        (["run", "--plugin", "missing.py"], "plugin 'missing.py': no such file"),
        (["run", "--plugin", "README.md"], "plugin 'README.md' is not a Python file"),
        (
            ["run", "--method", "seminorm", "--solver", "rk4"],
            "no case can run: 13 x seminorm does not support",
        ),
        (["run", "--atol-ratio", "0"], "--atol-ratio must be a positive finite number, got 0"),
        (["run", "--memory-backend", "rss"], "unknown memory backend 'rss'; valid: allocator, memray, cuda"),
        (["run", "--memory-backend", "cuda"], "memory backend 'cuda' cannot measure on cpu here; valid: "),
        (["run", "--suite", "quick", "--task", "lorenz63"], "suite 'quick' has no case with task lorenz63"),
        (["report", "missing.jsonl", "--out", "x"], "no results file at missing.jsonl"),
        (["run", "--scheduler", "tcp://host:8786"], "--scheduler needs --executor dask"),
        (["train", "--one-per-host"], "--one-per-host needs --executor dask"),
        (["run", "--executor", "dask"], "--executor dask takes --scheduler ADDRESS (a running cluster) or"),
        (["run", "--executor", "dask", "--workers", "2", "--scheduler", "x"], "--executor dask takes"),
        (["run", "--workers", "0"], "--workers must be at least 1, got 0"),
        (["run", "--in-process", "--workers", "2"], "--in-process runs cases in this process"),
        (["merge", "missing.jsonl", "--out", "x.jsonl"], "no results file at missing.jsonl"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, fragment):
    code, _out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and fragment in err, err


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("def broken(:\n", "line 1: SyntaxError: invalid syntax"),
        ("raise RuntimeError('no GPU here')\n", "failed to load: RuntimeError: no GPU here"),
        (
            "from odebench import methods\nmethods.register('naive', methods.get('aca'))\n",
            "failed to load: method 'naive' is already registered; choose another name",
        ),
    ],
)
def test_a_plugin_that_cannot_load_exits_2_with_one_line(capsys, tmp_path, source, fragment):
    plugin = tmp_path / "plugin.py"
    plugin.write_text(source)
    code, _out, err = run_cli(capsys, "run", "--plugin", str(plugin), "--dry-run")
    assert code == 2 and err.count("\n") == 1, err
    assert f"plugin {str(plugin)!r}" in err and fragment in err, err


def test_report_of_an_empty_or_garbage_file_exits_2(capsys, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run_cli(capsys, "report", str(empty), "--out", str(tmp_path / "r"))
    assert code == 2 and err == f"odebench: error: no records in {empty}; nothing to report\n"
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\nstill not json\n")
    code, _, err = run_cli(capsys, "report", str(garbage), "--out", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and f"{garbage}:1: corrupt results line" in err


def test_report_to_an_unwritable_folder_exits_2(capsys, tmp_path, synthetic_results):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "report", str(synthetic_results), "--out", str(blocker / "report"))
    assert code == 2 and err.count("\n") == 1 and str(blocker) in err, err


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


def test_dry_run_lists_cases_and_what_was_left_out(capsys):
    code, out, _ = run_cli(capsys, "run", "--suite", "quick", "--dry-run")
    assert code == 0
    assert out.strip().endswith(
        "69 cases\n  left out 3: seminorm does not support solver rk4 "
        "(it supports: adaptive_heun, fehlberg2, fehlberg3, bosh3, dopri5, dopri8)"
    )
    assert "spiral[5]/aca/rk4/h=0.01/float64/cpu" in out and "spiral[2]/seminorm/dopri5/tol=0.0001" in out
    assert "left out spiral[1]/seminorm/rk4/h=0.01/float64/cpu" in out
    # 60 gradient cases and, per problem, one ratio case timing its methods in one process
    assert "spiral[5]/adjoint+aca+symplectic+reversible+checkpointed vs naive/rk4/h=0.01/float64/cpu" in out
    _, plain, _ = run_cli(capsys, "run", "--suite", "quick", "--dry-run", "--no-ratios")
    assert " vs naive/" not in plain and "60 cases" in plain


def test_the_full_suite_has_unique_labels_and_each_size_its_own_step(capsys):
    code, out, _ = run_cli(capsys, "run", "--suite", "full", "--dry-run")
    lines = [line for line in out.splitlines() if "/" in line and not line.startswith("left out")]
    assert code == 0 and len(lines) == len(set(lines)) == int(out.split(" cases")[0].split("\n")[-1])
    vdp = sorted(line for line in lines if line.startswith("van_der_pol_stiff[") and "/naive/rk4/" in line)
    assert vdp == [
        "van_der_pol_stiff[1000]/naive/rk4/h=0.0001/float64/cpu",
        "van_der_pol_stiff[100]/naive/rk4/h=0.001/float64/cpu",
        "van_der_pol_stiff[10]/naive/rk4/h=0.01/float64/cpu",
        "van_der_pol_stiff[1]/naive/rk4/h=0.1/float64/cpu",
    ]


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
    assert (
        code == 0 and "3 cases run (0 failed)" in out and "each case took a median" in out
    )  # and a ratio case
    assert "same-run time ratios" in out and re.search(
        r"linear\[2\]\s+aca\s+naive .* (faster|tie|slower)", out
    )
    header = json.loads(results.read_text().splitlines()[0])
    assert header["metadata"]["command"].startswith("odebench run --task linear")

    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "--resume" in err

    code, out, _ = run_cli(capsys, "report", str(results), "--out", str(tmp_path / "rep"))
    assert code == 0 and (tmp_path / "rep" / "report.html").exists()
    assert (tmp_path / "rep" / "report.md").exists()

    code, out, _ = run_cli(capsys, "compare", str(results), str(results), "--out", str(tmp_path / "c.md"))
    assert code == 0 and (tmp_path / "c.md").read_text().strip() == out.strip()

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run_cli(capsys, "compare", str(results), str(empty))
    assert code == 2 and err == "odebench: error: the new results hold no records; nothing to compare\n"


@pytest.mark.parametrize("value, fragment", [("4/3", "shard 4/3 is not one of 1/3 .. 3/3"), ("two", "'two'")])
def test_a_bad_shard_exits_2_with_one_line(capsys, value, fragment):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--shard", value])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and fragment in err, err


def test_dask_without_distributed_exits_2_with_the_install_hint(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    argv = ["run", "--task", "linear", "--method", "aca", "--executor", "dask", "--workers", "2"]
    code, _out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "r.jsonl"))
    assert code == 2 and err.count("\n") == 1
    assert "--executor dask needs the distributed package: pip install 'odebench[distributed]'" in err
    assert not (tmp_path / "r.jsonl").exists()


def test_run_prints_the_executor_and_a_shard_before_starting(capsys, tmp_path):
    argv = ["run", "--task", "linear", "--size", "2", "--method", "naive", "aca", "--rtol", "1e-3"]
    code, out, _err = run_cli(
        capsys, *argv, "--repeats", "1", "--shard", "2/2", "--out", str(tmp_path / "r.jsonl"), "--no-progress"
    )
    assert code == 0
    assert (
        "1 case (shard 2/2 of 3)" in out
    )  # naive, aca and their ratio case and "executor: local, 1 worker\n" in out


def test_compare_keeps_a_regressions_exit_code_when_its_out_cannot_be_written(
    synthetic_results, tmp_path, capsys
):
    from odebench.jobs.gradient import Case, Record
    from odebench.results import ResultsWriter

    worse = tmp_path / "worse.jsonl"
    with ResultsWriter(worse, metadata={"run_id": "w"}) as writer:
        for method in ("naive", "aca"):
            case = Case(task="linear", method=method, size=2, rtol=1e-4, atol=1e-6)
            writer.write(Record(case, case.case_id, "ok", grad_rel_error=2e-4, time_forward_s=0.1))
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    code, out, err = run_cli(
        capsys, "compare", str(synthetic_results), str(worse), "--out", str(blocked / "c.md")
    )
    assert code == 1 and "REGRESSED" in out
    assert err.startswith("odebench: error:") and "the comparison was not saved" in err


def test_a_full_disk_names_the_results_file_and_how_to_resume(tmp_path, capsys, monkeypatch):
    import errno
    import os as os_module

    from odebench import results

    out = tmp_path / "r.jsonl"
    calls = []

    def full(fd):
        calls.append(fd)
        if len(calls) > 1:  # the header fits, the first record does not
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", full)
    code, _, err = run_cli(
        capsys, "run", "--task", "linear", "--method", "naive", "--size", "2", "--in-process",
        "--repeats", "1", "--no-progress", "--out", str(out),
    )  # fmt: skip
    monkeypatch.setattr(results.os, "fsync", os_module.fsync)
    assert code == 2
    assert f"No space left on device: {out}; what was recorded is kept" in err
    assert f"rerun with --resume --out {out}" in err
