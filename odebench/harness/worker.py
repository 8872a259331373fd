"""Run cases in a worker subprocess, so a hang, a crash or an out-of-memory kill costs one case.

The worker is a long-lived ``python -m odebench.harness.worker`` process: torch is imported
once, not per case, and a case's timeout starts only once the worker has said it is ready.
The parent sends one JSON case per line on the worker's stdin; the worker answers one JSON
record per line on a private pipe (its own stdout is redirected to stderr, so prints in
user code cannot corrupt the protocol). When a case outlives its timeout the worker is killed;
when the worker dies (segfault, ``os._exit``, the kernel's OOM killer) the case is recorded as
crashed with the signal or exit code and the tail of the worker's stderr. Either way the next
case gets a fresh worker.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from odebench.record import Case, Record

_STDERR_TAIL = 600
_READY = b"ready"
#: Generous: importing torch on a loaded machine takes seconds; a case's timeout starts after.
STARTUP_TIMEOUT_S = 300.0


class Worker:
    """A restartable worker subprocess; `run(case)` always returns a Record."""

    def __init__(self, *, plugins: Sequence[str] = (), threads: int = 1, cache_dir: str | None = None):
        self.plugins = [str(Path(p).resolve()) for p in plugins]
        self.threads = threads
        self.cache_dir = cache_dir
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self._buffer = b""

    def _start(self) -> None:
        command = [sys.executable, "-m", "odebench.harness.worker", "--threads", str(self.threads)]
        for plugin in self.plugins:
            command += ["--plugin", plugin]
        if self.cache_dir:
            command += ["--cache-dir", str(self.cache_dir)]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the worker)
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0
        )
        self._buffer = b""

    def run(self, case: Case, timeout: float | None) -> Record:
        started = time.perf_counter()
        if self._process is None or self._process.poll() is not None:
            self._start()
            ready = self._read_line(STARTUP_TIMEOUT_S)
            if ready != _READY:
                if ready is None:
                    self._kill()
                    return Record.failed(case, "crashed", "WorkerCrashed: worker did not start in time")
                return self._crashed(case, started)
        assert self._process is not None and self._process.stdin is not None
        started = time.perf_counter()
        try:
            self._process.stdin.write((json.dumps(case_to_json(case)) + "\n").encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            return self._crashed(case, started)
        line = self._read_line(timeout)
        if line is None:
            self._kill()
            return Record.failed(
                case,
                "timeout",
                f"TimeoutError: no result within {timeout:g} s; worker killed",
                wall_time_s=time.perf_counter() - started,
            )
        if line == b"":
            return self._crashed(case, started)
        return Record.from_dict(json.loads(line))

    def _read_line(self, timeout: float | None) -> bytes | None:
        """One protocol line; b"" when the worker died, None on timeout."""
        assert self._process is not None and self._process.stdout is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _crashed(self, case: Case, started: float) -> Record:
        assert self._process is not None
        code = self._process.wait()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        tail = self._stderr_tail()
        message = f"WorkerCrashed: worker died with {how}" + (f"; stderr: {tail}" if tail else "")
        self._process = None
        return Record.failed(case, "crashed", message, wall_time_s=time.perf_counter() - started)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL))
        return " ".join(self._stderr.read().decode(errors="replace").split())

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
        self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def case_to_json(case: Case) -> dict:
    from dataclasses import asdict

    return asdict(case)


def _serve(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="odebench.harness.worker")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plugin", action="append", default=[])
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import torch

    from odebench.harness.run import run_case
    from odebench.plugins import load_plugins

    torch.set_num_threads(args.threads)
    load_plugins(args.plugin)
    protocol.write(_READY.decode() + "\n")
    protocol.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        record = run_case(Case(**json.loads(line)), cache_dir=args.cache_dir)
        protocol.write(json.dumps(record.to_dict(), default=str) + "\n")
        protocol.flush()


if __name__ == "__main__":
    _serve()
