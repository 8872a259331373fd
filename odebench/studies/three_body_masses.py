"""Recover the masses of three stars from their trajectory (Zhuang et al. 2020), as published."""

from __future__ import annotations

import functools

import torch
import torchdiffeq
from torch import nn

from odebench.claims import Claim, Metric, Part
from odebench.studies.base import Data, Study
from odebench.tasks.base import uniform
from odebench.tasks.three_body import ThreeBodyField

#: The authors' non-dimensionalisation (three_body_problem.py): G, reference mass, distance,
#: speed and time; the field's ``coupling`` K1 and ``speed`` K2 follow from them.
G, MASS, DISTANCE, SPEED = 6.67408e-11, 1.989e30, 5.326e12, 30000.0
TIME = 79.91 * 365 * 24 * 3600 * 0.51
COUPLING = G * TIME * MASS / (DISTANCE**2 * SPEED)
VELOCITY_SCALE = SPEED * TIME / DISTANCE
#: The masses the data was generated with, and the range of the initial guesses.
TRUE_MASSES = (1.1, 1.1, 0.9)
GUESS_LOW, GUESS_HIGH = 0.9, 1.1
#: The published initial positions and velocities of the three bodies (3-D).
START = ((0.0, 0.2, 0.0), (0.5, 0.0, 0.5), (0.0, 0.0, 0.5), (0.0, 0.1, 0.0), (0.0, 0.0, 0.1), (0.1, 0.0, 0.0))
#: Output times on [0, 1] and the loss's weight 0.01^t; the extrapolation the code evaluates.
POINTS, WEIGHT_BASE, EXTRAPOLATION = 1000, 1e-2, 2.0
AUTHORS_CODE = "juntang-zhuang/torch_ACA, three_body_problem.py"


def field(masses: torch.Tensor) -> ThreeBodyField:
    """The published unsoftened 3-D field with `masses`."""
    return ThreeBodyField(masses, softening=0.0, dims=3, coupling=COUPLING, speed=VELOCITY_SCALE)


