"""A Neural ODE proper: a tanh MLP field fitted to a target trajectory."""

from __future__ import annotations

import torch

from odebench.models.mlp import MLP
from odebench.tasks.base import Problem, Task, TrajectoryMSE, normal

#: The target dynamics ``dy/dt = B y``: a damped rotation (about 0.5 turn over the horizon).
TARGET_B = ((-0.1, -1.5), (1.5, -0.1))


class MLPTask(Task):
    """Neural ODE with an MLP field (2 hidden tanh layers of the given width, time as input).

    ``y0``: a batch of 16 standard normal points in 2-D; the target at ``t = 0.5, 1, 1.5, 2`` is
    their image under the damped rotation ``expm(B t)`` (closed form, no solve); the loss is the
    mean squared error. Parameters are freshly initialised (fan-in uniform from the seed), so
    the loss is far from its minimum and the gradient is dense.

    Probes: the many-parameter case: the cost of vector-Jacobian products and the memory of the
    graph grow with the width (16 to 256: about 400 to 67 000 parameters).
    """

    name = "mlp"
    description = "Neural ODE, tanh MLP field (width knob), batch 16 in 2-D, MSE to a target"
    paper = "Chen, Rubanova, Bettencourt & Duvenaud, Neural Ordinary Differential Equations, NeurIPS 2018"
    probes = "many parameters: VJP cost and graph memory grow with the width"
    size_knob = "width"
    default_size = 32
    sizes = (16, 32, 64, 128, 256)

    def _build(self, size, generator):
        func = MLP(2, size, depth=2, time_input=True, generator=generator)
        y0 = normal(generator, (16, 2))
        t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
        B = torch.tensor(TARGET_B, dtype=torch.float64)
        target = torch.stack([y0 @ torch.linalg.matrix_exp(B * ti).T for ti in t[1:]])
        return Problem(func=func, y0=y0, t=t, loss=TrajectoryMSE(target), step_size=0.05)
