"""Task helpers for the tests: the smallest size, and gradients flattened as references are."""

from __future__ import annotations

import torch

from odebench import methods, tasks
from odebench.jobs.gradient import flat_gradient


def smallest(name: str) -> int:
    """The task's smallest registered size (what the reference tests use)."""
    return min(tasks.get(name).sizes)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def gradient(problem, method: str, **solve) -> torch.Tensor:
    """Solve `problem` with `method` and return the flat gradient (float64, CPU)."""
    y0 = problem.y0.detach().clone().requires_grad_(True)
    solution = methods.get(method).odeint(problem.func, y0, problem.t, **solve)
    return flat_gradient(problem.func, y0, problem.loss(solution))
