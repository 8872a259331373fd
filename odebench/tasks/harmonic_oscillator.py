"""Damped harmonic oscillator fitted by a second-order (SONODE) or an augmented (ANODE) Neural ODE."""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

from odebench.models.augmented import OriginalDims, augment, augmented_mlp
from odebench.models.readout import fit_readout
from odebench.models.second_order import SecondOrderField
from odebench.tasks.base import Problem, Task, TrajectoryMSE, uniform

#: Natural frequency and damping ratio of the data: ``x'' + 2 zeta omega x' + omega^2 x = 0``.
OMEGA, ZETA = 1.0, 0.1
#: Trajectories in the batch, hidden width of the networks.
BATCH, WIDTH = 8, 32
#: Samples of the phase plane the read-out is fitted on, and its ridge (an imperfect fit).
FIT_SAMPLES, FIT_RIDGE = 512, 1e-3


def acceleration(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The data's acceleration ``-omega^2 x - 2 zeta omega v``."""
    return -(OMEGA**2) * x - 2 * ZETA * OMEGA * v


def damped_oscillator(x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Closed-form position ``x(t)`` released from rest at `x0`: shape ``(len(t), *x0.shape)``."""
    omega_d = OMEGA * math.sqrt(1 - ZETA**2)
    t = t.reshape(-1, *([1] * x0.ndim))
    phase = omega_d * t
    return x0 * torch.exp(-ZETA * OMEGA * t) * (torch.cos(phase) + ZETA * OMEGA / omega_d * torch.sin(phase))


class HarmonicOscillator(Task):
    """Damped oscillator trajectories; the two variants share data, state size and loss.

    Data: 8 one-dimensional oscillators ``x'' + 0.2 x' + x = 0`` released from rest at random
    ``x0`` in +-[0.5, 1.5], observed in closed form every quarter unit up to the horizon ``T``
    (one period is about 6.3). The state has two entries per trajectory, ``y0 = (x0, 0)``, and
    the loss is the mean squared error of the position (the first entry) alone. The variants
    differ only in the field, 2 hidden tanh layers of 32 in both, partly trained: random
    (fan-in) hidden layers and a read-out fitted by ridge regression to the data's dynamics on
    512 points of the box ``[-1.6, 1.6]^2`` (`odebench.models.fit_readout`, about 4 % error,
    so the flow oscillates like the data but the loss is not at its minimum):

    * ``harmonic_oscillator_sonode``: ``(x, v)' = (v, a(x, v))``, only the acceleration learnt
      (`odebench.models.SecondOrderField`), fitted to ``-x - 0.2 v``;
    * ``harmonic_oscillator_anode``: one zero-initialised augmented dimension ``a`` and a free
      MLP on ``(x, a)`` (`odebench.models.augment`, `odebench.models.OriginalDims`), fitted to
      ``(a, -x - 0.2 a)``: the augmented entry plays the velocity, ``x' = a`` only approximately.

    References: float64 dopri8 at 1e-12, error estimates about 7e-12 at T = 5 and 10 for both
    variants; at T = 20 and 40 the SONODE's is 2e-9 and 4e-9 (the 1e-12 solve's gradient
    through torchdiffeq's step-size choice, which backpropagation includes, is off by that
    much; the 1e-10 and 1e-13 solves agree to 1e-11), the ANODE's stays below 1e-11.

    Probes: the structural prior of SONODE against the free augmented field (stiffness, NFE and
    gradient error of the same fit); oscillatory dynamics over growing horizons.
    """

    paper = (
        "Norcliffe, Bodnar, Day, Simidjievski & Liò, On Second Order Behaviour in Augmented Neural "
        "ODEs, NeurIPS 2020; Dupont, Doucet & Teh, Augmented Neural ODEs, NeurIPS 2019"
    )
    size_knob = "horizon T"
    default_size = 10
    sizes = (5, 10, 20, 40)

    @abc.abstractmethod
    def _field(self, generator: torch.Generator) -> nn.Module:
        """The variant's float64 CPU field, read-out fitted to the oscillator on a phase-plane box."""

    def _build(self, size, generator):
        sign = torch.where(torch.rand(BATCH, generator=generator, dtype=torch.float64) < 0.5, -1.0, 1.0)
        x0 = sign * uniform(generator, (BATCH,), 0.5, 1.5)
        t = torch.linspace(0.0, float(size), 4 * size + 1, dtype=torch.float64)
        target = damped_oscillator(x0.unsqueeze(-1), t[1:])
        y0 = augment(x0.unsqueeze(-1), 1)
        loss = OriginalDims(TrajectoryMSE(target), 1)
        return Problem(func=self._field(generator), y0=y0, t=t, loss=loss, step_size=0.05)


class HarmonicOscillatorSONODE(HarmonicOscillator):
    __doc__ = HarmonicOscillator.__doc__

    name = "harmonic_oscillator_sonode"
    description = "damped oscillator fitted by a second-order neural ODE (SONODE), MSE of the position"
    probes = "second-order structure x' = v built into the field; oscillation over growing horizons"

    def _field(self, generator):
        field = SecondOrderField(1, WIDTH, depth=2, generator=generator)
        xv = uniform(generator, (FIT_SAMPLES, 2), -1.6, 1.6)
        fit_readout(field.layers, xv, acceleration(xv[:, :1], xv[:, 1:]), FIT_RIDGE)
        return field


class HarmonicOscillatorANODE(HarmonicOscillator):
    __doc__ = HarmonicOscillator.__doc__

    name = "harmonic_oscillator_anode"
    description = (
        "damped oscillator fitted by an augmented neural ODE (ANODE, 1 extra dim), MSE of the position"
    )
    probes = "free MLP on a zero-augmented state (the SONODE paper's baseline); oscillation over horizons"

    def _field(self, generator):
        field = augmented_mlp(1, 1, WIDTH, depth=2, generator=generator)
        xa = uniform(generator, (FIT_SAMPLES, 2), -1.6, 1.6)
        target = torch.cat([xa[:, 1:], acceleration(xa[:, :1], xa[:, 1:])], dim=-1)
        fit_readout(field.layers, xa, target, FIT_RIDGE)
        return field
