"""The contract every training study fulfils (`Study.build -> Setup`).

A study is a published training experiment: data with a held-out evaluation, a model, an
optimiser with its settings and a budget, and the claims of its paper (`odebench.claims`). The
training loop (`odebench.jobs.training`) is the same for every study and every gradient method: a
study only says what one iteration's loss is and how the trained model is evaluated.

Data and model randomness are apart. A run's seed seeds the data generator alone (`data`: the
training set, its minibatch order, the held-out set); the model's initial weights come from a
second stream derived from the same seed (`model`). So two models, or two gradient methods, with
the same seed see exactly the same data, whatever their parameter counts. Everything random is
drawn in float64 on the CPU, so a float32 or GPU run trains the rounding of the same model on
the rounding of the same data.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
from torch import nn

from odebench.claims import Claim
from odebench.errors import InvalidInputError

#: ``solve(field, y0, t) -> solution`` with shape ``(len(t), *y0.shape)``: the run's method and
#: solver, handed to the study's loss and evaluation.
Solve = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
#: Offset of the model's random stream from the data's (seeds below 2**40 never share a stream).
MODEL_STREAM = 2**40


@dataclass
class Data:
    """A study's data for one data seed.

    Attributes:
        batch: the training data of iteration ``i`` (a tuple of tensors, deterministic in ``i``).
        heldout: the held-out data (a tuple of tensors).
    """

    batch: Callable[[int], tuple]
    heldout: tuple


@dataclass
class Setup:
    """One study built for one seed: model, data, optimiser, and the run's solver options.

    Attributes:
        model: every trained parameter; ``model.field`` is the vector field the loss solves
            with (the loop counts its evaluations).
        batch, heldout: the `Data` of the run's seed.
        optimizer: makes the optimiser from the model's parameters; it is stepped with a
            closure, so line-search optimisers (L-BFGS) evaluate the loss as often as they need.
        scheduler: makes a learning-rate schedule stepped once per iteration, or None.
        solver_options: options of every solve of the run, in torchdiffeq's names (a first
            step, an error norm).
        observe: called after each iteration's step, returns extra curve values of the study
            (e.g. the share of predictions its solver accepted in one step), or None.
        inspect: called at each check (every ``eval_every`` iterations and at the last), at the
            iteration's starting parameters as the gradient check is, outside training time:
            extra curve values that cost a solve of their own (a distance to a limit), or None.
    """

    model: nn.Module
    batch: Callable[[int], tuple]
    heldout: tuple
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None
    solver_options: dict[str, Any] = field(default_factory=dict)
    observe: Callable[[], dict[str, float]] | None = None
    inspect: Callable[[], dict[str, float]] | None = None


class Study(abc.ABC):
    """A published training experiment, run as published wherever this machine allows.

    Subclasses set the class variables (the published solver, tolerances or step, budget and
    target, the paper, the claims and every deviation from the published setup) and implement
    `data`, `model`, `optimizer`, `loss` and `evaluate`; `parameter_error` where the study has
    ground-truth parameters. The deviations are appended to the class docstring, and the report
    prints them beside each verdict.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    paper: ClassVar[str]
    #: The published claims this study tests (`odebench.claims.Claim`); the study's deviations
    #: are attached to them.
    claims: ClassVar[tuple[Claim, ...]] = ()
    #: How the setup run here differs from the published one, one item each.
    deviations: ClassVar[tuple[str, ...]] = ()
    solver: ClassVar[str] = "dopri5"
    rtol: ClassVar[float] = 1e-3
    atol: ClassVar[float] = 1e-5
    #: The published ``(rtol, atol)`` pairs the study can be run at (default: its own pair); a
    #: run given one tolerance takes the other from the pair that has it.
    tolerances: ClassVar[tuple[tuple[float, float], ...]] = ()
    step_size: ClassVar[float] = 0.05
    #: The dtype the paper trained in (the claims suite runs it).
    dtype: ClassVar[str] = "float64"
    iterations: ClassVar[int]
    #: Iterations between checks of the held-out metric and the gradient's error.
    eval_every: ClassVar[int]
    #: The held-out metric's name (lower is better) and the training-loss target.
    heldout_name: ClassVar[str]
    target_loss: ClassVar[float]
    #: Iterations the final loss and the target test average over (minibatch noise).
    smooth: ClassVar[int] = 1
    #: rtol = atol of the float64 dopri8 reference gradient checked during training; None: no
    #: gradient check (a study whose claim is not about the gradient and whose field makes the
    #: reference cost minutes).
    reference_tolerance: ClassVar[float | None] = 1e-10
    #: Options the published setup gives an adaptive solver (e.g. its first step), passed to every
    #: method's solve in torchdiffeq's names.
    solver_options: ClassVar[dict] = {}
    #: The model is a ResNet: one residual layer per fixed step on ``[0, 1]``, so a run's step
    #: ``1/N`` makes a depth-N network (`model` takes ``depth=N``).
    layer_per_step: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.deviations and cls.__doc__ and "Deviations from the published setup" not in cls.__doc__:
            items = "\n".join(f"    * {d}" for d in cls.deviations)
            cls.__doc__ = f"{cls.__doc__.rstrip()}\n\n    Deviations from the published setup:\n\n{items}\n"

    @property
    def published_tolerances(self) -> tuple[tuple[float, float], ...]:
        """The ``(rtol, atol)`` pairs the paper used, the study's default first."""
        pairs = ((self.rtol, self.atol), *self.tolerances)
        return tuple(dict.fromkeys(pairs))

    def claims_with_deviations(self) -> tuple[Claim, ...]:
        """The study's claims, each carrying the study's deviations."""
        return tuple(replace(c, deviations=(*self.deviations, *c.deviations)) for c in self.claims)

    @abc.abstractmethod
    def data(self, generator: torch.Generator) -> Data:
        """The training and held-out data of one data seed (`generator`), float64 on the CPU."""

    @abc.abstractmethod
    def model(self, generator: torch.Generator) -> nn.Module:
        """The model with its initial weights drawn from `generator`, float64 on the CPU; its
        vector field is ``model.field``."""

    @abc.abstractmethod
    def optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """The published optimiser over `params`."""

    def scheduler(self, optimizer: torch.optim.Optimizer) -> Any | None:
        """The published learning-rate schedule (stepped once per iteration), or None."""
        return None

    def setup(self, model: nn.Module, data: Data) -> Setup:
        """The run's `Setup`; a study with per-run solver instruments (a recording error norm)
        overrides this."""
        return Setup(
            model=model,
            batch=data.batch,
            heldout=data.heldout,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            solver_options=dict(self.solver_options),
        )

    def build(self, seed: int, *, model_seed: int | None = None, step_size: float | None = None) -> Setup:
        """Model, data and optimiser of one run: the data from `seed` alone, the model from its
        own stream (`model_seed`, default derived from `seed`); a `layer_per_step` study's model
        gets one layer per step of `step_size`."""
        data = self.data(torch.Generator(device="cpu").manual_seed(seed))
        model_seed = seed + MODEL_STREAM if model_seed is None else model_seed
        generator = torch.Generator(device="cpu").manual_seed(model_seed)
        if self.layer_per_step:
            model = self.model(generator, depth=layers_of(step_size))
        else:
            model = self.model(generator)
        return self.setup(model, data)

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


def layers_of(step_size: float | None) -> int:
    """The depth N of a ResNet that takes fixed steps of `step_size` = 1/N on ``[0, 1]``."""
    depth = round(1 / step_size) if step_size else 0
    if depth < 1 or not math.isclose(depth * step_size, 1.0, rel_tol=1e-9):
        raise InvalidInputError(
            f"a ResNet study's step must be 1/N for a whole depth N >= 1, got {step_size!r}"
        )
    return depth


def data_seed(generator: torch.Generator) -> int:
    """A seed for the data's own derived streams (minibatches), drawn from the data generator."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def iteration_generator(seed: int, iteration: int) -> torch.Generator:
    """The CPU generator of one iteration's random draws (a minibatch), deterministic in both.

    `seed` is drawn from the data generator (`data_seed`, below 2**31); iterations below 2**20
    never share a stream.
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
