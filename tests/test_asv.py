"""The asv suite imports and runs: `asv check`, then a quick run of one benchmark (no results saved)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("asv") is None, reason="asv is not installed (pip install -e '.[dev]')"
)


def asv(*args: str, home: Path) -> subprocess.CompletedProcess:
    """Run asv with the repository's configuration, its output directories moved under `home`.

    HOME too: asv keeps the machine description in ~/.asv-machine.json, and even a dry run writes
    the machine's name into the results directory; the test leaves both of the developer's alone.
    """
    from asv.util import load_json, write_json

    conf = load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    conf.update(
        repo=str(ROOT),
        benchmark_dir=str(ROOT / "benchmarks"),
        env_dir=str(home / "env"),
        results_dir=str(home / "results"),
        html_dir=str(home / "html"),
    )
    config = home / "asv.conf.json"
    write_json(str(config), conf)
    env = dict(os.environ, HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "asv", *args, "--config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_asv_check_and_a_quick_run(tmp_path):
    machine = asv("machine", "--yes", "--machine", "odebench-test", home=tmp_path)
    assert machine.returncode == 0, machine.stdout + machine.stderr

    check = asv("check", "--python=same", home=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No problems found" in check.stdout

    run = asv(
        "run",
        "--python=same",
        "--quick",
        "--dry-run",
        "--show-stderr",
        "--machine",
        "odebench-test",
        "--bench",
        r"TimeMethods\.time_backward",
        home=tmp_path,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "time_backward" in output and "failed" not in output
