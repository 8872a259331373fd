"""The Lorenz-63 system: chaotic, so gradients grow exponentially with the horizon."""

from __future__ import annotations

import torch
from torch import nn

from odebench.tasks.base import Array, FinalStateEnergy, Problem, Task, normal, stack_last

#: The classic parameters (sigma, rho, beta).
SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
#: A point on the attractor (from (1, 1, 1) after t = 30 with the classic parameters).
ATTRACTOR_POINT = (7.187, -1.483, 34.387)


def lorenz63(
    state: Array,
    sigma: float | torch.Tensor = SIGMA,
    rho: float | torch.Tensor = RHO,
    beta: float | torch.Tensor = BETA,
) -> Array:
    """The Lorenz-63 field ``(sigma (y - x), x (rho - z) - y, x y - beta z)`` on the last axis.

    `state` is a torch tensor (`Lorenz63Field`, learnable parameters) or a NumPy array (the data
    of `lorenz63_fit`, classic parameters).
    """
    x, y, z = state[..., 0], state[..., 1], state[..., 2]
    return stack_last([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])


class Lorenz63Field(nn.Module):
    """`lorenz63` with learnable (sigma, rho, beta): three scalar parameters."""

    def __init__(self, sigma: torch.Tensor, rho: torch.Tensor, beta: torch.Tensor) -> None:
        super().__init__()
        self.sigma = nn.Parameter(sigma)
        self.rho = nn.Parameter(rho)
        self.beta = nn.Parameter(beta)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return lorenz63(y, self.sigma, self.rho, self.beta)


class Lorenz63(Task):
    """Lorenz-63 with learnable (sigma, rho, beta) = (10, 28, 8/3); loss on the final state only.

    ``y0``: 4 points near the attractor (a point on it plus N(0, 1) noise per coordinate);
    ``t = [0, T]``; the loss is the batch mean of ``|y(T)|^2 / (2 * 25^2)``. The largest
    Lyapunov exponent is about 0.9, so the gradient grows like ``exp(0.9 T)`` and every method's
    error with it: the horizon knob (1, 2, 5, 10) turns a smooth problem into an ill-conditioned
    one. Backward solves of the adjoint are unstable in the same way. References are solved at
    1e-14 beyond T = 2, where chaos amplifies the solver's error: at T = 10 successive dopri8
    gradients at 1e-10 ... 1e-14 differ by 3e-5, 2e-6, 2e-7, 2e-8 (relative), so at 1e-12 the
    estimate (the difference to the 100x looser solve) would be 3e-5; at 1e-14 it is 2.4e-7, for
    about twice the cost (about 30 s).

    Probes: chaotic sensitivity, gradient growth with the horizon, loss at one final time.
    """

    name = "lorenz63"
    description = "Lorenz-63, learnable (sigma, rho, beta), loss on the final state"
    paper = (
        "Lorenz, Deterministic Nonperiodic Flow, J. Atmos. Sci. 1963; chaotic sensitivities as in "
        "Wang, Hu & Blonigan, least-squares shadowing, J. Comput. Phys. 2014"
    )
    probes = "chaos: gradient and its error grow like exp(0.9 T); single final output time"
    size_knob = "horizon T"
    default_size = 1
    sizes = (1, 2, 5, 10)
    tight_reference_above = 2

    def _build(self, size, generator):
        y0 = torch.tensor(ATTRACTOR_POINT, dtype=torch.float64) + normal(generator, (4, 3))
        t = torch.tensor([0.0, float(size)], dtype=torch.float64)
        params = [torch.tensor(v, dtype=torch.float64) for v in (SIGMA, RHO, BETA)]
        return Problem(func=Lorenz63Field(*params), y0=y0, t=t, loss=FinalStateEnergy(25.0), step_size=0.005)
