"""Vector fields with known gradients, shared by the method tests."""

from __future__ import annotations

import torch
from torch import nn


class LinearField(nn.Module):
    """dy/dt = A y, for the analytic gradient through the matrix exponential."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.A = nn.Parameter(A.clone())

    def forward(self, t, y):
        return y @ self.A.T


class SpiralField(nn.Module):
    """dy/dt = y^3 A: the nonlinear two-dimensional spiral."""

    def __init__(self, dtype=torch.float64, device="cpu") -> None:
        super().__init__()
        self.A = nn.Parameter(torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=dtype, device=device))

    def forward(self, t, y):
        return (y**3) @ self.A


class MLPField(nn.Module):
    """A small tanh MLP with time input; ``unused`` never touches the output."""

    def __init__(self, dim=2, width=16, dtype=torch.float64, device="cpu", seed=0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(dim + 1, width), nn.Tanh(), nn.Linear(width, dim))
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.net.to(dtype=dtype, device=device)
        self.unused = nn.Parameter(torch.ones(3, dtype=dtype, device=device))

    def forward(self, t, y):
        tt = t.expand(*y.shape[:-1], 1)
        return self.net(torch.cat([y, tt], dim=-1))


def linear_problem(dim=5, T=2.0, seed=0, dtype=torch.float64, device="cpu"):
    """A stable A, y0, weights w and the analytic gradient of L = w . y(T)."""
    gen = torch.Generator().manual_seed(seed)
    M = torch.randn(dim, dim, generator=gen, dtype=torch.float64) * 0.5
    A = M - M.T - 0.3 * torch.eye(dim, dtype=torch.float64)
    y0 = torch.randn(dim, generator=gen, dtype=torch.float64)
    w = torch.randn(dim, generator=gen, dtype=torch.float64)
    A_ = A.clone().requires_grad_(True)
    y_ = y0.clone().requires_grad_(True)
    (w @ (torch.linalg.matrix_exp(A_ * T) @ y_)).backward()
    to = dict(dtype=dtype, device=device)
    return A.to(**to), y0.to(**to), w.to(**to), A_.grad.to(**to), y_.grad.to(**to)


def gradients(func: nn.Module, y0: torch.Tensor) -> torch.Tensor:
    """y0's gradient and every parameter's, flattened (None counts as zero)."""
    parts = [y0.grad.flatten()]
    for p in func.parameters():
        parts.append((p.grad if p.grad is not None else torch.zeros_like(p)).flatten())
    return torch.cat(parts)


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def assert_converges(solver, coarse: float, fine: float, coarse_x: float, fine_x: float, k: float) -> None:
    """Errors at a coarse and a fine setting `x` (tolerance, or step size) within ``K * x``
    (``K * x^order`` for a fixed step) and shrinking: the finer tolerance gains at least a third of
    the ratio, a 4x smaller step at least ``0.75 * 4^order``."""
    if solver.adaptive:
        assert coarse <= k * coarse_x and fine <= k * fine_x, (coarse, fine)
        assert fine < coarse * 3 * fine_x / coarse_x, (coarse, fine)
    else:
        assert coarse <= k * coarse_x**solver.order and fine <= k * fine_x**solver.order, (coarse, fine)
        assert fine < coarse / (0.75 * 4**solver.order), (coarse, fine)
