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
(``{"kind": "gradient" or "training", "case": {...}, "timeout": seconds or null}``, see
`odebench.jobs`); the template answers one JSON object per line on a private pipe (its
own stdout is redirected to stderr, so prints in user code cannot corrupt the protocol):
``{"record": {...}}``, ``{"died": "signal SIGSEGV", ...}`` or ``{"timeout": seconds, ...}``, the
last two with ``wall_time_s`` and the ``partial`` points a streaming job (a training run) had
reported. `Worker` turns them into records with status ``crashed`` (with the tail of the
worker's stderr) and ``timeout``, keeping the partial curve. Where ``fork`` is not
available (not Linux), or a plug-in initialised CUDA in the template (a forked child cannot use
it), the template runs each case itself, and measurements can then depend on the cases before
it. The template never touches the GPU itself, so each forked child initialises CUDA afresh.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import faulthandler
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the jobs import torch: the template imports them after it has set up its pipes
    from odebench.jobs import JobKind

try:  # appending to the stderr file shared with the template; absent on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

_STDERR_TAIL = 600
#: The worker's stderr file (what its cases print) is cut to its last STDERR_KEEP bytes once it
#: holds more than STDERR_CAP: chatty cases cannot fill the disk.
STDERR_CAP, STDERR_KEEP = 8 * 2**20, 64 * 2**10
#: A case that times out prints its stack this long before its deadline (into the worker's
#: stderr), and the timeout record quotes it.
TRACE_LEAD_S = 0.5
_TRACE_TAIL = 3000
_READY = b"ready"
#: Generous: importing torch on a loaded machine takes seconds; a case's timeout starts after.
STARTUP_TIMEOUT_S = 300.0
#: Time the sweep allows the template beyond a case's own timeout (fork, reporting, killing).
TEMPLATE_GRACE_S = 30.0
_PR_SET_PDEATHSIG = 1
FORK_PER_CASE = sys.platform.startswith("linux") and hasattr(os, "fork")
#: How the template starts: the module run by name with the working directory (and any empty
#: entry) off ``sys.path``, where ``python -m`` would put it first, so that a ``json.py`` in the
#: folder `odebench run` is typed in is never imported in place of the standard library's.
_BOOT = (
    "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; import runpy; "
    "runpy.run_module('odebench.harness.worker', run_name='__main__', alter_sys=True)"
)
#: How often the template looks whether a case's child has ended while it waits for its answer.
_POLL_S = 0.05


#: This machine's name, recorded with every record it measures.
HOST = socket.gethostname()


class Worker:
    """A restartable template subprocess; `run(case, timeout)` always returns a record of the
    case's kind (a `Record` for a `Case`, a `TrainingRecord` for a `TrainingCase`)."""

    def __init__(
        self,
        *,
        plugins: Sequence[str] = (),
        threads: int = 1,
        cache_dir: str | None = None,
        memory_limit: int | None = None,
    ):
        self.plugins = [str(Path(p).resolve()) for p in plugins]
        self.threads = threads
        self.cache_dir = cache_dir
        self.memory_limit = memory_limit
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self._buffer = b""

    def _start(self) -> None:
        command = [sys.executable, "-c", _BOOT, "--threads", str(self.threads)]
        for plugin in self.plugins:
            command += ["--plugin", plugin]
        if self.cache_dir:
            command += ["--cache-dir", str(self.cache_dir)]
        if self.memory_limit:
            command += ["--memory-limit", str(self.memory_limit)]
        if self._stderr is None:
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the worker)
            # Appending (the template shares the flag), so that trimming it (`_trim_stderr`)
            # leaves every writer at its end.
            if fcntl is not None:
                fd = self._stderr.fileno()
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        # One hash seed for every template: the same case meets the same dict layouts each run.
        # NumPy's and SciPy's OpenBLAS start a thread pool when imported; a thread in the
        # template makes fork unsafe (a child can inherit a held lock and hang), so BLAS runs
        # single-threaded and the template stays one thread (torch starts its own pool lazily,
        # in the child, with --threads threads).
        env = {"PYTHONHASHSEED": "0", **os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0, env=env
        )
        self._buffer = b""

    def run(self, case, timeout: float | None):
        from odebench.jobs import kind_of

        kind = kind_of(case)
        started = time.perf_counter()
        if self._process is None or self._process.poll() is not None:
            self._start()
            ready = self._read_line(STARTUP_TIMEOUT_S)
            if ready != _READY:
                if ready is None:
                    self._kill()
                    return kind.failed(case, "crashed", "WorkerCrashed: worker did not start in time")
                return self._crashed(kind, case, {"died": self._exit_description()}, started)
        assert self._process is not None and self._process.stdin is not None
        started = time.perf_counter()
        request = {"kind": kind.name, "case": asdict(case), "timeout": timeout}
        try:
            self._process.stdin.write((json.dumps(request) + "\n").encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            return self._crashed(kind, case, {"died": self._exit_description()}, started)
        line = self._read_line(None if timeout is None else timeout + TEMPLATE_GRACE_S)
        if line is None:
            self._kill()
            return _timed_out(kind, case, {"timeout": timeout, "wall_time_s": time.perf_counter() - started})
        if line == b"":
            return self._crashed(kind, case, {"died": self._exit_description()}, started)
        self._trim_stderr()
        answer = json.loads(line)
        if "record" in answer:
            return kind.record(answer["record"])
        if "timeout" in answer:
            return _timed_out(kind, case, answer, self._stderr_tail(_TRACE_TAIL))
        return self._crashed(kind, case, answer, started)

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

    def _crashed(self, kind: JobKind, case, answer: dict, started: float):
        tail = self._stderr_tail()
        message = f"WorkerCrashed: worker died with {answer['died']}" + (f"; stderr: {tail}" if tail else "")
        answer.setdefault("wall_time_s", time.perf_counter() - started)
        return kind.failed(case, "crashed", message, **_measured(kind, answer))

    def _trim_stderr(self) -> None:
        """Keep the worker's stderr file below `STDERR_CAP` bytes: its last `STDERR_KEEP`."""
        if self._stderr is None:
            return
        self._stderr.seek(0, os.SEEK_END)
        if fcntl is None or self._stderr.tell() <= STDERR_CAP:
            return
        self._stderr.seek(-STDERR_KEEP, os.SEEK_END)
        tail = self._stderr.read()
        self._stderr.truncate(0)
        self._stderr.write(tail)
        self._stderr.flush()

    def _stderr_tail(self, chars: int = _STDERR_TAIL) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - chars))
        return " ".join(self._stderr.read().decode(errors="replace").split())

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        """Kill the template now, from any thread: a case it runs ends as ``crashed`` and its
        child dies with it; the next `run` starts a new template."""
        process = self._process
        if process is not None:
            process.kill()

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


