"""Nesterov Neural ODEs (NesterovNODE, GNesterovNODE): the ODE limit of Nesterov's accelerated
gradient as a vector field, with a learnt force."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: The generalised model's damping of the hidden state (the authors' CIFAR-10 setting).
G_DAMPING = 1.5


@dataclass(frozen=True)
class NesterovCoordinates:
    """The change of variable between the features ``h`` and the state ``[x, m]``.

    ``h = k(t) x`` with ``k(t) = t^(-r/2) e^(t/2)`` at the system's time ``t + time_offset``
    (every published experiment integrates from t = 1, clear of the singularity at 0); ``x`` and
    the momentum ``m`` are concatenated along `axis` (the last for vectors, 1 for feature maps).
    A model holds these beside its field, so that its loss can map features to states and back
    whatever wraps the field (the training loop counts its evaluations).
    """

    power: float = 3.0
    time_offset: float = 1.0
    axis: int = -1

    def __post_init__(self) -> None:
        if self.time_offset <= 0:
            raise ValueError(f"time_offset must be > 0 (k(t) is singular at 0), got {self.time_offset}")

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        """``k`` at the caller's time `t`."""
        s = t + self.time_offset
        return s.pow(-self.power / 2) * torch.exp(s / 2)

    def initial_state(
        self, t0: torch.Tensor, h0: torch.Tensor, m0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The state ``[x, m]`` whose features at `t0` are `h0` and whose momentum is `m0` (the
        published models learn it from ``h0`` with an initial-velocity network; None: at rest)."""
        m0 = torch.zeros_like(h0) if m0 is None else m0
        return torch.cat([h0 / self.scale(t0.to(h0)), m0], dim=self.axis)

    def readout(self, t: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """The features ``h = k(t) x`` of `states`, one per time of `t` along the leading axis."""
        x = states.chunk(2, dim=self.axis + 1 if self.axis >= 0 else self.axis)[0]
        k = self.scale(t.to(x))
        return k.reshape(*k.shape, *([1] * (x.dim() - k.dim()))) * x


class NesterovField(nn.Module):
    """``d/dt (x, m) = (s(m), s(s(f(t, h)) - m) - xi h)`` with ``h = k(t) x``, ``k(t) = t^(-r/2) e^(t/2)``.

    Nesterov's accelerated gradient flow ``x'' + (r/t) x' + grad F(x) = 0`` (r = 3) is rewritten
    by Nguyen et al. with the change of variable ``h = t^(-r/2) e^(t/2) x`` and a momentum ``m``
    as the first-order system ``x' = m``, ``m' = -m + f(t, h)``, the force ``f`` learnt; its
    adjoint is again of that form, which is where the paper expects fewer evaluations in the
    backward solve as well as the forward one. The generalised model (GNesterovNODE) squashes
    ``m`` and the force with ``tanh`` and damps ``h`` by ``xi`` (the authors' CIFAR-10 setting:
    tanh, ``xi = 1.5``). `NesterovCoordinates` holds the change of variable and the time offset
    (the system's time is the caller's plus 1) and maps features to states and back.

    Args:
        force: the learnt ``f(t, h)`` (a vector field on the features).
        coordinates: the change of variable (default: r = 3, from t = 1, on the last axis).
        generalized: GNesterovNODE (tanh, damping `G_DAMPING`) instead of NesterovNODE.

    Reference: Nguyen, Nguyen, Xia, Nguyen, Osher & Nguyen, "Improving Neural Ordinary
    Differential Equations with Nesterov's Accelerated Gradient Method", NeurIPS 2022 (the
    equations as the authors' code states them, minhtannguyen/NesterovNODE, base.py; its state
    ordering is inconsistent between the field and the read-out, the equations are not).
    """

    def __init__(
        self,
        force: nn.Module,
        coordinates: NesterovCoordinates | None = None,
        *,
        generalized: bool = False,
    ) -> None:
        super().__init__()
        self.force, self.generalized = force, generalized
        self.coordinates = NesterovCoordinates() if coordinates is None else coordinates
        self.damping = G_DAMPING if generalized else 0.0

    def _squash(self, v: torch.Tensor) -> torch.Tensor:
        return torch.tanh(v) if self.generalized else v

    def forward(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        axis = self.coordinates.axis
        x, m = state.chunk(2, dim=axis)
        h = self.coordinates.scale(t) * x
        dm = self._squash(self._squash(self.force(t, h)) - m) - self.damping * h
        return torch.cat([self._squash(m), dm], dim=axis)
