"""The command line's edges: --version, --json, help texts, flags that cannot apply, resuming the
wrong file or a changed model, SIGTERM, Ctrl-C in a report, a closed pipe, one-line warnings."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import odebench
from odebench.cli import build_parser, main
from odebench.jobs.gradient import Case, Record
from odebench.results import ResultsWriter, load, load_ratios

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "results" / "baseline.jsonl"


def write_results(path: Path, task: str = "linear", error: float = 1e-4) -> Path:
    """A results file of two records written by hand (no solving)."""
    with ResultsWriter(path, metadata={"run_id": path.stem}) as writer:
        for method in ("naive", "aca"):
            case = Case(task=task, method=method, size=2, rtol=1e-4, atol=1e-6)
            writer.write(Record(case, case.case_id, "ok", grad_rel_error=error, time_forward_s=0.1))
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"odebench {odebench.__version__}\n"


def test_every_option_has_help():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, command in commands.choices.items()
        for action in command._actions
        if not action.help
    ]
    assert missing == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--resume", "--task", "linear"], "--resume continues a results file: give --out FILE too"),
        (
            ["run", "--solver", "rk4", "--rtol", "1e-3"],
            "--rtol applies only to adaptive solvers, and rk4 is fixed-step: give --step-size instead",
        ),
        (
            ["run", "--task", "linear", "--step-size", "0.1"],
            "--step-size applies only to fixed-step solvers, and dopri5 (the default solver) is adaptive: "
            "give --rtol instead, or --solver rk4",
        ),
        (
            ["run", "--suite", "train-quick"],
            "suite 'train-quick' is a training suite: run it with `odebench train --suite train-quick`; "
            "`odebench run` takes: quick, full, scaling, scale, stiff-chaotic, gate",
        ),
        (
            ["train", "--suite", "quick"],
            "suite 'quick' is a gradient suite: run it with `odebench run --suite quick`; "
            "`odebench train` takes: train-quick",
        ),
    ],
)
def test_a_flag_that_cannot_apply_exits_2_with_one_line(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv, "--dry-run")
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"odebench: error: {message}"), err


@pytest.mark.parametrize("flag, value", [("--max-memory", "-1"), ("--max-error", "0")])
def test_report_limits_must_be_positive(capsys, tmp_path, flag, value):
    with pytest.raises(SystemExit) as exited:
        main(["report", "unused.jsonl", "--out", str(tmp_path / "r"), flag, value])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1
    assert f"argument {flag}: must be a positive number, got {value}" in err


def test_resume_refuses_a_file_that_is_not_results(capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, one line\n")
    code, _, err = run_cli(
        capsys, "run", "--task", "linear", "--size", "2", "--method", "naive", "--solver", "rk4",
        "--in-process", "--no-progress", "--out", notes, "--resume",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert f"{notes} is not an odebench results file (its first line is not a results header)" in err
    assert notes.read_text() == "my notes, one line\n"


def test_resuming_a_model_whose_content_changed_warns_naming_both(capsys, tmp_path):
    out = tmp_path / "r.jsonl"
    recorded = "model:LinearField-0000abcd"
    case = Case(task=recorded, method="naive", size=1, solver="rk4", step_size=0.1)
    with ResultsWriter(out, metadata={"run_id": "r"}) as writer:
        writer.write(Record(case, case.case_id, "ok"))
    argv = ["run", "--model", "tests.model_factories:linear", "--method", "naive", "--solver", "rk4"]
    code, _, err = run_cli(capsys, *argv, "--in-process", "--out", out, "--resume", "--dry-run")
    (line,) = err.splitlines()
    assert code == 0 and line.startswith(f"odebench: warning: {out} records {recorded}, but --model")
    assert "is now model:LinearField-" in line and "none of its recorded cases is skipped" in line


def test_sigterm_stops_a_run_with_the_resume_line(capsys, tmp_path, monkeypatch):
    from odebench import results

    monkeypatch.setenv("ODEBENCH_CACHE", str(tmp_path / "cache"))
    write = results.ResultsWriter.write

    def write_then_terminated(self, record, **placement):
        write(self, record, **placement)
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None), "no SIGTERM handler"
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(results.ResultsWriter, "write", write_then_terminated)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "r.jsonl"
    code, _, err = run_cli(
        capsys, "run", "--task", "linear", "--size", "2", "--method", "naive", "aca", "--solver", "rk4",
        "--repeats", "1", "--in-process", "--no-progress", "--out", out,
    )  # fmt: skip
    assert code == 128 + signal.SIGTERM
    assert err.strip().endswith(f"interrupted: rerun with --resume --out {out} to continue")
    assert len(load(out)) == 1 and signal.getsignal(signal.SIGTERM) is before


def fake_report(frame, out_dir, **options):
    """What `write_report` leaves: two files and a figure."""
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    (out_dir / "figures" / "new.png").write_bytes(b"png")
    (out_dir / "report.md").write_text("new")
    (out_dir / "report.html").write_text("new")
    return out_dir / "report.html"


def test_a_report_replaces_its_folder_whole_and_ctrl_c_leaves_it_as_it_was(capsys, tmp_path, monkeypatch):
    from odebench.report import build

    results = write_results(tmp_path / "r.jsonl")
    out = tmp_path / "rep"

    def interrupted(doc, out_dir):  # report.md and the figures are written by then
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "to_html", interrupted)
    code, _, err = run_cli(capsys, "report", results, "--out", out)
    assert code == 130 and err == f"odebench report: interrupted; {out} left as it was (no partial report)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]

    monkeypatch.undo()
    code, printed, _ = run_cli(capsys, "report", results, "--out", out)
    assert code == 0 and printed == f"report: {out / 'report.html'} (and report.md, figures/ beside it)\n"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    figures = sorted(p.name for p in (out / "figures").iterdir())
    (out / "figures" / "stale.svg").write_text("old")
    (out / "notes.txt").write_text("mine")
    assert run_cli(capsys, "report", results, "--out", out)[0] == 0
    assert sorted(p.name for p in (out / "figures").iterdir()) == figures
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl", "rep"] and (out / "notes.txt").exists()

    written = (out / "report.md").read_text()
    monkeypatch.setattr(build, "to_html", interrupted)
    assert run_cli(capsys, "report", results, "--out", out)[0] == 130
    assert (out / "report.md").read_text() == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl", "rep"]


def test_a_closed_pipe_ends_quietly():
    odebench_list = f"{shlex.quote(sys.executable)} -m odebench list"
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {odebench_list} | head -1; {odebench_list} | true"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.stdout == "tasks:\n" and done.stderr == "" and done.returncode in (0, 128 + signal.SIGPIPE)


def test_warnings_about_results_files_are_one_line_each_once(capsys, tmp_path, monkeypatch):
    import odebench.report

    monkeypatch.setattr(odebench.report, "write_report", fake_report)
    torn = []
    for i in range(5):  # more files than the reader keeps parsed: each is read again
        path = write_results(tmp_path / f"torn{i}.jsonl")
        with open(path, "a") as f:
            f.write('{"type": "rec')
        torn.append(path)
    code, _, err = run_cli(capsys, "report", *torn, "--out", tmp_path / "rep")
    assert code == 0
    assert sorted(err.splitlines()) == [
        f"odebench: warning: {path}:4: skipped an unparsable last line (not valid JSON: Unterminated "
        "string starting at: line 1 column 10 (char 9)); a run was probably killed while writing it"
        for path in torn
    ]


def test_list_json(capsys):
    code, out, _ = run_cli(capsys, "list", "--json")
    listing = json.loads(out)
    assert code == 0 and list(listing) == ["tasks", "studies", "methods", "solvers", "suites"]
    linear = next(task for task in listing["tasks"] if task["name"] == "linear")
    assert linear["exact_gradient"] is True and linear["size_knob"] == "dimension" and 2 in linear["sizes"]
    assert {s["name"]: s["adaptive"] for s in listing["solvers"]}["rk4"] is False
    assert {s["name"]: s["job"] for s in listing["suites"]}["train-quick"] == "training"
    naive = next(m for m in listing["methods"] if m["name"] == "naive")
    assert naive["available"] is True and naive["backend"] == "torchdiffeq" and naive["adaptive"] is True
    assert all(m["available"] or m["reason"] for m in listing["methods"])
    assert listing["studies"] and all(s["name"] and s["paper"] for s in listing["studies"])
    code, out, _ = run_cli(capsys, "list", "solvers", "--json")
    assert list(json.loads(out)) == ["solvers"]


def test_compare_json_and_runs_without_a_common_case(capsys, tmp_path):
    base = write_results(tmp_path / "base.jsonl")
    worse = write_results(tmp_path / "worse.jsonl", error=2e-4)
    code, out, _ = run_cli(capsys, "compare", base, worse, "--json")
    result = json.loads(out)
    assert code == 1 and (result["verdict"], result["exit_code"]) == ("regressed", 1)
    assert result["counts"] == {
        "in_both": 2, "regressions": 2, "improvements": 0, "changes": 0, "only_in_base": 0, "only_in_new": 0,
    }  # fmt: skip
    assert [(d["metric"], d["base"], d["new"]) for d in result["regressions"]] == [
        ("grad_rel_error", 1e-4, 2e-4)
    ] * 2
    assert result["policy"]["memory_factor"] == 1.1
    other = write_results(tmp_path / "other.jsonl", task="spiral")
    code, out, err = run_cli(capsys, "compare", base, other)
    assert code == 2 and out == ""
    assert err == (
        f"odebench: error: {base} and {other} have no cases in common (2 only in base, 2 only in new): "
        "nothing to compare\n"
    )


def test_compare_counts_cases_as_the_run_does(capsys):
    """A ratio case times several methods: it is one case, as the run that recorded it says."""
    cases = set(load(BASELINE)["case_id"]) | set(load_ratios(BASELINE)["case_id"])
    code, out, _ = run_cli(capsys, "compare", BASELINE, BASELINE)
    assert code == 0 and f"no regression: {len(cases)} cases in both runs;" in out
