"""Continuous normalising flow on a 2-D toy density (FFJORD's eight Gaussians), exact trace."""

from __future__ import annotations

import math

import torch
from torch import nn

from odebench.models.cnf import CNFField
from odebench.models.mlp import MLP
from odebench.models.readout import fit_readout
from odebench.tasks.base import Problem, Task, normal

#: Hidden width and layers of the velocity MLP; the flow runs over ``t in [0, HORIZON]``.
WIDTH, DEPTH, HORIZON = 64, 2, 1.0
#: FFJORD's "8gaussians": centres at radius 4 / sqrt(2), variance 0.125 per coordinate.
CENTRES = tuple(
    (4 * math.cos(k * math.pi / 4) / math.sqrt(2), 4 * math.sin(k * math.pi / 4) / math.sqrt(2))
    for k in range(8)
)
VARIANCE = 0.125
#: Samples ``(t, z)`` the velocity's read-out is fitted on, and its ridge.
FIT_SAMPLES, FIT_RIDGE = 4000, 1e-6


def eight_gaussians(generator: torch.Generator, n: int) -> torch.Tensor:
    """``n`` float64 samples of FFJORD's eight-Gaussians density."""
    which = torch.randint(0, 8, (n,), generator=generator)
    return torch.tensor(CENTRES, dtype=torch.float64)[which] + math.sqrt(VARIANCE) * normal(generator, (n, 2))


def probability_flow(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Velocity of the probability-flow ODE of the Ornstein-Uhlenbeck process from the density.

    ``dx = -x dt + sqrt(2) dW`` started at eight Gaussians keeps a Gaussian mixture, centres
    ``e^-t c_k`` and variance ``s^2 = e^-2t VARIANCE + 1 - e^-2t``; the deterministic flow with
    the same marginals is ``dz/dt = -z - grad log p_t(z)``, which carries the density to the
    standard normal as ``t`` grows. `t` has shape ``(n,)``, `z` ``(n, 2)``.
    """
    decay = torch.exp(-t).unsqueeze(-1)
    var = decay.pow(2) * VARIANCE + 1 - decay.pow(2)
    diff = z.unsqueeze(-2) - decay.unsqueeze(-1) * torch.tensor(CENTRES, dtype=z.dtype)
    weights = torch.softmax(-0.5 * diff.pow(2).sum(-1) / var, dim=-1)
    return -z + (weights.unsqueeze(-1) * diff).sum(-2) / var


class FlowNLL(nn.Module):
    """Negative log-likelihood of the data under the flow, from the final state ``[z, a]``.

    ``-mean(log N(z(T); 0, I) - a(T))`` with ``a`` the accumulated ``-tr(dg/dz)``.
    """

    def __init__(self, dim: int = 2) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        final = solution[-1]
        z, a = final[..., : self.dim], final[..., self.dim]
        log_base = -0.5 * z.pow(2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return -(log_base - a).mean()


class CNF2D(Task):
    """A CNF in 2-D: an MLP velocity (2 hidden tanh layers of 64, time input) with exact trace.

    The state is ``[z, a]`` per sample: ``dz/dt = g(t, z)``, ``da/dt = -tr(dg/dz)`` with the
    trace computed exactly (`odebench.models.CNFField` carries the 2-column Jacobian through
    the layers); ``y0 = [x, 0]`` for a batch of samples ``x`` of FFJORD's eight-Gaussians
    density (the size knob) and the loss is their negative log-likelihood under a standard
    normal base after the flow over ``[0, 1]``. The velocity is partly trained: its hidden
    layers keep their random initialisation and its read-out is fitted by ridge regression
    (`odebench.models.fit_readout`, about 40 % relative error) to the exact velocity of the
    probability-flow ODE of an Ornstein-Uhlenbeck process started at the density (a flow that
    carries it to the base), at 4000 samples of ``(z, t)``. Its NLL is about 3.3 nats against
    6.1 for a fresh field and 2.8 for the density's own entropy: a flow partway through
    training, contracting eight clusters, rather than a near-identity map.

    Probes: the CNF setting: an augmented state whose extra entry integrates a Jacobian trace
    (each VJP differentiates through the trace, i.e. second derivatives of the network), loss
    on the final state only; the knob scales the batch, hence the cost and memory per NFE.
    """

    name = "cnf2d"
    description = "continuous normalising flow on 8 Gaussians (exact trace), NLL of a sample batch"
    paper = (
        "Grathwohl et al., FFJORD, ICLR 2019 (the density); Song et al., Score-Based Generative Modeling "
        "through SDEs, ICLR 2021 (the flow fitted); Matsubara, Miyatake & Yaguchi, Symplectic Adjoint "
        "Method for Exact Gradient of Neural ODE with Minimal Memory, NeurIPS 2021"
    )
    probes = "CNF: state augmented by the log-density, trace in every VJP; batch knob scales cost"
    size_knob = "samples"
    default_size = 128
    sizes = (32, 128, 512, 2048)

    def _build(self, size, generator):
        velocity = MLP(2, WIDTH, depth=DEPTH, time_input=True, generator=generator)
        t_fit = HORIZON * torch.rand(FIT_SAMPLES, generator=generator, dtype=torch.float64)
        decay = torch.exp(-t_fit).unsqueeze(-1)
        noise = normal(generator, (FIT_SAMPLES, 2))
        z_fit = decay * eight_gaussians(generator, FIT_SAMPLES) + (1 - decay.pow(2)).sqrt() * noise
        inputs = torch.cat([z_fit, t_fit.unsqueeze(-1)], dim=-1)
        fit_readout(velocity.layers, inputs, probability_flow(t_fit, z_fit), FIT_RIDGE)
        x = eight_gaussians(generator, size)
        y0 = torch.cat([x, torch.zeros(size, 1, dtype=torch.float64)], dim=-1)
        t = torch.tensor([0.0, HORIZON], dtype=torch.float64)
        return Problem(func=CNFField(velocity), y0=y0, t=t, loss=FlowNLL(2), step_size=0.05)
