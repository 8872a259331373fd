"""A sweep survives every failure, records its status, loses nothing and resumes exactly."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from odebench.environment import collect_metadata
from odebench.harness.executors import Local
from odebench.harness.summary import counted
from odebench.harness.sweep import run_sweep
from odebench.jobs.gradient import resolve
from odebench.results import load
from tests.harness.faults import EXPECTED, PLUGIN, ROOT, case

pytestmark = pytest.mark.usefixtures("faults_registered")


@pytest.fixture(scope="module")
def faulty_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "faults.jsonl"
    cache = tmp_path_factory.mktemp("cache")
    result = run_sweep(
        [c for c, _, _ in EXPECTED],
        out,
        metadata=collect_metadata(),
        executor=Local(plugins=[PLUGIN], cache_dir=str(cache)),
        timeout=5,
        progress=False,
    )
    return out, result


def test_every_fault_becomes_a_record_with_its_status(faulty_sweep):
    out, result = faulty_sweep
    statuses = {r.case_id: (r.status, r.error) for r in result.records}
    for c, status, fragment in EXPECTED:
        got, error = statuses[resolve(c).case_id]
        assert got == status, (c.label(), got, error)
        if fragment:
            assert fragment in error
    frame = load(out)
    assert len(frame) == len(EXPECTED)
    healthy = frame[frame.status == "ok"]
    assert len(healthy) == 2
    assert healthy.grad_rel_error.notna().all() and (healthy.grad_rel_error < 1e-3).all()
    assert (healthy.nfe_forward > 0).all()


def test_failed_case_keeps_what_was_measured(faulty_sweep):
    out, _ = faulty_sweep
    frame = load(out).set_index("method")
    explode = load(out).query("task == 'fault_explode'").iloc[0]
    assert explode.nfe_forward > 100 * 6  # the evaluations spent before the budget ran out
    assert frame.loc["fault_hang", "wall_time_s"] >= 5


def test_resume_skips_recorded_cases(faulty_sweep, tmp_path):
    out, _ = faulty_sweep
    extra = case(size=3)
    result = run_sweep(
        [c for c, _, _ in EXPECTED] + [extra],
        out,
        metadata=collect_metadata(),
        resume=True,
        executor=Local(plugins=[PLUGIN], cache_dir=str(tmp_path)),
        progress=False,
    )
    assert result.skipped == len(EXPECTED)
    assert [r.case_id for r in result.records] == [resolve(extra).case_id]
    frame = load(out)
    assert frame.case_id.is_unique and len(frame) == len(EXPECTED) + 1


def test_retry_failed_runs_again_the_cases_a_loaded_machine_failed(tmp_path):
    """A timeout and a crash are recorded; resuming with them retried runs those two again (with a
    generous timeout, the hang still times out; the exit still crashes) and nothing else, and the
    header says what was retried."""
    from odebench.results import read_metadata

    out = tmp_path / "r.jsonl"
    cases = [case(), case(method="fault_hang"), case(method="fault_exit")]
    executor = Local(plugins=[PLUGIN], cache_dir=str(tmp_path))
    run_sweep(cases, out, metadata=collect_metadata(), executor=executor, timeout=2, progress=False)
    again = run_sweep(
        cases, out, metadata=collect_metadata(), executor=executor, timeout=2, progress=False,
        resume=True, retry=("timeout", "crashed"),
    )  # fmt: skip
    assert again.skipped == 1 and sorted(r.case.method for r in again.records) == ["fault_exit", "fault_hang"]
    assert read_metadata(out)[-1]["retried_statuses"] == ["timeout", "crashed"]
    frame = load(out)
    assert frame.case_id.is_unique and len(frame) == 3


@pytest.mark.parametrize(
    "executor",
    [
        ["--executor", "local"],
        pytest.param(
            ["--executor", "dask", "--workers", "2"],
            marks=pytest.mark.skipif(not importlib.util.find_spec("distributed"), reason="needs distributed"),
        ),
    ],
    ids=["local", "dask"],
)
def test_kill_dash_nine_mid_sweep_then_resume_loses_and_duplicates_nothing(tmp_path, executor):
    """Whatever executor ran the killed sweep, --resume runs exactly the cases it had not recorded."""
    out = tmp_path / "killed.jsonl"
    command = [
        sys.executable,
        "-m",
        "odebench",
        "run",
        "--task",
        "linear",
        "--method",
        "fault_slow",
        "--solver",
        "dopri5",
        "--rtol",
        "1e-3",
        "1e-4",
        "1e-5",
        "1e-6",
        "1e-7",
        "1e-8",
        "--size",
        "2",
        "--repeats",
        "1",
        "--plugin",
        PLUGIN,
        "--out",
        str(out),
        "--no-progress",
        *executor,
    ]
    env = {**os.environ, "ODEBENCH_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().count('"type": "record"') >= 2:
            break
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    assert f"executor: {executor[1]}, ".encode() in process.communicate()[0]
    done = len(load(out))
    assert 2 <= done < 6
    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{counted(6 - done, 'run', done=True)} (0 failed)" in resumed.stdout
    frame = load(out)
    assert len(frame) == 6 and frame.case_id.is_unique and (frame.status == "ok").all()


def test_a_cases_peak_memory_does_not_depend_on_the_cases_before_it(tmp_path):
    """Each case runs in a fresh fork of the same template: in one long-lived worker this case
    measured 205 KB alone and 163 KB after ten others."""
    target = resolve(case(method="adjoint", size=None))
    before = [
        case(task=t, method=m, size=None)
        for t, m in (("spiral", "naive"), ("mlp", "aca"), ("linear", "symplectic"))
    ]
    peaks = []
    for n, cases in enumerate(([target], [*before, target])):
        result = run_sweep(
            cases,
            tmp_path / f"{n}.jsonl",
            metadata={},
            executor=Local(cache_dir=str(tmp_path)),
            progress=False,
        )
        (record,) = [r for r in result.records if r.case_id == target.case_id]
        peaks.append(record.peak_memory_bytes)
    assert abs(peaks[1] - peaks[0]) <= 0.03 * peaks[0], peaks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_template_worker_is_one_thread_so_forking_it_is_safe(tmp_path):
    """A thread in the forking process (OpenBLAS starts pools on import) can leave a child a held
    lock; the template keeps BLAS single-threaded and runs no case itself."""
    from odebench.harness.worker import Worker

    worker = Worker(cache_dir=str(tmp_path))
    try:
        record = worker.run(case(method="aca"), timeout=120)
        assert record.status == "ok"
        assert len(os.listdir(f"/proc/{worker._process.pid}/task")) == 1
    finally:
        worker.close()
