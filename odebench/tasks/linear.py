"""Linear ODE ``dy/dt = A y``: the one task with a closed-form gradient."""

from __future__ import annotations

import copy

import torch
from torch import nn

from odebench.tasks.base import Gradient, Problem, Task, WeightedSum, normal, uniform


class LinearField(nn.Module):
    """``f(t, y) = y A^T`` (``A y`` for each row of a batched `y`); `A` is learnable."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.A = nn.Parameter(A)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y @ self.A.T


def exact_gradient(problem: Problem, *, sequential: bool = False) -> Gradient:
    """``(dL/dy0, {"A": dL/dA})`` by autograd through ``y(t_i) = expm(A (t_i - t_0)) y0`` in float64.

    The problem's values (rounded to its dtype) are read in float64 on the CPU. With
    ``sequential=True`` the solution is propagated interval by interval,
    ``y(t_i) = expm(A (t_i - t_{i-1})) y(t_{i-1})``: the same value in exact arithmetic, with a
    different round-off, so the two together estimate the float64 error.
    """
    cpu64 = dict(dtype=torch.float64, device="cpu")
    A = problem.func.A.detach().to(**cpu64).requires_grad_(True)
    y = problem.y0.detach().to(**cpu64).requires_grad_(True)
    t = problem.t.detach().to(**cpu64)
    loss = copy.deepcopy(problem.loss).to(**cpu64)
    with torch.enable_grad():
        states = [y]
        for i in range(1, len(t)):
            if sequential:
                states.append(torch.linalg.matrix_exp(A * (t[i] - t[i - 1])) @ states[-1])
            else:
                states.append(torch.linalg.matrix_exp(A * (t[i] - t[0])) @ y)
        grad_y0, grad_A = torch.autograd.grad(loss(torch.stack(states)), (y, A))
    return grad_y0, {"A": grad_A}


class Linear(Task):
    """Linear ODE ``dy/dt = A y`` with a stable, oscillatory spectrum; exact gradient known.

    ``A = S - D``: ``S`` a random skew-symmetric matrix scaled to a spectral radius of about 2
    (rotations of a few periods over the horizon), ``D`` a random positive diagonal in
    [0.1, 0.5] (decay). ``y0`` is random; the loss is ``sum_i <w_i, y(t_i)>`` with random
    weights at ``t = 1, 2, 3`` (none at ``t = 0``). The solution is ``y(t) = expm(A t) y0``,
    so ``dL/dy0`` and ``dL/dA`` follow from autograd through ``torch.linalg.matrix_exp`` in
    float64: the ground truth the float64 reference machinery is checked against. Its error
    bound, ``4 d eps``, is 4x the largest disagreement measured between two mathematically equal
    formulations (one matrix exponential per output time, or one per interval) for d = 2..512.

    Probes: accuracy against an exact answer, with no model error; the size knob (dimension)
    scales the cost of one evaluation, not the number of steps.
    """

    name = "linear"
    description = "dy/dt = A y, stable oscillatory A; exact gradient by matrix_exp"
    paper = "classical linear test problem; gradient via the matrix exponential (Van Loan, IEEE TAC 1978)"
    probes = "accuracy against a closed-form gradient; dimension scales the cost per evaluation"
    size_knob = "dimension"
    default_size = 8
    sizes = (2, 8, 32, 128)
    _exact_gradient = staticmethod(exact_gradient)

    def _build(self, size, generator):
        d = size
        M = normal(generator, (d, d))
        S = (M - M.T) / (2 * d**0.5)
        D = torch.diag(uniform(generator, (d,), 0.1, 0.5))
        y0 = normal(generator, (d,))
        weights = normal(generator, (4, d)) / d**0.5
        weights[0] = 0.0
        t = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
        return Problem(
            func=LinearField(S - D),
            y0=y0,
            t=t,
            loss=WeightedSum(weights),
            step_size=0.05,
            exact_gradient_error=4 * d * torch.finfo(torch.float64).eps,
        )
