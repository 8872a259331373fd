"""Run cases in a worker subprocess, so a hang, a crash or an out-of-memory kill costs one case.

Two processes stand between the sweep and a case:

* the **template**, ``python -m odebench.harness.worker``, started by `Worker`: it imports torch,
  odebench and the plug-ins once and then never runs a case itself;
* for every case the template **forks a child** that runs it (`run_case`) and writes back its
  Record; the template waits for the child with the case's timeout and kills it when the time is
  up.

So every case starts from the same process state: what ran before cannot change its
measurements (in one long-lived worker the peak memory of ``linear/adjoint/dopri5/tol=1e-4``
was 205 KB run alone and 163 KB after ten other cases, because earlier cases had filled
allocator free lists and caches), and a case that segfaults, calls ``os._exit`` or is killed
leaves the template alive, so the next case does not pay for importing torch again. A case's
timeout starts only once the template is ready.

Protocol: the sweep writes one JSON object per line on the template's stdin
(``{"case": {...}, "timeout": seconds or null}``); the template answers one JSON object per line
on a private pipe (its own stdout is redirected to stderr, so prints in user code cannot corrupt
the protocol): ``{"record": {...}}``, ``{"died": "signal SIGSEGV", "wall_time_s": ...}`` or
``{"timeout": seconds, "wall_time_s": ...}``. `Worker` turns the last two into Records with
status ``crashed`` (with the tail of the worker's stderr) and ``timeout``. Where ``fork`` is not
available (not Linux), or a plug-in initialised CUDA in the template (a forked child cannot use
it), the template runs each case itself, and measurements can then depend on the cases before
it. The template never touches the GPU itself, so each forked child initialises CUDA afresh.
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
from dataclasses import asdict
from pathlib import Path

from odebench.record import Case, Record

_STDERR_TAIL = 600
_READY = b"ready"
#: Generous: importing torch on a loaded machine takes seconds; a case's timeout starts after.
STARTUP_TIMEOUT_S = 300.0
#: Time the sweep allows the template beyond a case's own timeout (fork, reporting, killing).
TEMPLATE_GRACE_S = 30.0
FORK_PER_CASE = sys.platform.startswith("linux") and hasattr(os, "fork")


class Worker:
    """A restartable template subprocess; `run(case, timeout)` always returns a Record."""

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
        if self._stderr is None:
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the worker)
        # One hash seed for every template: the same case meets the same dict layouts each run.
        env = {"PYTHONHASHSEED": "0", **os.environ}
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0, env=env
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
                return self._crashed(case, self._exit_description(), started)
        assert self._process is not None and self._process.stdin is not None
        started = time.perf_counter()
        request = {"case": asdict(case), "timeout": timeout}
        try:
            self._process.stdin.write((json.dumps(request) + "\n").encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            return self._crashed(case, self._exit_description(), started)
        line = self._read_line(None if timeout is None else timeout + TEMPLATE_GRACE_S)
        if line is None:
            self._kill()
            return _timed_out(case, timeout, time.perf_counter() - started)
        if line == b"":
            return self._crashed(case, self._exit_description(), started)
        answer = json.loads(line)
        if "record" in answer:
            return Record.from_dict(answer["record"])
        if "timeout" in answer:
            return _timed_out(case, answer["timeout"], answer["wall_time_s"])
        return self._crashed(case, answer["died"], started, answer.get("wall_time_s"))

    def _read_line(self, timeout: float | None) -> bytes | None:
        """One protocol line; b"" when the template died, None on timeout."""
        assert self._process is not None and self._process.stdout is not None
        line, self._buffer = _read_line(self._process.stdout.fileno(), self._buffer, timeout)
        return line

    def _exit_description(self) -> str:
        assert self._process is not None
        code = self._process.wait()
        self._process = None
        return _how(code)

    def _crashed(self, case: Case, how: str, started: float, wall: float | None = None) -> Record:
        tail = self._stderr_tail()
        message = f"WorkerCrashed: worker died with {how}" + (f"; stderr: {tail}" if tail else "")
        wall = time.perf_counter() - started if wall is None else wall
        return Record.failed(case, "crashed", message, wall_time_s=wall)

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


def _timed_out(case: Case, timeout: float | None, wall: float) -> Record:
    return Record.failed(
        case,
        "timeout",
        f"TimeoutError: no result within {timeout:g} s; case killed",
        wall_time_s=wall,
    )


def _how(code: int) -> str:
    """``signal SIGSEGV`` or ``exit code 3`` from a wait status code as subprocess reports it."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _read_line(fd: int, buffer: bytes, timeout: float | None) -> tuple[bytes | None, bytes]:
    """Read from `fd` until a full line: (line, rest); (b"", rest) at EOF, (None, rest) on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while b"\n" not in buffer:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None, buffer
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"", buffer
        buffer += chunk
    line, rest = buffer.split(b"\n", 1)
    return line, rest


# ------------------------------------------------------------------------------ the template


def _run_forked(case: Case, timeout: float | None, cache_dir: str | None) -> dict:
    """Run `case` in a forked child; the answer object of the protocol."""
    from odebench.harness.run import run_case

    started = time.perf_counter()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the case, write its record, leave without cleanup
        os.close(read_end)
        try:
            record = run_case(case, cache_dir=cache_dir)
            data = (json.dumps({"record": record.to_dict()}, default=str) + "\n").encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os._exit(0)
    os.close(write_end)
    line, _ = _read_line(read_end, b"", timeout)
    os.close(read_end)
    wall = time.perf_counter() - started
    if line is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return {"timeout": timeout, "wall_time_s": wall}
    _, status = os.waitpid(pid, 0)
    if line:
        return json.loads(line)
    return {"died": _how(os.waitstatus_to_exitcode(status)), "wall_time_s": wall}


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
    # A process that has initialised CUDA cannot hand it to a fork; a plug-in that touched the
    # GPU at import makes the template run its cases itself.
    fork = FORK_PER_CASE and not torch.cuda.is_initialized()
    protocol.write(_READY.decode() + "\n")
    protocol.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        case = Case(**request["case"])
        if fork:
            answer = _run_forked(case, request["timeout"], args.cache_dir)
        else:
            answer = {"record": run_case(case, cache_dir=args.cache_dir).to_dict()}
        protocol.write(json.dumps(answer, default=str) + "\n")
        protocol.flush()


if __name__ == "__main__":
    _serve()
