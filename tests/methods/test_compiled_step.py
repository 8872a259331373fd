"""The compiled-step method: the discrete-exact gradient of torchdiffeq's fixed grid, counted.

Slow tier: each test compiles (about 3-5 s with inductor's cache warm, 20 s cold).
"""

from __future__ import annotations

import pytest
import torch

from odebench import methods, tasks
from odebench.jobs.gradient import Case, flat_gradient, run_case

pytestmark = pytest.mark.slow


def test_case_is_discrete_exact_counted_and_compiled_apart(cache_dir):
    record = run_case(
        Case(task="linear", method="compiled_step", solver="rk4", size=2, repeats=1), cache_dir=cache_dir
    )
    assert record.status == "ok", record.error
    assert record.grad_rel_error_discrete < 1e-13 and record.grad_rel_error < 1e-5
    assert record.nfe_forward == 4 * record.steps_accepted == record.vjp_backward
    assert record.nfe_backward == 0 and record.steps_rejected == 0
    assert record.compile_time_s > 0 and record.framework == "torch"


def test_outputs_inside_a_step_match_torchdiffeq():
    """Output times off the grid are torchdiffeq's linear interpolation inside the step: the
    solution and the gradient equal naive's to round-off."""
    problem = tasks.get("mlp").build(16)
    t = torch.tensor([0.0, 0.33, 0.5, 1.0], dtype=torch.float64)
    results = []
    for name in ("compiled_step", "naive"):
        y0 = problem.y0.clone().requires_grad_(True)
        solution = methods.get(name).odeint(
            problem.func, y0, t, solver="midpoint", options={"step_size": 0.1}
        )
        results.append((solution.detach(), flat_gradient(problem.func, y0, solution.pow(2).sum())))
    (compiled, g_compiled), (naive, g_naive) = results
    assert torch.allclose(compiled, naive, rtol=1e-13, atol=1e-14)
    assert ((g_compiled - g_naive).norm() / g_naive.norm()).item() < 1e-12
