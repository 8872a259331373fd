"""Butcher tableaux of the explicit Runge-Kutta solvers odebench differentiates.

The adaptive tableaux torchdiffeq has (and their dense-output coefficients) are read from
torchdiffeq itself, so the native methods and torchdiffeq integrate with the very same
coefficients; the fixed-step ones mirror torchdiffeq's step functions (its ``rk4`` is Kutta's 3/8
rule). An adaptive tableau torchdiffeq lacks is defined here and handed to torchdiffeq's solver
table (`export_to_torchdiffeq`), so torchdiffeq's methods integrate it too.
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


def adaptive(
    rows: list[list[float]], b: list[float], b_embedded: list[float], c: list[float], order: int, b_mid
) -> ButcherTableau:
    """An adaptive tableau from the rows of ``a`` below the diagonal, the weights of the solution
    kept (``b``, of order `order`) and of the embedded one; ``b_error = b - b_embedded`` as
    torchdiffeq stores it."""
    stages = len(b)
    return ButcherTableau(
        a=_square([[], *rows], stages),
        b=tuple(b),
        c=tuple(c),
        order=order,
        b_error=tuple(x - y for x, y in zip(b, b_embedded, strict=True)),
        b_mid=tuple(b_mid),
    )


#: Fehlberg's 3(2) pair (Fehlberg 1968, NASA TR R-287): the third-order solution of the
#: three-stage SSP scheme (nodes 0, 1, 1/2) with Heun's second-order solution embedded, as the
#: Lorenz-63 study of Allauzen et al. (2022) integrates it. A fourth stage ``f(t1, y1)`` closes
#: each step (first same as last): torchdiffeq starts the next step from the last stage, and the
#: pair's third stage sits at the half step. So a step costs three new evaluations, as the
#: paper's, and a solve one more at its start. The half-step weights (dense output) are
#: second-order and match ``sum w c^2 = 1/24``.
FEHLBERG3 = adaptive(
    [[1.0], [0.25, 0.25], [1 / 6, 1 / 6, 2 / 3]],
    b=[1 / 6, 1 / 6, 2 / 3, 0.0],
    b_embedded=[0.5, 0.5, 0.0, 0.0],
    c=[0.0, 1.0, 0.5, 1.0],
    order=3,
    b_mid=[5 / 24, -1 / 24, 1 / 3, 0.0],
)


def _torchdiffeq_solvers() -> dict:
    import sys

    import torchdiffeq  # noqa: F401  (loads the module the solver table lives in)

    return sys.modules["torchdiffeq._impl.odeint"].SOLVERS


def export_to_torchdiffeq(name: str, tab: ButcherTableau) -> None:
    """Make torchdiffeq's ``odeint(method=name)`` integrate the adaptive tableau `tab` with its
    own controller, exactly as it integrates its built-in pairs."""
    from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver, _ButcherTableau

    def f64(values):
        return torch.tensor(values, dtype=torch.float64)

    rows = [f64(row[:i]) for i, row in enumerate(tab.a) if i > 0]
    table = _ButcherTableau(alpha=f64(tab.c[1:]), beta=rows, c_sol=f64(tab.b), c_error=f64(tab.b_error))
    solver = type(name, (RKAdaptiveStepsizeODESolver,), {"order": tab.order, "tableau": table})
    solver.mid = f64(tab.b_mid)
    _torchdiffeq_solvers()[name] = solver


def from_torchdiffeq(name: str) -> ButcherTableau:
    """The tableau torchdiffeq's adaptive solver `name` integrates with."""
    solver = _torchdiffeq_solvers()[name]
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
