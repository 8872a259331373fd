"""A Neural ODE (MLP field) fitted to Lorenz-63 trajectories over growing horizons."""

from __future__ import annotations

import functools

import numpy as np
import torch

from odebench.models.mlp import MLP
from odebench.models.readout import fit_readout
from odebench.tasks.base import Problem, Task, TrajectoryMSE, normal, rk4
from odebench.tasks.lorenz63 import ATTRACTOR_POINT, lorenz63

#: Coordinates are normalised as ``u = (x - CENTRE) / SCALE`` (the attractor's mean and spread).
CENTRE = (0.0, 0.0, 23.5)
SCALE = (8.0, 9.0, 8.5)
#: Trajectories in the batch, hidden width, output spacing.
BATCH, WIDTH, DT_OUT = 4, 64, 0.05
#: The read-out is fitted on this many points of a long trajectory, with this ridge.
FIT_SAMPLES, FIT_RIDGE = 2000, 1e-6


@functools.lru_cache(maxsize=1)
def attractor_samples() -> torch.Tensor:
    """``FIT_SAMPLES`` points on the attractor (every 0.02 after a transient), float64."""
    x = np.asarray(ATTRACTOR_POINT, dtype=np.float64)
    path = rk4(lorenz63, x, 0.01, 2 * (FIT_SAMPLES + 100), 2)[100:]
    return torch.from_numpy(path)


@functools.lru_cache(maxsize=32)
def _target(horizon: int, y0: tuple[float, ...]) -> torch.Tensor:
    """Normalised Lorenz-63 trajectories at ``t[1:]``: float64 RK4 with 20 steps per output."""
    x0 = np.asarray(y0, dtype=np.float64).reshape(-1, 3) * SCALE + CENTRE
    steps = round(horizon / DT_OUT) * 20
    path = rk4(lorenz63, x0, DT_OUT / 20, steps, 20)
    return torch.from_numpy((path - np.asarray(CENTRE)) / np.asarray(SCALE))


class Lorenz63Fit(Task):
    """An MLP Neural ODE (3 -> 64 -> 64 -> 3, tanh) fitted to Lorenz-63 over a horizon ``T``.

    The field works in normalised coordinates ``u = (x - c) / s``. Its hidden layers keep their
    random fan-in initialisation and its read-out is fitted by ridge regression to the true
    normalised Lorenz field on 2000 points of the attractor (`odebench.models.fit_readout`,
    about 2 % relative RMS error): a field partway through training whose flow is chaotic like the
    data's, as in the experiments this task reproduces, rather than a fresh one whose flow is
    nothing like it. ``y0``: 4 points of the attractor (its samples, picked by the seed, plus
    N(0, 0.01) noise); the target is the true Lorenz-63 solution from the same points (RK4 with
    step 0.0025, data: only its determinism matters) every 0.05 up to ``T``; the loss is the
    mean squared error.

    Probes: adaptive solvers and the adjoint on a learnt chaotic field: the steps the solver
    chooses, the error of the backward reconstruction and of the gradient all grow with the
    horizon (the Lyapunov exponent is about 0.9). References are solved at 1e-14 beyond T = 2,
    where chaos amplifies the solver's error. Measured (seed 0, error estimate = difference to
    the 100x looser solve): at 1e-12, T = 1, 2, 4, 8 give 1.6e-10, 9.7e-10, 4.2e-9, 7.3e-7; at
    1e-14, T = 4 and 8 give 4.3e-11 and 5.1e-9, for about 3x the cost (about 30 s at T = 8 on
    one core).
    """

    name = "lorenz63_fit"
    description = "MLP Neural ODE (read-out fitted to Lorenz-63), MSE to Lorenz-63 trajectories"
    paper = (
        "Allauzen, Petrilli Maffei Dardis & Plath, Experimental study of Neural ODE training with "
        "adaptive solver for dynamical systems modeling, DLDE workshop, NeurIPS 2022 (arXiv:2211.06972)"
    )
    probes = "learnt chaotic field: steps, backward reconstruction and gradient error grow with T"
    size_knob = "horizon T"
    default_size = 1
    sizes = (1, 2, 4, 8)
    tight_reference_above = 2

    def _build(self, size, generator):
        func = MLP(3, WIDTH, depth=2, generator=generator)
        samples = attractor_samples()
        normalised = (samples - torch.tensor(CENTRE)) / torch.tensor(SCALE, dtype=torch.float64)
        velocity = lorenz63(samples) / torch.tensor(SCALE, dtype=torch.float64)
        fit_readout(func.layers, normalised, velocity, FIT_RIDGE)
        pick = torch.randperm(len(samples), generator=generator)[:BATCH]
        y0 = normalised[pick] + 0.01 * normal(generator, (BATCH, 3))
        n = round(size / DT_OUT)
        t = torch.linspace(0.0, float(size), n + 1, dtype=torch.float64)
        target = _target(size, tuple(y0.flatten().tolist())).clone()
        return Problem(func=func, y0=y0, t=t, loss=TrajectoryMSE(target), step_size=0.002)
