"""pytest-benchmark timings of each core method's forward solve plus backward pass on a small MLP.

Run with ``pytest -m perf tests/perf --benchmark-only`` (deselected from the plain test run).
Each benchmark's ``extra_info`` carries the harness's evaluation counts and gradient error of
the same case, so a saved run (``--benchmark-autosave``) says what the time bought.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.bench_methods import prepare
from odebench.harness import run_case
from odebench.methods import CORE
from odebench.record import Case

TASK, WIDTH = "mlp", 16


@pytest.mark.perf
@pytest.mark.benchmark(group=f"{TASK}[{WIDTH}] dopri5 1e-6: forward + backward")
@pytest.mark.parametrize("method", CORE)
def test_forward_backward(benchmark, method):
    case = Case(task=TASK, method=method, size=WIDTH, repeats=1)
    record = run_case(case)
    assert record.status == "ok", record.error
    benchmark.extra_info.update(
        case=case.label(),
        nfe_forward=record.nfe_forward,
        nfe_backward=record.nfe_backward,
        vjp_backward=record.vjp_backward,
        grad_rel_error=record.grad_rel_error,
        peak_memory_bytes=record.peak_memory_bytes,
    )

    prepared = prepare(case)
    problem = prepared.problem
    params = list(problem.func.parameters())

    def forward_backward():
        y0 = problem.y0.detach().clone().requires_grad_(True)
        solution = prepared.solve(problem.func, y0)
        return torch.autograd.grad(problem.loss(solution), [y0, *params], allow_unused=True)

    grads = benchmark(forward_backward)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
