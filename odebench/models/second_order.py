"""Second-order neural ODE (SONODE): ``x'' = f(x, x', t)`` as a first-order system in ``(x, v)``."""

from __future__ import annotations

import torch

from odebench.models.mlp import MLP


class SecondOrderField(MLP):
    """``d/dt (x, v) = (v, a(x, v[, t]))``, with the acceleration ``a`` an MLP.

    The state is ``[x, v]`` along the last axis (``2 * dim`` entries); only the acceleration is
    learnt, so ``dx/dt = v`` holds exactly whatever the parameters. The acceleration is an
    `odebench.models.MLP` from ``[x, v]`` (and ``t`` with `time_input`) to ``dim`` outputs.

    Args:
        dim: dimension of the position ``x`` (the state has ``2 * dim`` entries).
        width, depth, time_input, activation, generator: as for `odebench.models.MLP`.

    Reference: Norcliffe, Bodnar, Day, Simidjievski & Liò, "On Second Order Behaviour in
    Augmented Neural ODEs", NeurIPS 2020.
    """

    def __init__(
        self,
        dim: int,
        width: int,
        depth: int = 2,
        *,
        time_input: bool = False,
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            2 * dim,
            width,
            depth,
            time_input=time_input,
            out_dim=dim,
            activation=activation,
            generator=generator,
        )
        self.position_dim = dim

    def acceleration(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``a(x, v[, t])`` for the state ``y = [x, v]``."""
        return super().forward(t, y)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([y[..., self.position_dim :], self.acceleration(t, y)], dim=-1)
