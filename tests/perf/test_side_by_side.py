"""Side by side: odebench's naive, aca and symplectic against the installed peers, interleaved.

Run with ``pytest -m perf tests/perf/test_side_by_side.py --benchmark-only`` (about 2 minutes on
2 cores). Each problem is one test: after one untimed run of every method, the methods run
round by round (round r: each method's forward + backward once, in turn), ``ROUNDS`` rounds, so
every ratio compares runs made seconds apart in the same process; a ratio is the median over
rounds of the per-round ratio, the only comparison that survives a shared machine (the same
work's median moves by up to 1.7x between processes there). pytest-benchmark times the whole
round; the per-method medians, ratios, evaluation counts and peak memory (memray, one method at
a time, each after an untimed run) go to ``extra_info`` (``--benchmark-json``) and to the table
printed at the end of the session.

The problems: issue 12's (an MLP field 32 -> 128 -> 128 -> 32, batch 128, t in [0, 5], dopri5
at rtol = atol = 1e-6, float32), and the ``mlp`` and ``cnf2d`` tasks at their default sizes
(float64, dopri5 at rtol 1e-6, atol 1e-8), all with ``ODEBENCH_PERF_THREADS`` torch threads
(default 2, as issue 12 measured; on a machine shared with other jobs 2 threads on 2 cores
spin at every parallel region while the other thread is descheduled, and a run took 10-20x
longer than with 1 thread: set it to 1 there).

A peer ``name@backend`` is a peer of the method ``name``: the installed ones (TorchDiffEqPack's
``aca@torchdiffeqpack``), and any that the plug-in files in ``ODEBENCH_PLUGINS`` (paths
separated by ``os.pathsep``) register with `odebench.methods.register`, e.g. a wrapper of a
package that cannot be a dependency of odebench. Where one is installed, the test
asserts the goal of issue 12 for odebench's method: no more peak memory than the better peer,
and, on issue 12's problem, no slower (median per-round ratio at most 1). The other problems'
time ratios are reported, not asserted: under heavy load they moved by 2x between runs.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from odebench import methods, tasks
from odebench.measure.memory import measure_peak
from odebench.measure.nfe import CountedField
from odebench.measure.timing import torch_threads
from odebench.plugins import load_plugins

THREADS = int(os.environ.get("ODEBENCH_PERF_THREADS", "2"))
ROUNDS = 9
CORE = ("naive", "aca", "symplectic")
load_plugins(p for p in os.environ.get("ODEBENCH_PLUGINS", "").split(os.pathsep) if p)
PEERS = tuple(
    n
    for n in methods.names()
    if "@" in n and methods.get(n).supports("dopri5") and methods.get(n).capabilities.framework == "torch"
)


@dataclass(frozen=True)
class Problem:
    """A loss of the solution of ``dy/dt = func(t, y)`` on ``t`` from ``y0``, and its tolerances."""

    func: nn.Module
    y0: torch.Tensor
    t: torch.Tensor
    loss: Callable[[torch.Tensor], torch.Tensor]
    rtol: float
    atol: float


def issue12() -> Problem:
    """The problem of issue 12: a 32 -> 128 -> 128 -> 32 tanh MLP field, batch 128, T = 5."""
    generator = torch.Generator().manual_seed(0)
    widths = (32, 128, 128, 32)
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(widths):
        layer = nn.Linear(n_in, n_out)
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_((2 * torch.rand(p.shape, generator=generator) - 1) / n_in**0.5)
        layers += [layer, nn.Tanh()]
    net = nn.Sequential(*layers[:-1])
    y0 = torch.randn(128, 32, generator=torch.Generator().manual_seed(1))
    return Problem(_Autonomous(net), y0, torch.tensor([0.0, 5.0]), _final_square, 1e-6, 1e-6)


class _Autonomous(nn.Module):
    """``f(t, y) = net(y)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t, y):
        return self.net(y)


