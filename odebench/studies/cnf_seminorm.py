"""Train a 2-D CNF on eight Gaussians: the seminorm adjoint against the plain one (Kidger et al. 2021).

Two configurations: ``cnf_seminorm_ffjord``, FFJORD's own toy flow (concat-squash 64-64-64,
batch 100), the regime of the paper (CNFs of the FFJORD code base: many parameters per state
entry); and ``cnf_seminorm``, a smaller tanh MLP on batches of 200, four times fewer parameters
per state entry, as a second point.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import nn

from odebench.claims import Claim, Metric, Part
from odebench.models.cnf import CNFField
from odebench.models.concatsquash import ConcatSquashMLP
from odebench.models.mlp import MLP
from odebench.studies.base import Data, Study, data_seed, iteration_generator
from odebench.tasks.cnf2d import FlowNLL, eight_gaussians

#: Samples held out for the NLL.
HELDOUT = 1000
SOURCE = (
    'Kidger, Chen & Lyons, "Hey, that\'s not an ODE": Faster ODE Adjoints via Seminorms, ICML 2021, '
    "abstract and CNF experiments (run with FFJORD's code, rtqichen/ffjord); draft abstract in "
    "patrick-kidger/FasterNeuralDiffEq (paper/faster-nde.tex)"
)
PUBLISHED = (
    "median 40 % (up to 62 %) fewer backward evaluations over their experiments, training time "
    "'roughly halved' at best; 5-50 % 'depending on the ratio of parameters to hidden state' (draft)"
)


def flow_start(x: torch.Tensor) -> torch.Tensor:
    """``[x, 0]``: samples with a zero accumulated log-density change."""
    return torch.cat([x, x.new_zeros(len(x), 1)], dim=-1)


def seminorm_claim(study: str) -> Claim:
    """The seminorm's claim on one CNF configuration: fewer backward NFE, less training time."""

    def versus(metric: Metric, published: float | None) -> Part:
        return Part(
            f"{metric.label}, seminorm vs plain adjoint",
            metric,
            treatment={"method": "seminorm"},
            control={"method": "adjoint"},
            published=published,
        )

    return Claim(
        sentence="The seminorm adjoint needs fewer backward function evaluations than the plain "
        "adjoint, for the same trained model, so training takes less time.",
        source=SOURCE,
        published=PUBLISHED,
        parts=(
            versus(Metric("nfe_backward_total", "backward NFE over training"), 0.6),
            versus(Metric("train_time_s", "training time"), None),
        ),
        needs={"studies": (study,), "methods": ("adjoint", "seminorm")},
    )


class CNFSeminormBase(Study):
    """A continuous normalising flow fitted to FFJORD's eight Gaussians by maximum likelihood.

    Published setup (Kidger, Chen & Lyons 2021, their continuous-normalising-flow experiments,
    run with FFJORD's code): FFJORD trained by the backsolve adjoint, its backward step-size
    control measuring the error of every adjoint channel (the RMS norm) or, with the seminorm,
    of the state and its adjoint only, leaving out the parameters' gradient integral; dopri5 at
    FFJORD's rtol = atol = 1e-5. Their claim (abstract): the seminorm needs a median 40 % (up to
    62 %) fewer backward function evaluations, so that training time is roughly halved, for the
    same trained model; their draft puts the saving at 5-50 % "depending on the ratio of
    parameters to hidden state". The 2-D densities are FFJORD's own toy setting
    (``train_toy.py``: concat-squash layers 64-64-64, tanh, exact trace, batches of 100 fresh
    samples, Adam at lr 1e-3 with weight decay 1e-5, 10 000 iterations, a trainable end time
    starting at 0.5), not one of the paper's datasets.

    The loss is the negative log-likelihood under a standard normal after the flow; the held-out
    metric the NLL of 1000 other samples; the finding is the backward NFE of ``adjoint`` against
    ``seminorm`` over training, and their training times.
    """

    paper = (
        'Kidger, Chen & Lyons, "Hey, that\'s not an ODE": Faster ODE Adjoints via Seminorms, ICML 2021; '
        "Grathwohl et al., FFJORD, ICLR 2019"
    )
    solver = "dopri5"
    rtol = 1e-5
    atol = 1e-5
    step_size = 0.05
    eval_every = 50
    heldout_name = "heldout NLL (nats)"
    target_loss = 3.5
    smooth = 10
    #: Samples per training batch (fresh each iteration), the flow's end time, the optimiser's.
    batch_size: ClassVar[int]
    horizon: ClassVar[float]
    adam: ClassVar[dict]

    @abc.abstractmethod
    def velocity(self, generator: torch.Generator) -> nn.Module:
        """The flow's velocity (with ``dim`` and ``value_and_trace``), float64."""

    def data(self, generator):
        seed = data_seed(generator)
        heldout = (flow_start(eight_gaussians(generator, HELDOUT)),)

        def batch(iteration: int) -> tuple[torch.Tensor]:
            return (flow_start(eight_gaussians(iteration_generator(seed, iteration), self.batch_size)),)

        return Data(batch=batch, heldout=heldout)

    def model(self, generator):
        return nn.ModuleDict({"field": CNFField(self.velocity(generator))})

    def optimizer(self, params):
        return torch.optim.Adam(params, **self.adam)

    def loss(self, model, solve, batch):
        (y0,) = batch
        t = torch.tensor([0.0, self.horizon], dtype=y0.dtype, device=y0.device)
        return FlowNLL(2)(solve(model.field, y0, t))

    def evaluate(self, model, solve, heldout):
        return self.loss(model, solve, heldout).item()