@dataclass(frozen=True)
class WorkerSpec:
    """What every case's worker loads: plug-in files (absolute paths, which must exist on every
    machine that runs cases), torch threads, the reference cache directory, and the memory a case
    may take."""

    plugins: tuple[str, ...] = ()
    threads: int = 1
    cache_dir: str | None = None
    #: Bytes a case may add to its address space (None: no limit).
    memory_limit: int | None = None

    def worker(self) -> Worker:
        return Worker(**asdict(self))


def _timed_out(kind: JobKind, case, answer: dict, stderr: str = ""):
    """A timeout record; with the stack the child printed just before its deadline, where it did."""
    message = f"TimeoutError: no result within {answer['timeout']:g} s; case killed"
    at = stderr.rfind("Thread 0x")
    if at >= 0:
        message += f"; stack at the deadline: {stderr[at:]}"
    return kind.failed(case, "timeout", message, **_measured(kind, answer))


def _measured(kind: JobKind, answer: dict) -> dict:
    """What a failed case keeps: its wall time, and a streaming job's partial points."""
    measured = {"wall_time_s": answer["wall_time_s"]}
    if kind.streams and answer.get("partial"):
        measured["partial"] = answer["partial"]
    return measured


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


def _write(fd: int, answer: dict) -> None:
    view = memoryview((json.dumps(answer, default=str) + "\n").encode())
    while view:
        view = view[os.write(fd, view) :]