@functools.lru_cache(maxsize=2)
def positions(n: int, horizon: float, shifted: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y0, t, positions(t))`` of the true masses at `n` times on ``[0, horizon]`` (shifted by
    half a spacing after ``t = 0``, as the code's extrapolation); float64 dopri8 at 1e-12."""
    t = torch.linspace(0.0, horizon, n, dtype=torch.float64)
    if shifted:
        t = t + t[1] / 2
        t[0] = 0.0
    y0 = torch.tensor(START, dtype=torch.float64).flatten()
    truth = field(torch.tensor(TRUE_MASSES, dtype=torch.float64))
    with torch.no_grad():
        solution = torchdiffeq.odeint(truth, y0, t, method="dopri8", rtol=1e-12, atol=1e-12)
    return y0, t, solution[:, :9]


class MassModel(nn.Module):
    """The physical model with its three masses as the only parameters."""

    def __init__(self, masses: torch.Tensor) -> None:
        super().__init__()
        self.field = field(masses)


def _versus(other: str, metric: Metric) -> Part:
    return Part(f"{metric.label} vs {other}", metric, treatment={"method": "aca"}, control={"method": other})


_MASS = Metric("parameter_error", "mass error")
_EXTRAPOLATION = Metric("heldout", "extrapolation error on (0, 2]")


class ThreeBodyMasses(Study):
    """Learn the three masses of a 3-D three-body system by fitting its trajectory, as published.

    Published setup (Zhuang et al. 2020, three-body experiment; the authors' code,
    juntang-zhuang/torch_ACA, three_body_problem.py): Newtonian gravity without softening in
    non-dimensional units (K1 = G t m / (r^2 v), K2 = v t / r of the code); true masses 1.1, 1.1,
    0.9; one trajectory from fixed initial positions and velocities, its positions observed at
    1000 times on [0, 1]; the masses, guessed uniformly in [0.9, 1.1], are the only parameters;
    loss ``sum_t 0.01^t |q(t) - q_true(t)|^2 / 1000``; dopri5 at rtol = atol = 1e-7 in float32;
    Adam, lr 0.1 multiplied by 0.95 before each of 100 full-batch steps, betas (0.5, 0.5). The
    code evaluates the fit by extrapolating to t = 2 on a half-step-shifted grid of 2000 points.
    Their claim: the masses and trajectories ACA recovers are closer to the truth than the
    adjoint's and naive backpropagation's.

    Here the same: float32 at rtol 1e-7, below float32's machine epsilon, runs as published
    (odebench warns, and the warning is in every record). The held-out metric is the code's
    extrapolation error (mean squared position error on (0, 2]), the parameter error the relative
    2-norm error of the masses. Measured on the shared 2-core machine (the claims suite, two
    workers): a median 0.9 s per iteration with naive, 0.6 s with ACA, 7.7 s with the adjoint
    (1000 backward intervals), 1.9 to 14 minutes a run with the checks.
    """

    name = "three_body_masses"
    description = (
        "learn 3 masses of a 3-D three-body system from 1000 points (float32, rtol 1e-7), mass error"
    )
    paper = (
        "Zhuang et al., Adaptive Checkpoint Adjoint Method for Gradient Estimation in Neural ODE, ICML 2020"
    )
    deviations = ("the data are solved by dopri8 at 1e-12 in float64 (published: scipy's LSODA at 1e-7)",)
    solver = "dopri5"
    rtol = 1e-7
    atol = 1e-7
    step_size = 1e-3
    dtype = "float32"
    iterations = 100
    #: A check costs about 7 s here: the float64 reference steps to each of the 1000 output times.
    eval_every = 25
    heldout_name = "extrapolation MSE on (0, 2]"
    target_loss = 1e-6
    claims = (
        Claim(
            sentence="ACA recovers the three-body masses, and the trajectory beyond the data, more "
            "accurately than the adjoint and naive backpropagation.",
            source=f"Zhuang et al. 2020, three-body experiment (section 4 and its figure); {AUTHORS_CODE}",
            published="ACA's masses and trajectories closest to the truth (per-method values shown "
            "only in a figure; the authors' committed ACA run: masses 1.09999, 1.10002, 0.89998)",
            parts=tuple(_versus(other, m) for m in (_MASS, _EXTRAPOLATION) for other in ("adjoint", "naive")),
            needs={
                "studies": ("three_body_masses",),
                "methods": ("naive", "adjoint", "aca"),
                "dtypes": ("float32",),
            },
            scope="on this setup",
        ),
    )

    def data(self, generator):
        y0, t, target = positions(POINTS, 1.0, shifted=False)
        heldout = positions(2 * POINTS, EXTRAPOLATION, shifted=True)
        return Data(batch=lambda iteration: (y0, t, target, WEIGHT_BASE**t), heldout=heldout)

    def model(self, generator):
        return MassModel(uniform(generator, (3,), GUESS_LOW, GUESS_HIGH))

    def optimizer(self, params):
        # The code multiplies the lr by 0.95 before every step: the first step takes 0.095.
        return torch.optim.Adam(params, lr=0.1 * 0.95, betas=(0.5, 0.5))

    def scheduler(self, optimizer):
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)

    def loss(self, model, solve, batch):
        y0, t, target, weight = batch
        error = (solve(model.field, y0, t)[:, :9] - target).pow(2).sum(-1)
        return (error * weight).sum() / len(t)

    def evaluate(self, model, solve, heldout):
        y0, t, target = heldout
        return (solve(model.field, y0, t)[1:, :9] - target[1:]).pow(2).sum(-1).mean().item()

    def parameter_error(self, model, setup):
        masses = model.field.masses.detach().to(dtype=torch.float64, device="cpu")
        truth = torch.tensor(TRUE_MASSES, dtype=torch.float64)
        return float((masses - truth).norm() / truth.norm())
