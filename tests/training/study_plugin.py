"""Small studies for the training loop's tests, registered like a user's plug-in.

* ``toy_decay``: fit the rate of ``y' = -a y`` (a batch of 4 scalars, outputs at t = 0.5, 1) by
  SGD; cheap enough to train for 20 iterations with every method in a second.
* ``toy_diverge``: gradient ascent on ``y' = -a y^2``; the solution blows up once
  ``-a y0 T > 1``, which the solver meets as a step-size underflow in iteration 4.
* ``toy_slow``: hangs at its fourth iteration, to be killed by a worker timeout;
* ``toy_pause``: ``toy_decay`` at 50 ms per iteration, to be killed half-way through a sweep.
"""

from __future__ import annotations

import time
from typing import ClassVar

import torch
from torch import nn

from odebench import studies
from odebench.studies.base import Data, Study


class Decay(nn.Module):
    def __init__(self, rate: float, power: int = 1) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(rate, dtype=torch.float64))
        self.power = power

    def forward(self, t, y):
        return -self.a * y**self.power


class Model(nn.Module):
    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field = field


class ToyDecay(Study):
    name = "toy_decay"
    description = "fit the rate of exponential decay (test study)"
    paper = "none"
    solver = "dopri5"
    rtol = 1e-6
    atol = 1e-8
    step_size = 0.05
    iterations = 20
    eval_every = 5
    heldout_name = "heldout MSE"
    target_loss = 1e-4
    optimizer_options: ClassVar[dict] = {"lr": 0.5}
    power = 1
    start = 0.5

    def data(self, generator):
        y0 = 1 + torch.rand(4, generator=generator, dtype=torch.float64)
        t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
        target = y0 * torch.exp(-1.3 * t[1:, None])
        data = (y0, t, target)
        return Data(batch=lambda i: data, heldout=data)

    def model(self, generator):
        return Model(Decay(self.start, self.power))

    def optimizer(self, params):
        return torch.optim.SGD(params, **self.optimizer_options)

    def loss(self, model, solve, batch):
        y0, t, target = batch
        return (solve(model.field, y0, t)[1:] - target).pow(2).mean()

    def evaluate(self, model, solve, heldout):
        return self.loss(model, solve, heldout).item()

    def parameter_error(self, model, setup):
        return abs(model.field.a.item() - 1.3) / 1.3


class ToyDiverge(ToyDecay):
    name = "toy_diverge"
    power = 2
    # Ascent: the rate grows more negative until y' = |a| y^2 blows up before t = 1.
    optimizer_options: ClassVar[dict] = {"lr": 0.002, "maximize": True}
    start = -0.2


class ToySlow(ToyDecay):
    """Hangs in its sixth loss call: iteration 3 (iteration 0 also calls the loss for the
    gradient check and the held-out metric), after three iterations were reported."""

    name = "toy_slow"
    calls = 0

    def loss(self, model, solve, batch):
        type(self).calls += 1
        if type(self).calls == 6:
            time.sleep(3600)
        return super().loss(model, solve, batch)


class ToyPause(ToyDecay):
    """Takes a while per iteration, so a test can kill a sweep of it half-way."""

    name = "toy_pause"

    def loss(self, model, solve, batch):
        time.sleep(0.05)
        return super().loss(model, solve, batch)


for study in (ToyDecay(), ToyDiverge(), ToySlow(), ToyPause()):
    if study.name not in studies.registry:
        studies.register(study.name, study)
