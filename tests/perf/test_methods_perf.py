"""pytest-benchmark of each core method's time *relative to naive*, interleaved round by round.

Run with ``pytest -m perf tests/perf/test_methods_perf.py --benchmark-only`` (deselected from the
plain test run). Each round runs the method's forward solve plus backward pass and naive's once
each, in alternating order, in this process; the benchmark's "clock" advances by that round's
ratio (method / naive), so every statistic pytest-benchmark reports for these tests (shown in
its time columns: 1,000 "ms" is a ratio of 1), and ``--benchmark-compare-fail=median:10%``, is
about the ratio, which stays within a few percent from one process to the next on this machine
class, where the time itself moves by up to 1.7x. ``extra_info`` adds what the time bought:
the harness's evaluation counts, gradient error and peak memory of the same case, and the
baseline's median seconds.
"""

from __future__ import annotations

import pytest
import torch

from odebench.jobs.gradient import Case, build_case, run_case
from odebench.measure.interleaved import interleaved_ratios
from odebench.methods import BASELINE, CORE

TASK, WIDTH, ROUNDS = "mlp", 16, 15


class RatioClock:
    """A clock that a round advances by its ratio: pytest-benchmark then times ratios."""

    now = 0.0

    def __call__(self) -> float:
        return self.now


CLOCK = RatioClock()


def forward_backward(case: Case):
    prepared = build_case(case)
    problem = prepared.problem
    params = list(problem.func.parameters())

    def run():
        y0 = problem.y0.detach().clone().requires_grad_(True)
        solution = prepared.solve(problem.func, y0)
        torch.autograd.grad(problem.loss(solution), [y0, *params], allow_unused=True)

    return run


@pytest.mark.perf
@pytest.mark.benchmark(group=f"{TASK}[{WIDTH}] dopri5 1e-6: time / naive's, interleaved", timer=CLOCK)
@pytest.mark.parametrize("method", [m for m in CORE if m != BASELINE])
def test_ratio_to_naive(benchmark, method):
    case = Case(task=TASK, method=method, size=WIDTH, repeats=1)
    record = run_case(case)
    assert record.status == "ok", record.error
    runs = {
        method: forward_backward(case),
        BASELINE: forward_backward(Case(task=TASK, method=BASELINE, size=WIDTH)),
    }
    baseline_seconds = []

    def one_round():
        order = dict(reversed(runs.items())) if len(baseline_seconds) % 2 else runs
        stats, seconds = interleaved_ratios(order, BASELINE, rounds=1, warmup=0)
        baseline_seconds.append(seconds)
        CLOCK.now += stats[method].median

    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    ratio = benchmark.stats.stats.median
    benchmark.extra_info.update(
        case=record.case.label(),
        ratio_to_naive=ratio,
        naive_median_s=sorted(baseline_seconds)[len(baseline_seconds) // 2],
        nfe_forward=record.nfe_forward,
        nfe_backward=record.nfe_backward,
        vjp_backward=record.vjp_backward,
        grad_rel_error=record.grad_rel_error,
        peak_memory_bytes=record.peak_memory_bytes,
    )
    assert 0.05 < ratio < 50
