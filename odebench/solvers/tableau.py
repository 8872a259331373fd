"""Butcher tableaux of the explicit Runge-Kutta solvers odebench differentiates.

The adaptive tableaux (and their dense-output coefficients) are read from torchdiffeq itself, so
the native methods and torchdiffeq integrate with the very same coefficients; the fixed-step
ones mirror torchdiffeq's step functions (its ``rk4`` is Kutta's 3/8 rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit s-stage Runge-Kutta scheme.

    ``a`` is strictly lower triangular, ``c`` the stage nodes, ``b`` the solution weights.
    Adaptive schemes add ``b_error`` (the difference to the embedded solution, as torchdiffeq
    stores it) and ``b_mid`` (the weights of the state at the half step, for dense output).
    """

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    order: int
    b_error: tuple[float, ...] | None = None
    b_mid: tuple[float, ...] | None = None

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def adaptive(self) -> bool:
        return self.b_error is not None

    @property
    def fsal(self) -> bool:
        """First-same-as-last: the last stage is evaluated at the new solution."""
        return self.b[-1] == 0 and tuple(self.a[-1][:-1]) == tuple(self.b[:-1])

    def tensors(self, dtype: torch.dtype, device: torch.device) -> TableauTensors:
        return _tensors(self, dtype, torch.device(device))


@dataclass(frozen=True)
class TableauTensors:
    """The coefficients as tensors of the state's dtype and device (cached)."""

    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    b_error: torch.Tensor | None
    b_mid: torch.Tensor | None


@cache
def _tensors(tab: ButcherTableau, dtype: torch.dtype, device: torch.device) -> TableauTensors:
    def as_tensor(values):
        return None if values is None else torch.tensor(values, dtype=dtype, device=device)

    return TableauTensors(
        a=as_tensor(tab.a),
        b=as_tensor(tab.b),
        c=as_tensor(tab.c),
        b_error=as_tensor(tab.b_error),
        b_mid=as_tensor(tab.b_mid),
    )


def _square(rows: list[list[float]], stages: int) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(list(row) + [0.0] * (stages - len(row))) for row in rows)


def fixed(rows: list[list[float]], b: list[float], c: list[float], order: int) -> ButcherTableau:
    """A fixed-step tableau from the rows of ``a`` below the diagonal."""
    stages = len(b)
    return ButcherTableau(a=_square([[], *rows], stages), b=tuple(b), c=tuple(c), order=order)


def from_torchdiffeq(name: str) -> ButcherTableau:
    """The tableau torchdiffeq's adaptive solver `name` integrates with."""
    from torchdiffeq._impl.odeint import SOLVERS

    solver = SOLVERS[name]
    tab = solver.tableau
    stages = len(tab.alpha) + 1
    rows = [[float(v) for v in beta] for beta in tab.beta]
    return ButcherTableau(
        a=_square([[], *rows], stages),
        b=tuple(float(v) for v in tab.c_sol),
        c=(0.0, *(float(v) for v in tab.alpha)),
        order=int(solver.order),
        b_error=tuple(float(v) for v in tab.c_error),
        b_mid=tuple(float(v) for v in solver.mid),
    )