class CNFSeminormFFJORD(CNFSeminormBase):
    __doc__ = (
        (CNFSeminormBase.__doc__ or "")
        + """
    ``cnf_seminorm_ffjord`` is that toy flow, with 9224 parameters for a state of 300 numbers
    (about 31 per state entry), on eight Gaussians (the FFJORD readme's example), with the
    end time fixed at 0.5, for 500 iterations. Measured on the shared 2-core machine (the claims
    suite, two workers): about 0.17 s per iteration, 90 s a run with the checks.
    """
    )

    name = "cnf_seminorm_ffjord"
    description = (
        "FFJORD's toy CNF (concat-squash 64-64-64, batch 100) on eight Gaussians; seminorm vs adjoint"
    )
    deviations = (
        "500 of FFJORD's 10,000 iterations",
        "the end time fixed at 0.5 (FFJORD trains it from 0.5)",
        "eight Gaussians, FFJORD's toy density, not one of the paper's datasets",
    )
    iterations = 500
    batch_size = 100
    horizon = 0.5
    adam: ClassVar[dict] = {"lr": 1e-3, "weight_decay": 1e-5}
    claims = (seminorm_claim("cnf_seminorm_ffjord"),)

    def velocity(self, generator):
        return ConcatSquashMLP(2, (64, 64, 64), generator)


class CNFSeminorm(CNFSeminormBase):
    __doc__ = (
        (CNFSeminormBase.__doc__ or "")
        + """
    ``cnf_seminorm`` is a smaller flow, a second point below the paper's regime: a tanh MLP
    velocity with time as an input (two hidden layers of 64; the ``cnf2d`` task's), 4546
    parameters for a state of 600 numbers (batches of 200: about 8 per state entry), end time
    1, Adam at lr 1e-3 without weight decay, 300 iterations. Measured on the shared 2-core machine
    (the claims suite, two workers): 26 to 29 s of training per run, 33 s with the checks.
    """
    )

    name = "cnf_seminorm"
    description = "CNF (tanh MLP, batch 200) on eight Gaussians, NLL; backward NFE of the seminorm vs adjoint"
    deviations = (
        "a tanh MLP with time as an input (64-64) instead of FFJORD's concat-squash 64-64-64",
        "batches of 200, end time 1, no weight decay, 300 of 10,000 iterations",
        "eight Gaussians, FFJORD's toy density, not one of the paper's datasets",
    )
    iterations = 300
    batch_size = 200
    horizon = 1.0
    adam: ClassVar[dict] = {"lr": 1e-3}
    claims = (seminorm_claim("cnf_seminorm"),)

    def velocity(self, generator):
        return MLP(2, 64, depth=2, time_input=True, generator=generator)
