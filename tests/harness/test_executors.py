"""Executors: local workers and a Dask cluster give the serial sweep's records, keep its isolation,
lose and duplicate nothing when a Dask worker dies, and shards merge into the whole (killing the
client is in test_sweep.py, for every executor)."""

from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import replace

import pytest

from odebench import suites
from odebench.cli import main
from odebench.comparison import COUNTS, ERRORS
from odebench.harness.executors import Dask, ExecutorError, Local
from odebench.harness.sweep import run_sweep
from odebench.jobs.gradient import resolve
from odebench.results import load, merge, read_metadata
from tests.harness.faults import EXPECTED, PLUGIN, case

distributed = pytest.importorskip("distributed", reason="needs odebench[distributed] (the dev extra has it)")
pytestmark = pytest.mark.usefixtures("faults_registered")

#: What does not depend on the machine or its load: statuses, counts, gradient errors.
DETERMINISTIC = ["status", *COUNTS, *ERRORS, "grad_rel_error_y0", "grad_rel_error_params", "grad_cosine"]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """The file `fault_trace` cases write their intervals to, set before the cluster starts so
    that its workers inherit it."""
    path = tmp_path_factory.mktemp("trace") / "intervals.txt"
    os.environ["ODEBENCH_FAULT_TRACE"] = str(path)
    yield path
    del os.environ["ODEBENCH_FAULT_TRACE"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, trace):
    """A LocalCluster of two single-threaded worker processes, shared by this module's tests."""
    with Dask(workers=2, plugins=[PLUGIN], cache_dir=str(tmp_path_factory.mktemp("cache"))) as executor:
        yield executor


def sweep(executor, cases, out, **kw):
    return run_sweep(cases, out, metadata={"suite": "test"}, executor=executor, progress=False, **kw)


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_every_fault_gets_its_serial_status_under_each_executor(kind, cluster, tmp_path):
    executor = cluster if kind == "dask" else Local(2, plugins=[PLUGIN], cache_dir=str(tmp_path))
    out = tmp_path / "faults.jsonl"
    result = sweep(executor, [c for c, _, _ in EXPECTED], out, timeout=5)
    statuses = {r.case_id: (r.status, r.error) for r in result.records}
    assert len(result.records) == len(statuses) == len(EXPECTED)
    for c, status, fragment in EXPECTED:
        got, error = statuses[resolve(c).case_id]
        assert got == status, (c.label(), got, error)
        assert fragment is None or fragment in error
    frame = load(out)
    assert (frame.executor == kind).all() and frame.host.notna().all()
    (header,) = read_metadata(out)
    assert header["executor"] == kind and header["cluster_workers"] == 2


def test_the_quick_suite_measures_the_same_under_dask_as_serially(cluster, tmp_path):
    """Counts and gradient errors, case for case, bitwise (one repeat: times are not compared)."""
    quick = suites.plan("quick", settings=suites.Settings(ratios=False)).cases
    cases = [replace(c, repeats=1) for c in quick[::3]]  # a third: every task, method and kind of solver
    sweep(Local(cache_dir=cluster.spec.cache_dir), cases, tmp_path / "serial.jsonl")
    sweep(cluster, cases, tmp_path / "dask.jsonl")
    serial, dask = (
        load(tmp_path / f"{n}.jsonl").set_index("case_id").sort_index() for n in ("serial", "dask")
    )
    assert len(serial) == len(dask) == len(cases) and (serial.index == dask.index).all()
    assert (serial.status == "ok").all()
    for column in DETERMINISTIC:
        assert serial[column].equals(dask[column]), column


def test_killing_a_dask_worker_mid_sweep_loses_and_duplicates_nothing(cluster, tmp_path):
    client = cluster.client
    killed = []

    def kill_a_busy_worker(record):
        if killed:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [address for address, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.05)

    cases = [case(method="fault_slow", rtol=rtol) for rtol in (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)]
    sweep(cluster, cases, tmp_path / "killed.jsonl", on_record=kill_a_busy_worker)
    assert killed and killed[0] not in client.nthreads()
    frame = load(tmp_path / "killed.jsonl")
    assert len(frame) == 6 and frame.case_id.is_unique and (frame.status == "ok").all()
    assert set(frame.case_id) == {resolve(c).case_id for c in cases}


