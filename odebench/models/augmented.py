"""Augmented neural ODE (ANODE): zero-initialised extra state dimensions, loss on the original ones."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from odebench.models.mlp import MLP


def augment(y0: torch.Tensor, extra: int) -> torch.Tensor:
    """`y0` with `extra` zeros appended along the last axis (the augmented dimensions)."""
    if extra < 0:
        raise ValueError(f"extra must be >= 0, got {extra}")
    return torch.cat([y0, y0.new_zeros(*y0.shape[:-1], extra)], dim=-1)


def augmented_mlp(dim: int, extra: int, width: int, depth: int = 2, **kwargs) -> MLP:
    """A tanh `MLP` field on the augmented state of ``dim + extra`` entries (keywords as `MLP`)."""
    return MLP(dim + extra, width, depth, **kwargs)


class OriginalDims(nn.Module):
    """Wraps a loss so that it reads only the first `dim` entries of the state's last axis.

    ``OriginalDims(loss, dim)(solution) = loss(solution[..., :dim])``: the augmented dimensions
    (or, for a second-order state ``[x, v]``, the velocity) influence the loss only through the
    dynamics.

    Reference: Dupont, Doucet & Teh, "Augmented Neural ODEs", NeurIPS 2019.
    """

    def __init__(self, loss: Callable[[torch.Tensor], torch.Tensor], dim: int) -> None:
        super().__init__()
        self.loss = loss
        self.dim = dim

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        return self.loss(solution[..., : self.dim])
