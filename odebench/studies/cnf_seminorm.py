"""Train a 2-D CNF on eight Gaussians: the seminorm adjoint against the plain one (Kidger et al. 2021)."""

from __future__ import annotations

import torch
from torch import nn

from odebench.models.cnf import CNFField
from odebench.models.mlp import MLP
from odebench.studies.base import Setup, Study, iteration_generator
from odebench.tasks.cnf2d import HORIZON, WIDTH, FlowNLL, eight_gaussians

#: Samples per training batch (fresh each iteration) and held out.
BATCH, HELDOUT = 200, 1000


def flow_start(x: torch.Tensor) -> torch.Tensor:
    """``[x, 0]``: samples with a zero accumulated log-density change."""
    return torch.cat([x, x.new_zeros(len(x), 1)], dim=-1)


class CNFSeminorm(Study):
    """Fit a continuous normalising flow to FFJORD's eight Gaussians by maximum likelihood.

    Published setup (Kidger, Chen & Lyons 2021, their continuous-normalising-flow experiments,
    run with FFJORD's code, beside neural CDEs and Hamiltonian networks): FFJORD trained by the
    backsolve adjoint, its backward step-size control measuring the error of every adjoint
    channel (the RMS norm) or, with the seminorm, of the state and its adjoint only, leaving out
    the parameters' gradient integral; dopri5 at FFJORD's rtol = atol = 1e-5. Their claim
    (abstract and tables, over all their tasks): the seminorm needs a median 40 % (up to 62 %)
    fewer backward function evaluations, so that training time is roughly halved, for the same
    trained model. The 2-D densities are FFJORD's own toy setting (not one of theirs): an MLP
    field (three hidden layers of 64, softplus, Hutchinson trace), batches of 200 fresh samples,
    Adam at lr 1e-3 for 10 000 iterations.

    Here (scaled to one CPU core): eight Gaussians, 200 fresh samples per iteration; the cnf2d
    task's field, an MLP velocity (time input, two hidden tanh layers of 64) with the exact trace
    (`odebench.models.CNFField`), freshly initialised; the negative log-likelihood under a
    standard normal after the flow over ``[0, 1]``; dopri5 at rtol = atol = 1e-5; Adam, lr 1e-3,
    for 300 iterations of the published 10 000 (the NLL goes from 6.2 to about 3.0 nats, the
    density's entropy being about 2.8). The finding is the backward NFE per iteration of
    ``adjoint`` against ``seminorm`` along training (the loop records both) and their training
    times; the target is an NLL of 3.5 (mean of 10 iterations), the held-out metric the NLL of
    1000 other samples. Measured on the shared 2-core machine (seed 0, `odebench train --study
    cnf_seminorm`): 46-69 s of training per run, at most 79 s with the checks.
    """

    name = "cnf_seminorm"
    description = "CNF (exact trace) on eight Gaussians, NLL; backward NFE of the seminorm vs plain adjoint"
    paper = (
        'Kidger, Chen & Lyons, "Hey, that\'s not an ODE": Faster ODE Adjoints via Seminorms, ICML 2021; '
        "Grathwohl et al., FFJORD, ICLR 2019"
    )
    claim = "the seminorm adjoint takes a median 40 % (up to 62 %) fewer backward NFE, training about halved"
    solver = "dopri5"
    rtol = 1e-5
    atol = 1e-5
    step_size = 0.05
    iterations = 300
    eval_every = 50
    heldout_name = "heldout NLL (nats)"
    target_loss = 3.5
    smooth = 10

    def build(self, generator: torch.Generator) -> Setup:
        velocity = MLP(2, WIDTH, depth=2, time_input=True, generator=generator)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))

        def batch(iteration: int) -> tuple[torch.Tensor]:
            return (flow_start(eight_gaussians(iteration_generator(seed, iteration), BATCH)),)

        return Setup(
            model=nn.ModuleDict({"field": CNFField(velocity)}),
            batch=batch,
            heldout=(flow_start(eight_gaussians(generator, HELDOUT)),),
            optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
        )

    def loss(self, model, solve, batch):
        (y0,) = batch
        t = torch.tensor([0.0, HORIZON], dtype=y0.dtype, device=y0.device)
        return FlowNLL(2)(solve(model.field, y0, t))

    def evaluate(self, model, solve, heldout):
        return self.loss(model, solve, heldout).item()
