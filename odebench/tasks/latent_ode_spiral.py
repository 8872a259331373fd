"""Latent-ODE-style fit of irregularly sampled noisy spirals: many output times."""

from __future__ import annotations

import math

import torch
from torch import nn

from odebench.models.mlp import MLP
from odebench.models.readout import fit_readout
from odebench.tasks.base import Problem, Task, normal, uniform

#: Spirals in the batch, latent dimension, hidden width, horizon, observation noise.
BATCH, LATENT, WIDTH, HORIZON, NOISE = 8, 4, 32, 5.0, 0.1
#: Probability that a spiral is observed at a given time of the union grid.
OBSERVED = 0.5
#: The latent field's read-out is fitted to ``dz/dt = LATENT_A z`` on this many N(0, 1.5^2) samples:
#: two planes turning at 1 rad per unit time in opposite senses, one growing and one decaying.
LATENT_A = (
    (0.1, -1.0, 0.0, 0.0),
    (1.0, 0.1, 0.0, 0.0),
    (0.0, 0.0, -0.1, 1.0),
    (0.0, 0.0, -1.0, -0.1),
)
FIT_SAMPLES, FIT_RIDGE = 1000, 1e-4


class MaskedDecodedMSE(nn.Module):
    """Mean squared error of a fixed linear decoding of the state, over the observed entries only.

    ``sum_{i, b} m_ib |D z_b(t_i) + c - x_ib|^2 / (2 * sum m)`` with ``D`` of shape
    ``(obs_dim, latent)``, targets ``x`` of shape ``(len(t), batch, obs_dim)`` and a 0/1 mask
    ``m`` of shape ``(len(t), batch)``.
    """

    def __init__(self, decoder: torch.Tensor, offset: torch.Tensor, target: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("decoder", decoder)
        self.register_buffer("offset", offset)
        self.register_buffer("target", target)
        self.register_buffer("mask", mask)

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        decoded = solution @ self.decoder.T + self.offset
        squared = (decoded - self.target).pow(2).sum(-1) * self.mask
        return squared.sum() / (self.target.shape[-1] * self.mask.sum())


def spiral_parameters(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial radius and phase of each spiral: ``U(0.5, 1)`` and ``U(0, 2 pi)``."""
    return uniform(generator, (BATCH,), 0.5, 1.0), uniform(generator, (BATCH,), 0.0, 2 * math.pi)


def spirals(shape: tuple[torch.Tensor, torch.Tensor], t: torch.Tensor) -> torch.Tensor:
    """Noiseless 2-D Archimedean spirals at times `t`, half of them clockwise: ``(len(t), BATCH, 2)``.

    Radius ``r(t) = r0 + 0.3 t`` (decreasing for the clockwise half, which starts further out),
    angle ``phi0 +- t``, as the spirals of the latent ODE demo of Chen et al.
    """
    r0, phi0 = shape
    direction = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(BATCH // 2)
    start = torch.where(direction > 0, r0, r0 + 0.3 * HORIZON)
    radius = start + direction * 0.3 * t.unsqueeze(-1)
    angle = phi0 + direction * t.unsqueeze(-1)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)


class LatentODESpiral(Task):
    """Irregularly sampled noisy spirals fitted by a latent ODE: MLP latent field, linear decoder.

    Data: 8 two-dimensional spirals (half clockwise), observed with N(0, 0.1^2) noise at an
    irregular grid of ``n`` times on ``[0, 5]`` (``t_0 = 0``, then one time drawn uniformly
    inside each of ``n - 1`` equal cells, so gaps vary from 0.1 to 1.9 times the mean); each
    spiral is observed at a random half of the times (a 0/1 mask, Rubanova et al.'s
    irregular sampling) and always at ``t_0``. Model: 4 latent dimensions, an MLP latent field
    (4 -> 32 -> 32 -> 4, tanh), a fixed random linear decoder to 2-D; the latent initial
    states, what a trained encoder would output, are fixed random draws. The field is partly
    trained: random hidden layers, read-out fitted by ridge regression
    (`odebench.models.fit_readout`) to a linear field turning two latent planes at 1 rad per
    unit time in opposite senses (the spirals' angular speed), one slowly growing, one
    decaying. The loss is the masked mean squared error of the decoded trajectory at all ``n``
    times.

    Probes: many irregular output times (the knob, ``n``): the adjoint integrates backwards
    interval by interval and checkpointing methods keep a slot per output, so costs grow with
    ``n`` even where the forward solve's steps do not.
    """

    name = "latent_ode_spiral"
    description = "latent ODE (MLP field, linear decoder) on irregularly sampled noisy spirals, masked MSE"
    paper = (
        "Rubanova, Chen & Duvenaud, Latent ODEs for Irregularly-Sampled Time Series, NeurIPS 2019; "
        "spirals of Chen et al., Neural Ordinary Differential Equations, NeurIPS 2018"
    )
    probes = "many irregular output times with a masked loss; cost of per-interval work grows with n"
    size_knob = "output times"
    default_size = 100
    sizes = (25, 50, 100, 200, 400)

    def _build(self, size, generator):
        func = MLP(LATENT, WIDTH, depth=2, generator=generator)
        samples = 1.5 * normal(generator, (FIT_SAMPLES, LATENT))
        fit_readout(func.layers, samples, samples @ torch.tensor(LATENT_A, dtype=torch.float64).T, FIT_RIDGE)
        decoder = normal(generator, (2, LATENT)) / math.sqrt(LATENT)
        offset = torch.zeros(2, dtype=torch.float64)
        z0 = normal(generator, (BATCH, LATENT))
        shape = spiral_parameters(generator)
        # Everything above is the same for every size; the sampling below depends on it.
        cells = size - 1
        inside = uniform(generator, (cells,), 0.05, 0.95)
        t = torch.cat(
            [torch.zeros(1, dtype=torch.float64), (torch.arange(cells) + inside) * (HORIZON / cells)]
        )
        observations = spirals(shape, t) + NOISE * normal(generator, (size, BATCH, 2))
        mask = (torch.rand(size, BATCH, generator=generator, dtype=torch.float64) < OBSERVED).to(
            torch.float64
        )
        mask[0] = 1.0
        loss = MaskedDecodedMSE(decoder, offset, observations, mask)
        return Problem(func=func, y0=z0, t=t, loss=loss, step_size=0.05)