def _final_square(solution: torch.Tensor) -> torch.Tensor:
    return solution[-1].pow(2).sum()


def task(name: str) -> Callable[[], Problem]:
    def build() -> Problem:
        problem = tasks.get(name).build(dtype=torch.float64)
        return Problem(problem.func, problem.y0, problem.t, problem.loss, 1e-6, 1e-8)

    return build


PROBLEMS = {"issue12": issue12, "mlp": task("mlp"), "cnf2d": task("cnf2d")}


def solve(problem: Problem, method: str, func: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    y0 = problem.y0.clone().requires_grad_(True)
    solution = methods.get(method).odeint(
        func, y0, problem.t, solver="dopri5", rtol=problem.rtol, atol=problem.atol
    )
    return y0, solution


def forward_backward(problem: Problem, method: str):
    """One solve and its backward pass; returns the gradient (y0, then the parameters)."""
    y0, solution = solve(problem, method, problem.func)
    inputs = [y0, *problem.func.parameters()]
    return torch.autograd.grad(problem.loss(solution), inputs, allow_unused=True)


def flat(gradient) -> torch.Tensor:
    return torch.cat([g.flatten() for g in gradient if g is not None]).double()


def counts(problem: Problem, method: str) -> tuple[int, int]:
    """Forward and backward evaluations of the field."""
    counted = CountedField(problem.func)
    y0, solution = solve(problem, method, counted)
    with counted.phase("backward"):
        torch.autograd.grad(problem.loss(solution), [y0, *counted.parameters()], allow_unused=True)
    return counted.counts["forward"].nfe, counted.counts["backward"].nfe


def median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


def peers_of(method: str) -> list[str]:
    return [p for p in PEERS if p.split("@")[0] == method]


@pytest.mark.perf
@pytest.mark.parametrize("name", PROBLEMS)
def test_side_by_side(benchmark, name, side_by_side_rows):
    problem = PROBLEMS[name]()
    names = [*CORE, *PEERS]
    benchmark.group = "side by side: one interleaved round of " + ", ".join(names)
    with torch_threads(THREADS):
        reference = flat(forward_backward(problem, "naive"))
        agreement = {
            m: float((flat(forward_backward(problem, m)) - reference).norm() / reference.norm())
            for m in names
        }
        times: dict[str, list[float]] = {m: [] for m in names}

        def one_round():
            for m in names:
                start = time.perf_counter()
                forward_backward(problem, m)
                times[m].append(time.perf_counter() - start)

        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
        peaks = {}
        for m in names:
            forward_backward(problem, m)  # untracked, so that lazy allocations are not counted
            peaks[m] = measure_peak(lambda m=m: forward_backward(problem, m)).peak_bytes
    rows = []
    for m in names:
        peer = min(peers_of(m), key=lambda p: statistics.median(times[p]), default=None)
        row = {
            "problem": name,
            "method": m,
            "median_ms": 1e3 * statistics.median(times[m]),
            "ratio_to_naive": median_ratio(times[m], times["naive"]),
            "best_peer": peer,
            "ratio_to_peer": None if peer is None else median_ratio(times[m], times[peer]),
            "peak_mib": None if peaks[m] is None else peaks[m] / 2**20,
            "nfe_forward_backward": counts(problem, m),
            "grad_rel_diff_to_naive": agreement[m],
        }
        rows.append(row)
    benchmark.extra_info.update(problem=name, threads=THREADS, rounds=ROUNDS, rows=rows)
    side_by_side_rows.extend(rows)

    for row in rows:
        if row["method"] in CORE:
            assert row["grad_rel_diff_to_naive"] < 1e-3, row
        if row["best_peer"] is not None:
            if peaks[row["method"]] is not None:
                assert peaks[row["method"]] <= peaks[row["best_peer"]], row
            if name == "issue12":
                assert row["ratio_to_peer"] <= 1.0, row