def _run_forked(
    kind: JobKind, case, timeout: float | None, cache_dir: str | None, protocol: int, memory_limit: int | None
) -> dict:
    """Run `case` in a forked child; the answer object of the protocol.

    The child writes each progress point as a line, then its record; the template collects the
    points, so a child killed by the timeout (or dying) still leaves its partial curve. The child
    leads a process group of its own, which dies with it whatever it started; it keeps none of
    the template's channels (the requests on stdin, the answers on `protocol`); and its end is
    its exit status, not the end of its pipe, which a process it started may still hold.
    """
    started = time.perf_counter()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the case, write its record, leave without cleanup
        os.setpgid(0, 0)
        os.close(read_end)
        os.close(protocol)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        _die_with_parent()
        if memory_limit and not case.device.startswith("cuda"):  # CUDA maps vast address ranges
            _limit_memory(memory_limit)
        if timeout is not None:  # where a case hangs is worth knowing: print its stack first
            faulthandler.dump_traceback_later(max(0.5, timeout - TRACE_LEAD_S), exit=False)
        try:
            record = kind.run(case, cache_dir=cache_dir, progress=lambda p: _write(write_end, {"point": p}))
            _write(write_end, {"record": record.to_dict()})
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = None if timeout is None else time.monotonic() + timeout
    buffer, partial, answer, status = b"", [], None, None
    while answer is None:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        line, buffer = _read_line(
            read_end, buffer, min(_POLL_S, remaining) if remaining is not None else _POLL_S
        )
        if line is None:  # nothing yet: has the child ended (a process it started may hold the pipe)?
            if status is None:
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = code
                    _kill_group(pid)  # what it left running dies, and with it the pipe ends
            if remaining == 0.0:
                _kill_group(pid)
                answer = {"timeout": timeout}
        elif line == b"":
            answer = {"died": None}
        else:
            message = _parse(line)
            if message is None:
                continue  # not a protocol line: written by something else the case ran
            if "point" in message:
                partial.append(message["point"])
            else:
                answer = message
    _kill_group(pid)  # whatever the case started dies with it
    os.close(read_end)
    if status is None:
        _, status = os.waitpid(pid, 0)
    if "died" in answer:
        answer["died"] = _how(os.waitstatus_to_exitcode(status))
    if "record" not in answer:
        answer.update(wall_time_s=time.perf_counter() - started, partial=partial)
    return answer


def _limit_memory(extra: int) -> None:
    """Let this process's address space grow by `extra` bytes at most: beyond, an allocation
    fails (`MemoryError`, torch's "can't allocate memory"), and the case ends with status
    ``memory`` instead of the machine's out-of-memory killer ending something."""
    import resource

    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    limit = pages * os.sysconf("SC_PAGE_SIZE") + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _parse(line: bytes) -> dict | None:
    """A protocol line's object, or None for a line that is not one."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) and ({"point", "record"} & set(message)) else None


def _kill_group(pid: int) -> None:
    """Kill the process group a case's child leads (the child and whatever it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """Be killed when the parent dies (Linux): a template outlives neither its sweep nor its Dask
    worker, and a case not its template, so nothing runs on unseen, disturbing other cases.

    Linux sends the signal when the *thread* that started the process ends, so a `Worker` is
    driven by the thread that started its template (every executor does so).
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _warm_up() -> None:
    """Differentiate a tiny solve with every core method once, in the template.

    Their first backward imports modules lazily (torch's ``autograd.grad`` pulls in sympy through
    ``torch.fx``: 0.6-1.2 s per case here). Paid once in the template, every forked case
    inherits it instead of paying it in its counted run. One thread, no pools: still fork-safe.
    """
    import torch

    from odebench import methods

    class Field(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Parameter(-torch.eye(2, dtype=torch.float64))

        def forward(self, t, y):
            return y @ self.a

    field = Field()
    t = torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64)
    for name in methods.CORE:
        method = methods.get(name)
        for solver, options in (("dopri5", None), ("rk4", {"step_size": 0.1})):
            if method.supports(solver):
                y0 = torch.ones(2, dtype=torch.float64, requires_grad=True)
                solution = method.odeint(field, y0, t, solver=solver, options=options)
                torch.autograd.grad(solution.sum(), [y0, field.a], torch.ones((), dtype=torch.float64))


def _serve(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="odebench.harness.worker")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plugin", action="append", default=[])
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--memory-limit", type=int, default=None)
    args = parser.parse_args(argv)
    _die_with_parent()
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import torch

    from odebench.jobs import KINDS  # every job kind's code, once, before the forks
    from odebench.plugins import load_plugins

    torch.set_num_threads(args.threads)
    _warm_up()
    load_plugins(args.plugin)
    # The template's objects live as long as it does: frozen, a forked case's collections (one
    # before its memory is measured) scan only the case's own objects (77 ms -> 0 here).
    gc.collect()
    gc.freeze()
    # A process that has initialised CUDA cannot hand it to a fork; a plug-in that touched the
    # GPU at import makes the template run its cases itself.
    fork = FORK_PER_CASE and not torch.cuda.is_initialized()
    protocol.write(_READY.decode() + "\n")
    protocol.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        kind = KINDS[request["kind"]]
        case = kind.case(request["case"])
        if fork:
            answer = _run_forked(
                kind, case, request["timeout"], args.cache_dir, protocol.fileno(), args.memory_limit
            )
        else:
            answer = {"record": kind.run(case, cache_dir=args.cache_dir).to_dict()}
        protocol.write(json.dumps(answer, default=str) + "\n")
        protocol.flush()


if __name__ == "__main__":
    _serve()
