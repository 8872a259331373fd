"""The contract every training study fulfils (`Study.build -> Setup`).

A study is a task with training data and a held-out evaluation, a model, an optimiser with its
settings and a budget, reproducing a published experiment at a scale this machine runs. The
training loop (`odebench.training.run`) is the same for every study and every gradient method:
a study only says what one iteration's loss is and how the trained model is evaluated.

Everything random is drawn in float64 on the CPU from a local generator seeded with the run's
seed, so a run is reproducible and a float32 or GPU run trains the rounding of the same model
on the rounding of the same data.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

#: ``solve(field, y0, t) -> solution`` with shape ``(len(t), *y0.shape)``: the run's method and
#: solver, handed to the study's loss and evaluation.
Solve = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Setup:
    """One study built for one seed: model, data, optimiser.

    Attributes:
        model: every trained parameter; ``model.field`` is the vector field the loss solves
            with (the loop counts its evaluations).
        batch: the training data of iteration ``i`` (a tuple of tensors, deterministic in ``i``).
        heldout: the held-out data (a tuple of tensors).
        optimizer: makes the optimiser from the model's parameters.
        scheduler: makes a learning-rate schedule stepped once per iteration, or None.
    """

    model: nn.Module
    batch: Callable[[int], tuple]
    heldout: tuple
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Study(abc.ABC):
    """A published training experiment at a scale this machine runs.

    Subclasses set the class variables (the published solver, tolerances or step, budget and
    target, with the paper and its figures in the docstring) and implement `build`, `loss` and
    `evaluate`; `parameter_error` where the study has ground-truth parameters.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    paper: ClassVar[str]
    #: The published claim this study checks, with the published figure.
    claim: ClassVar[str]
    solver: ClassVar[str] = "dopri5"
    rtol: ClassVar[float] = 1e-3
    atol: ClassVar[float] = 1e-5
    step_size: ClassVar[float] = 0.05
    iterations: ClassVar[int]
    #: Iterations between checks of the held-out metric and the gradient's error.
    eval_every: ClassVar[int]
    #: The held-out metric's name (lower is better) and the training-loss target.
    heldout_name: ClassVar[str]
    target_loss: ClassVar[float]
    #: Iterations the final loss and the target test average over (minibatch noise).
    smooth: ClassVar[int] = 1
    #: rtol = atol of the float64 dopri8 reference gradient checked during training.
    reference_tolerance: ClassVar[float] = 1e-10
    #: Options the published setup gives an adaptive solver (e.g. its first step), passed to every
    #: method's solve in torchdiffeq's names.
    solver_options: ClassVar[dict] = {}

    @abc.abstractmethod
    def build(self, generator: torch.Generator) -> Setup:
        """The model, data and optimiser for one seed, float64 on the CPU."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, solve: Solve, batch: tuple) -> torch.Tensor:
        """The training loss of one batch (a scalar with a graph to the model's parameters)."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module, solve: Solve, heldout: tuple) -> float:
        """The held-out metric of the current model (no gradients are taken)."""

    def parameter_error(self, model: nn.Module, setup: Setup) -> float | None:
        """Relative error of learnt physical parameters against the truth, where there is one."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def iteration_generator(seed: int, iteration: int) -> torch.Generator:
    """The CPU generator of one iteration's random draws (a minibatch), deterministic in both.

    `seed` is a study's data seed (drawn from the run's generator in `Study.build`, below 2**31);
    iterations below 2**20 never share a stream.
    """
    return torch.Generator(device="cpu").manual_seed(seed * 2**20 + iteration)


def cast(data: Any, dtype: torch.dtype, device: torch.device | str) -> Any:
    """`data` (tensors, or tuples, lists and dicts of them) on `device`, floating ones in `dtype`."""
    if isinstance(data, torch.Tensor):
        return data.to(device=device, dtype=dtype if data.is_floating_point() else data.dtype)
    if isinstance(data, (tuple, list)):
        return type(data)(cast(x, dtype, device) for x in data)
    if isinstance(data, Mapping):
        return {k: cast(v, dtype, device) for k, v in data.items()}
    return data
