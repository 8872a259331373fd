"""Solvers: the registry of explicit Runge-Kutta schemes shared by every gradient method.

Names and options mean what they mean in torchdiffeq. Fixed-step solvers take
``options={"step_size": h}`` (or integrate on the output grid when no step size is given);
adaptive ones are controlled by ``rtol``/``atol``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from odebench.errors import InvalidInputError
from odebench.registry import Registry
from odebench.solvers.tableau import FEHLBERG3, ButcherTableau, export_to_torchdiffeq, fixed, from_torchdiffeq


@dataclass(frozen=True)
class Solver:
    """A named Runge-Kutta scheme; ``adaptive`` tells which controller drives it."""

    name: str
    tableau: ButcherTableau
    description: str

    @property
    def adaptive(self) -> bool:
        return self.tableau.adaptive

    @property
    def order(self) -> int:
        return self.tableau.order


registry: Registry[Solver] = Registry("solver")


def _add(name: str, tableau: ButcherTableau, description: str) -> None:
    registry.register(name, Solver(name, tableau, description))


_add("euler", fixed([], [1.0], [0.0], 1), "explicit Euler, order 1, fixed step")
_add("midpoint", fixed([[0.5]], [0.0, 1.0], [0.0, 0.5], 2), "explicit midpoint, order 2, fixed step")
_add("heun2", fixed([[1.0]], [0.5, 0.5], [0.0, 1.0], 2), "Heun's method, order 2, fixed step")
_add(
    "heun3",
    fixed([[1 / 3], [0.0, 2 / 3]], [1 / 4, 0.0, 3 / 4], [0.0, 1 / 3, 2 / 3], 3),
    "Heun's third-order method, fixed step",
)
_add(
    "rk4",
    fixed(
        [[1 / 3], [-1 / 3, 1.0], [1.0, -1.0, 1.0]],
        [1 / 8, 3 / 8, 3 / 8, 1 / 8],
        [0.0, 1 / 3, 2 / 3, 1.0],
        4,
    ),
    "Kutta's 3/8 rule, order 4, fixed step (torchdiffeq's rk4)",
)
_add("adaptive_heun", from_torchdiffeq("adaptive_heun"), "Heun-Euler 2(1), adaptive")
_add("fehlberg2", from_torchdiffeq("fehlberg2"), "Runge-Kutta-Fehlberg 2(1), adaptive")
export_to_torchdiffeq("fehlberg3", FEHLBERG3)
_add("fehlberg3", FEHLBERG3, "Runge-Kutta-Fehlberg 3(2) (SSP RK3 with Heun embedded), adaptive")
_add("bosh3", from_torchdiffeq("bosh3"), "Bogacki-Shampine 3(2), adaptive")
_add("dopri5", from_torchdiffeq("dopri5"), "Dormand-Prince 5(4), adaptive")
_add("dopri8", from_torchdiffeq("dopri8"), "Dormand-Prince 8(7), adaptive")

#: Default (rtol, atol) per dtype: tight enough to mean something, loose enough that the dtype's
#: round-off does not drive the step-size controller (rtol stays >= 100x machine epsilon).
DEFAULT_TOLERANCES = {
    torch.float64: (1e-6, 1e-8),
    torch.float32: (1e-4, 1e-6),
    torch.float16: (1e-2, 1e-4),
    torch.bfloat16: (1e-1, 1e-3),
}


def default_tolerances(dtype: torch.dtype | str) -> tuple[float, float]:
    """``(rtol, atol)`` that suit `dtype` (a torch dtype or its name, e.g. ``"float32"``)."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    if dtype not in DEFAULT_TOLERANCES:
        valid = ", ".join(str(d).removeprefix("torch.") for d in DEFAULT_TOLERANCES)
        raise InvalidInputError(f"no default tolerances for dtype {dtype}; valid: {valid}")
    return DEFAULT_TOLERANCES[dtype]


def tolerance_problem(rtol: float, dtype: torch.dtype) -> str | None:
    """Why `rtol` cannot be met in `dtype` (positive but below its machine epsilon), or None."""
    eps = torch.finfo(dtype).eps
    if 0 < rtol < eps:
        return f"rtol={rtol:g} is below the machine epsilon of {dtype} ({eps:.1e}); no solver can meet it"
    return None


names = registry.names
get = registry.get
register = registry.register

ADAPTIVE = frozenset(n for n, s in registry.items() if s.adaptive)
FIXED_STEP = frozenset(n for n, s in registry.items() if not s.adaptive)

__all__ = [
    "ADAPTIVE",
    "DEFAULT_TOLERANCES",
    "FIXED_STEP",
    "Solver",
    "default_tolerances",
    "get",
    "names",
    "register",
    "registry",
    "tolerance_problem",
]
