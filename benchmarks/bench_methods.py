"""asv benchmarks of the gradient methods, thin over odebench's harness.

`RatioMethods` and `RatioPeers` track time *ratios* measured the steady way: every method timed
against a baseline round by round in one process (`odebench.jobs.ratio`, unit "ratio"). On
this machine class the same work's time moves by up to 1.7x between processes, the ratios by a
few percent: these are the benchmarks to watch with `asv continuous` (docs/benchmarking.md).
`TimeMethods` times the forward solve and the backward pass separately (informative only on a
quiet, dedicated machine): its ``setup`` builds the problem (and, for the backward, runs the
forward), so a timed call does one phase only.
`TrackMethods` records what ``run_case`` measures and asv's own timers cannot: function
evaluations, gradient error and peak memory of forward plus backward (asv's ``peakmem_`` is the
whole process's high-water mark, torch import included, so memory comes from the Record).

The reduced grid (CI) is tasks linear and mlp x the five core methods x dopri5 at rtol 1e-6;
``ODEBENCH_ASV_FULL=1`` asks for every registered task and method at rtol 1e-4, 1e-6, 1e-8.
"""

from __future__ import annotations

import math
import os

import torch

from odebench import methods, tasks
from odebench.jobs.gradient import Case, Record, build_case, run_case
from odebench.jobs.ratio import RatioCase, run_ratios

torch.set_num_threads(1)

FULL = os.environ.get("ODEBENCH_ASV_FULL", "") not in ("", "0")
TASKS = list(tasks.names()) if FULL else ["linear", "mlp"]
METHODS = list(methods.names()) if FULL else list(methods.CORE)
RTOLS = [1e-4, 1e-6, 1e-8] if FULL else [1e-6]
PARAMS = [TASKS, METHODS, RTOLS]
PARAM_NAMES = ["task", "method", "rtol"]


def make_case(task: str, method: str, rtol: float, repeats: int = 1) -> Case:
    """The harness Case of one benchmark point: dopri5, atol = rtol / 100, float64, CPU."""
    return Case(task=task, method=method, solver="dopri5", rtol=rtol, atol=rtol * 1e-2, repeats=repeats)


class TimeMethods:
    """Seconds of one forward solve (``time_forward``) and of one backward pass (``time_backward``)."""

    params = PARAMS
    param_names = PARAM_NAMES
    number = 1  # the backward consumes the graph: setup runs a fresh forward before every call
    repeat = (3, 10, 10.0)
    timeout = 300

    def setup(self, task: str, method: str, rtol: float) -> None:
        if not methods.get(method).supports("dopri5"):
            raise NotImplementedError(f"{method} does not support dopri5")  # asv: skipped
        self.prepared = build_case(make_case(task, method, rtol))
        self.problem = self.prepared.problem
        self.y0 = self.problem.y0.detach().clone().requires_grad_(True)
        self.solution = self.prepared.solve(self.problem.func, self.y0)
        self.inputs = [self.y0, *self.problem.func.parameters()]

    def time_forward(self, task: str, method: str, rtol: float) -> None:
        y0 = self.problem.y0.detach().clone().requires_grad_(True)
        self.prepared.solve(self.problem.func, y0)

    def time_backward(self, task: str, method: str, rtol: float) -> None:
        torch.autograd.grad(self.problem.loss(self.solution), self.inputs, allow_unused=True)


