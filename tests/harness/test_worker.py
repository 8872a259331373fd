"""The worker template against cases that defy its isolation: a module that shadows the standard
library in the working directory, a process a case leaves running, a case that writes on every
descriptor it has."""

from __future__ import annotations

import os
import time

from odebench.harness.worker import Worker
from tests.harness.faults import PLUGIN, case


def test_a_module_in_the_working_directory_is_not_imported_by_the_worker(tmp_path, monkeypatch):
    """`python -m` puts the working directory first on sys.path: a json.py there would run in the
    worker in place of the standard library's."""
    marker = tmp_path / "imported"
    (tmp_path / "json.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(7)\n")
    monkeypatch.chdir(tmp_path)
    worker = Worker()
    try:
        record = worker.run(case(), timeout=120)
    finally:
        worker.close()
    assert record.status == "ok", record.error
    assert not marker.exists()


def test_a_case_ends_with_its_exit_status_and_takes_what_it_started_with_it(tmp_path, monkeypatch):
    """The process the case forked holds its pipe open: the case still ends as `crashed` with its
    exit code at once (not as a timeout), and the process is killed with it."""
    trace = tmp_path / "orphan.pid"
    monkeypatch.setenv("ODEBENCH_FAULT_TRACE", str(trace))
    worker = Worker(plugins=[PLUGIN])
    try:
        started = time.perf_counter()
        record = worker.run(case(method="fault_orphan"), timeout=60)
        elapsed = time.perf_counter() - started
        after = worker.run(case(), timeout=120)
    finally:
        worker.close()
    assert record.status == "crashed" and "exit code 5" in record.error
    assert elapsed < 30
    orphan = int(trace.read_text())
    time.sleep(0.2)
    assert not _alive(orphan)
    assert after.status == "ok"


def test_a_case_that_writes_on_every_descriptor_it_has_does_not_end_the_sweep():
    worker = Worker(plugins=[PLUGIN])
    try:
        scribbled = worker.run(case(method="fault_scribble"), timeout=120)
        after = worker.run(case(), timeout=120)
    finally:
        worker.close()
    assert scribbled.status == "ok", scribbled.error
    assert after.status == "ok", after.error


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_case_beyond_its_memory_limit_ends_as_memory_and_the_next_runs():
    worker = Worker(plugins=[PLUGIN], memory_limit=256 * 2**20)
    try:
        hog = worker.run(case(method="fault_hog"), timeout=120)
        after = worker.run(case(), timeout=120)
    finally:
        worker.close()
    assert hog.status == "memory" and "allocate" in hog.error
    assert after.status == "ok", after.error


def test_the_workers_stderr_is_trimmed_to_its_tail(monkeypatch):
    from odebench.harness import worker as worker_module

    monkeypatch.setattr(worker_module, "STDERR_CAP", 2**20)
    worker = Worker(plugins=[PLUGIN])
    try:
        for _ in range(2):
            assert worker.run(case(method="fault_chatty"), timeout=120).status == "ok"
        worker._stderr.seek(0, os.SEEK_END)
        assert worker._stderr.tell() <= worker_module.STDERR_KEEP
    finally:
        worker.close()