def test_a_case_that_kills_every_worker_it_meets_is_recorded_crashed_after_the_retries(
    cluster, tmp_path, monkeypatch
):
    monkeypatch.setattr(cluster, "retries", 1)
    cases = [case(method="fault_kill_worker"), case()]
    result = sweep(cluster, cases, tmp_path / "killer.jsonl")
    statuses = {r.case.method: (r.status, r.error) for r in result.records}
    assert statuses["aca"] == ("ok", None)
    status, error = statuses["fault_kill_worker"]
    assert status == "crashed" and error.startswith("KilledWorker: the Dask worker running it died, 2 times")


def test_cpu_cases_run_one_at_a_time_per_host_when_asked(cluster, tmp_path, trace, monkeypatch):
    monkeypatch.setattr(cluster, "one_per_host", True)
    cases = [case(method="fault_trace", rtol=rtol) for rtol in (1e-3, 1e-4, 1e-5)]
    result = sweep(cluster, cases, tmp_path / "exclusive.jsonl")
    assert [r.status for r in result.records] == ["ok"] * 3
    intervals = sorted(tuple(map(float, line.split())) for line in trace.read_text().splitlines())
    assert len(intervals) >= 3 * 2  # each case solves at least twice (counted run, timing)
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start >= end


def test_cuda_cases_are_refused_where_no_worker_declares_a_gpu(cluster, tmp_path):
    with pytest.raises(ExecutorError, match="declare a GPU resource"):
        sweep(cluster, [case(device="cuda")], tmp_path / "gpu.jsonl")


def test_shards_merged_are_the_unsharded_run(tmp_path, capsys):
    grid = ["run", "--task", "linear", "--size", "2", "--method", "naive", "aca", "--rtol", "1e-3", "1e-5"]
    grid += ["--solver", "dopri5", "bosh3", "--repeats", "1", "--in-process", "--no-progress", "--no-ratios"]
    assert main([*grid, "--out", str(tmp_path / "all.jsonl")]) == 0
    for index in (1, 2, 3):
        assert main([*grid, "--shard", f"{index}/3", "--out", str(tmp_path / f"{index}.jsonl")]) == 0
    shards = [set(load(tmp_path / f"{index}.jsonl").case_id) for index in (1, 2, 3)]
    assert all(shards) and not (shards[0] & shards[1] or shards[0] & shards[2] or shards[1] & shards[2])
    result = merge([tmp_path / f"{index}.jsonl" for index in (1, 2, 3)], tmp_path / "merged.jsonl")
    assert result.replaced == 0 and result.missing_shards == []
    merged, whole = load(tmp_path / "merged.jsonl"), load(tmp_path / "all.jsonl")
    assert sorted(merged.case_id) == sorted(whole.case_id) and len(whole) == 8
    assert [m["shard"] for m in read_metadata(tmp_path / "merged.jsonl")] == ["1/3", "2/3", "3/3"]


@pytest.mark.parametrize("address", ["tcp://host:notaport", "::::", "http://x:1", "garbage"])
def test_a_malformed_scheduler_address_is_refused_at_once(address):
    pytest.importorskip("distributed")
    from odebench.errors import InvalidInputError
    from odebench.harness.executors import ExecutorOptions

    with pytest.raises(InvalidInputError, match="is not a Dask scheduler address"):
        ExecutorOptions(executor="dask", scheduler=address)


def test_a_scheduler_that_never_answers_is_given_up_on_in_the_stated_time(monkeypatch):
    pytest.importorskip("distributed")
    import socket
    import threading

    from odebench.harness import executors

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2.0)
    started = time.perf_counter()
    with pytest.raises(executors.ExecutorError, match=r"no answer from the Dask scheduler at .* within 2 s"):
        executors.Dask(scheduler=f"tcp://127.0.0.1:{listener.getsockname()[1]}")
    assert time.perf_counter() - started < 15
    listener.close()
