"""Lorenz-63 one-step prediction with an adaptive low-order solver (Allauzen et al. 2022)."""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from odebench.models.mlp import MLP
from odebench.studies.base import Setup, Study, iteration_generator
from odebench.tasks.base import normal, rk4
from odebench.tasks.lorenz63 import ATTRACTOR_POINT, lorenz63

#: Sample spacing and points per trajectory (train and held out), RK4 substeps per sample.
DT, POINTS, SUBSTEPS = 0.01, 5000, 2
#: Hidden width of the two ReLU layers; consecutive pairs per minibatch.
WIDTH, BATCH = 50, 250
#: Held-out rollouts: starts (evenly spread along the held-out trajectory) and predictions each.
ROLLOUTS, HORIZON = 8, 25


class ReLUField(nn.Module):
    """The paper's network as an autonomous field: 3 -> 50 -> 50 -> 3, ReLU (`MLP`'s initialisation)."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.layers = MLP(3, WIDTH, depth=2, generator=generator).layers

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = y
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        return self.layers[-1](h)


@functools.lru_cache(maxsize=8)
def trajectories(seed: int) -> torch.Tensor:
    """Two Lorenz-63 trajectories of `POINTS` samples every `DT`, shape ``(2, POINTS, 3)``; memoised.

    Starts: a point of the attractor plus N(0, 1) noise each; float64 RK4 with `SUBSTEPS` steps
    per sample (data: only its determinism matters).
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x0 = np.asarray(ATTRACTOR_POINT) + normal(generator, (2, 3)).numpy()
    path = rk4(lorenz63, x0, DT / SUBSTEPS, (POINTS - 1) * SUBSTEPS, SUBSTEPS)
    return torch.from_numpy(np.concatenate([x0[None], path])).transpose(0, 1)


class Lorenz63OneStep(Study):
    """Learn Lorenz-63 from one-step predictions solved by Fehlberg's adaptive low-order method.

    Published setup (Allauzen, Petrilli Maffei Dardis & Plath 2022, and their code): Lorenz-63
    with sigma 10, rho 28, beta 8/3; a training and a test trajectory of 5000 points 0.01 apart;
    the model predicts each point from the previous one, ``x_{i+1} = ODESolve(net, x_i)``, with
    a 3 -> 50 -> 50 -> 3 ReLU network and their own Fehlberg RK3(2) solver (first step the whole
    interval, per-example error ``|A1 - A2|_1 / h`` against a tolerance eps of 0.1, 0.05 or
    0.01); loss ``sum_i |x_i - x~_i|^2 / (T - 1)`` over the whole trajectory; full-batch L-BFGS,
    200 epochs. Their claim (their training figure and appendix): used as a black box, the
    adaptive solver accepts nearly every prediction in one step at eps 0.1 and 0.05, its
    controller idle, because the freshly initialised network's error estimate falls below eps;
    only at eps 0.01 are about 10 % of the predictions rejected and taken in about 4 steps.

    Here: the same data length, spacing and network, time running one unit per sample as in
    their code (``t = [0, 1]`` per prediction), the same loss over minibatches of 250 pairs drawn
    per iteration (full batches of 5000 cost 0.3 s per iteration here); trajectories start from
    two perturbed points of the attractor (RK4, two substeps per sample); torchdiffeq's Fehlberg
    2(1) (``fehlberg2``) at rtol 0.1, 0.05 or 0.01, atol rtol / 100, its error the RMS over the
    batch, so a batch shares one step size; Adam (lr 3e-3, decayed by 0.999 per iteration) for
    1500 iterations instead of L-BFGS (the loop steps its optimiser without a closure). Steps per
    prediction are ``steps_accepted / solves`` of each curve point (one batched solve per
    iteration), the acceptance rate ``accepted / (accepted + rejected)``. The first step is the
    whole interval, as in the paper (``solver_options``: left to itself, torchdiffeq's initial
    step heuristic takes about a third of it, and a prediction about 3 steps at every
    tolerance). The target is a training loss of 1e-2 (mean of 20 iterations);
    the held-out metric the free-running rollout error: from 8 starts spread along the held-out
    trajectory, 25 one-step predictions each, the mean squared distance to the truth. Measured on
    the shared 2-core machine (seed 0, `odebench train --study lorenz63_one_step --rtol 0.1 0.05
    0.01`): 14-35 s of training per run, at most 40 s with the checks.
    """

    name = "lorenz63_one_step"
    description = "Lorenz-63 one-step prediction, ReLU MLP, fehlberg2 (rtol 0.1), rollout error held out"
    paper = (
        "Allauzen, Petrilli Maffei Dardis & Plath, Experimental study of Neural ODE training with "
        "adaptive solver for dynamical systems modeling, DLDE workshop, NeurIPS 2022 (arXiv:2211.06972)"
    )
    claim = (
        "a black-box adaptive solver takes one step per prediction (its controller idle) at "
        "tolerance 0.1 and 0.05; only at 0.01 does it reject and adapt"
    )
    solver = "fehlberg2"
    rtol = 0.1
    atol = 1e-3
    step_size = 1.0
    #: The tolerances the paper compares (the suites cross them).
    tolerances = (0.1, 0.05, 0.01)
    #: The paper's first step: the whole interval between two samples.
    solver_options: ClassVar[dict] = {"first_step": 1.0}
    iterations = 1500
    eval_every = 150
    heldout_name = "rollout MSE (25 steps)"
    target_loss = 1e-2
    smooth = 20
    #: dopri8 at 1e-10 resolves every ReLU kink of the batch (about 350 steps on [0, 1]); at 1e-6 it
    #: takes about 10 and the gradient agrees with the 1e-8 one to 5e-5.
    reference_tolerance = 1e-6

    def build(self, generator: torch.Generator) -> Setup:
        field = ReLUField(generator)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        train, test = trajectories(seed)
        t = torch.tensor([0.0, 1.0], dtype=torch.float64)
        starts = torch.arange(ROLLOUTS) * (POINTS // ROLLOUTS)
        truth = torch.stack([test[starts + k] for k in range(HORIZON + 1)])

        def batch(iteration: int) -> tuple[torch.Tensor, ...]:
            pick = torch.randint(0, POINTS - 1, (BATCH,), generator=iteration_generator(seed, iteration))
            return train[pick], t, train[pick + 1]

        return Setup(
            model=nn.ModuleDict({"field": field}),
            batch=batch,
            heldout=(t, truth),
            optimizer=lambda params: torch.optim.Adam(params, lr=3e-3),
            scheduler=lambda optimizer: torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.999),
        )

    def loss(self, model, solve, batch):
        x, t, target = batch
        return (solve(model.field, x, t)[-1] - target).pow(2).sum(-1).mean()

    def evaluate(self, model, solve, heldout):
        t, truth = heldout
        x, error = truth[0], 0.0
        for k in range(1, HORIZON + 1):
            x = solve(model.field, x, t)[-1]
            error += (x - truth[k]).pow(2).sum(-1).mean().item()
        return error / HORIZON
