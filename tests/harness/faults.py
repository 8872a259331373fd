"""The fault plug-in's path and the cases the sweep tests run, with the status each must get
whatever executor runs it."""

from __future__ import annotations

from pathlib import Path

from odebench.jobs.gradient import Case

PLUGIN = str(Path(__file__).with_name("faults_plugin.py"))
ROOT = Path(__file__).resolve().parents[2]


def case(task="linear", method="aca", **kw) -> Case:
    kw.setdefault("size", 2)
    kw.setdefault("repeats", 1)
    kw.setdefault("rtol", 1e-5)
    kw.setdefault("atol", kw["rtol"] * 1e-2)
    return Case(task=task, method=method, **kw)


EXPECTED = [
    (case(), "ok", None),
    (case(task="fault_nan", method="naive", size=None), "nan", "gradient contains NaN or Inf"),
    (case(task="fault_explode", method="naive", size=None, max_steps=100), "max_steps", "max_num_steps"),
    # The same step-size underflow gets the same status from torchdiffeq and the native integrator.
    (case(task="fault_explode", method="naive", size=None), "underflow", "AssertionError: underflow in dt"),
    (case(task="fault_explode", method="aca", size=None), "underflow", "FloatingPointError: underflow in dt"),
    (case(method="fault_raise"), "error", "RuntimeError: injected failure"),
    # A hang says where it hung: the child prints its stack just before its deadline.
    (case(method="fault_hang"), "timeout", "stack at the deadline: Thread 0x"),
    (case(method="fault_exit"), "crashed", "exit code 3"),
    (case(method="fault_kill"), "crashed", "SIGKILL"),
    (case(method="fault_segfault"), "crashed", "SIGSEGV"),
    (case(method="naive"), "ok", None),
]