class TrackMethods:
    """NFE, gradient error and peak memory from one ``run_case`` per point (run once, cached)."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup_cache(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        for task in TASKS:
            for method in METHODS:
                for rtol in RTOLS:
                    if not methods.get(method).supports("dopri5"):
                        continue
                    records[repr((task, method, rtol))] = run_case(make_case(task, method, rtol)).to_dict()
        return records

    setup_cache.timeout = 3600 if FULL else 600

    def _record(self, cache: dict[str, dict], task: str, method: str, rtol: float) -> Record:
        key = repr((task, method, rtol))
        if key not in cache:
            raise NotImplementedError(f"{method} does not support dopri5")
        record = Record.from_dict(cache[key])
        if record.status != "ok":
            raise RuntimeError(f"{record.case.label()}: {record.status}: {record.error}")
        return record

    def setup(self, cache, task: str, method: str, rtol: float) -> None:
        if repr((task, method, rtol)) not in cache:
            raise NotImplementedError(f"{method} does not support dopri5")  # asv: skipped

    def track_nfe_forward(self, cache, task: str, method: str, rtol: float) -> int:
        return self._record(cache, task, method, rtol).nfe_forward

    track_nfe_forward.unit = "evaluations"

    def track_nfe_backward(self, cache, task: str, method: str, rtol: float) -> int:
        return self._record(cache, task, method, rtol).nfe_backward

    track_nfe_backward.unit = "evaluations"

    def track_grad_rel_error(self, cache, task: str, method: str, rtol: float) -> float:
        error = self._record(cache, task, method, rtol).grad_rel_error
        return math.nan if error is None else error

    track_grad_rel_error.unit = "relative error"

    def track_peak_memory(self, cache, task: str, method: str, rtol: float) -> int:
        peak = self._record(cache, task, method, rtol).peak_memory_bytes
        if peak is None:
            raise NotImplementedError("no memory backend on this platform")  # asv: skipped
        return peak

    track_peak_memory.unit = "bytes"


#: The contenders of the ratio benchmarks, timed against naive on each task at rtol 1e-6: every
#: method odebench implements that takes dopri5.
RATIO_METHODS = [
    m
    for m in (*methods.CORE, *methods.NEWER)
    if m != "naive"
    and methods.get(m).supports("dopri5")
    and (FULL or not methods.get(m).capabilities.cost_per_input)  # forward mode: the full grid only
]
#: Native methods, the peer of the same method they are timed against, and the solver both take.
PEERS = {
    "aca": ("aca@torchdiffeqpack", "dopri5"),
    "mali": ("mali@torchdiffeqpack", "midpoint"),
    "reversible_heun": ("reversible_heun@torchsde", "heun2"),
}
RATIO_PARAMS, RATIO_PARAM_NAMES = [TASKS, RATIO_METHODS], ["task", "method"]
PEER_PARAMS, PEER_PARAM_NAMES = [list(PEERS)], ["method"]


def _ratios(
    task: str, contenders: tuple[str, ...], baseline: str, solver: str = "dopri5"
) -> dict[str, float]:
    """Each contender's median per-round ratio to `baseline`; a contender that refuses the task
    (forward mode with many inputs) is left out, the others still timed."""
    adaptive = {"rtol": 1e-6} if solver == "dopri5" else {}
    record = run_ratios(
        RatioCase(task=task, methods=contenders, baseline=baseline, solver=solver, **adaptive)
    )
    if record.status != "ok":
        raise RuntimeError(f"{record.case.label()}: {record.status}: {record.error}")
    return record.ratios


class RatioMethods:
    """Each core method's forward + backward time over naive's, interleaved (unit: ratio)."""

    params = RATIO_PARAMS
    param_names = RATIO_PARAM_NAMES
    timeout = 600

    def setup_cache(self) -> dict[str, dict[str, float]]:
        return {task: _ratios(task, tuple(RATIO_METHODS), "naive") for task in TASKS}

    setup_cache.timeout = 1200

    def setup(self, cache, task: str, method: str) -> None:
        if method not in cache[task]:
            raise NotImplementedError(f"{method} refuses {task}")  # asv: skipped

    def track_ratio_to_naive(self, cache, task: str, method: str) -> float:
        return cache[task][method]

    track_ratio_to_naive.unit = "ratio"


class RatioPeers:
    """Each native method's time over the installed peer of the same method, interleaved."""

    params = PEER_PARAMS
    param_names = PEER_PARAM_NAMES
    timeout = 600

    def setup_cache(self) -> dict[str, float]:
        installed = {m: (p, s) for m, (p, s) in PEERS.items() if p in methods.names()}
        return {m: _ratios("mlp", (m,), peer, solver)[m] for m, (peer, solver) in installed.items()}

    def setup(self, cache, method: str) -> None:
        if method not in cache:
            raise NotImplementedError(f"{PEERS[method][0]} is not installed")  # asv: skipped

    def track_ratio_to_peer(self, cache, method: str) -> float:
        return cache[method]

    track_ratio_to_peer.unit = "ratio"
