"""A plug-in that registers faulty tasks and methods, loaded with --plugin by the sweep tests.

Each fault is one that a real sweep meets: a field whose gradient is infinite, one that blows up (step
budget), a method that raises, one whose solution is NaN, one that hangs, one that exits, one that
is killed, a segfault, and a slow but healthy method (to interrupt a sweep mid-way). Two defy the
worker's isolation: ``fault_orphan`` forks a process that sleeps on (holding the case's pipe, its
pid written to ``$ODEBENCH_FAULT_TRACE``) and exits with code 5; ``fault_scribble`` writes a line
on every descriptor it inherited, then solves; ``fault_hog`` allocates 4 GiB, ``fault_chatty``
writes 3 MiB to stderr. Two serve the Dask tests only:
``fault_kill_worker`` kills the process that started its worker's template (a Dask
worker; run by a local executor it would kill the sweep itself), and ``fault_trace`` appends the
interval it ran in to the file named by ``$ODEBENCH_FAULT_TRACE``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time

import torch
from torch import nn

from odebench import methods, tasks
from odebench.methods.base import Capabilities, GradientMethod
from odebench.tasks.base import Problem, Task


class _Field(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.a = nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, t, y):
        if self.kind == "nan":  # finite solve, infinite gradient: d sqrt(a - 1)/da at a = 1
            return y * torch.sqrt(self.a - 1.0)
        return self.a * y**2  # blows up at t = 1 / y0 = 1


class _FaultTask(Task):
    description = "fault injection"
    paper = "none"
    probes = "harness robustness"
    size_knob = "unused"
    default_size = 1
    sizes = (1,)

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"fault_{kind}"

    def _build(self, size, generator):
        y0 = torch.ones(2, dtype=torch.float64)
        t = torch.tensor([0.0, 2.0], dtype=torch.float64)
        return Problem(_Field(self.kind), y0, t, lambda s: s[-1].sum(), step_size=0.1)


class _FaultMethod(GradientMethod):
    description = "fault injection"
    capabilities = Capabilities(
        exact_discrete_gradient=False,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend="odebench",
        paper="none",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        if self.kind == "raise":
            raise RuntimeError("injected failure")
        if self.kind == "hang":
            time.sleep(3600)
        if self.kind == "exit":
            os._exit(3)
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "segfault":
            ctypes.string_at(0)
        if self.kind == "kill_worker":
            with open(f"/proc/{os.getppid()}/stat") as stat:  # the template's parent
                os.kill(int(stat.read().rsplit(")", 1)[1].split()[1]), signal.SIGKILL)
        if self.kind == "orphan":
            child = os.fork()
            if child == 0:
                time.sleep(300)
                os._exit(0)
            with open(os.environ["ODEBENCH_FAULT_TRACE"], "w") as trace:
                trace.write(str(child))
            os._exit(5)
        if self.kind == "scribble":
            for fd in range(3, 256):
                with contextlib.suppress(OSError):
                    os.write(fd, b'{"not": "the protocol"}\nnoise\n')
        if self.kind == "hog":  # 4 GiB: beyond any memory limit a test sets
            torch.ones(2**29, dtype=torch.float64)
        if self.kind == "chatty":
            os.write(2, b"x" * (3 * 2**20))
        if self.kind == "slow":
            time.sleep(0.3)
        if self.kind == "trace":
            started = time.time()
            time.sleep(0.5)
            with open(os.environ["ODEBENCH_FAULT_TRACE"], "a") as trace:
                trace.write(f"{started} {time.time()}\n")
        solution = methods.get("aca").odeint(
            func, y0, t, solver=solver, rtol=rtol, atol=atol, options=options
        )
        return solution * torch.nan if self.kind == "nan" else solution


for kind in ("nan", "explode"):
    if f"fault_{kind}" not in tasks.registry:
        tasks.register(f"fault_{kind}", _FaultTask(kind))
for kind in (
    "raise", "nan", "hang", "exit", "kill", "segfault", "slow", "kill_worker", "trace", "orphan", "scribble",
    "hog", "chatty",
):  # fmt: skip
    if f"fault_{kind}" not in methods.registry:
        methods.register(f"fault_{kind}", _FaultMethod(kind))
