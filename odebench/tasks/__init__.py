"""Tasks: the registry and the built-in problems.

``names()`` lists the tasks, ``get(name)`` returns one (a `Task` instance), ``register(name)``
decorates a `Task` subclass in a file of your own to add it (the class is instantiated with no
arguments). ``get(name).build(size, dtype=..., device=..., seed=...)`` returns a `Problem`.
"""

from __future__ import annotations

from odebench.registry import Registry
from odebench.tasks.base import Problem, Task
from odebench.tasks.cnf2d import CNF2D
from odebench.tasks.digits_odenet import DigitsODENet
from odebench.tasks.harmonic_oscillator import HarmonicOscillatorANODE, HarmonicOscillatorSONODE
from odebench.tasks.latent_ode_spiral import LatentODESpiral
from odebench.tasks.linear import Linear
from odebench.tasks.lorenz63 import Lorenz63
from odebench.tasks.lorenz63_fit import Lorenz63Fit
from odebench.tasks.lotka_volterra import LotkaVolterra
from odebench.tasks.mlp import MLPTask
from odebench.tasks.spiral import Spiral
from odebench.tasks.three_body import ThreeBody
from odebench.tasks.van_der_pol_stiff import VanDerPolStiff

registry: Registry[Task] = Registry("task")
for _task in (
    Linear(),
    Spiral(),
    LotkaVolterra(),
    Lorenz63(),
    MLPTask(),
    HarmonicOscillatorSONODE(),
    HarmonicOscillatorANODE(),
    ThreeBody(),
    Lorenz63Fit(),
    VanDerPolStiff(),
    CNF2D(),
    DigitsODENet(),
    LatentODESpiral(),
):
    registry.register(_task.name, _task)

names = registry.names
get = registry.get
register = registry.register

__all__ = ["Problem", "Task", "get", "names", "register", "registry"]
