"""The contract every task fulfils (`Task.build -> Problem`) and the losses tasks share."""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from odebench.errors import InvalidInputError

Gradient = tuple[torch.Tensor, dict[str, torch.Tensor]]
Array = TypeVar("Array", np.ndarray, torch.Tensor)
ExactGradient = Callable[[], Gradient]


@dataclass(frozen=True, eq=False)
class Problem:
    """One concrete differentiation problem: ``L(y(t))`` with ``dy/dt = func(t, y)``, ``y(t[0]) = y0``.

    Attributes:
        func: the vector field ``func(t, y)``; its parameters are what is differentiated.
        y0: initial state (batched where the task is), ``requires_grad`` False.
        t: output times, strictly increasing, same dtype and device as `y0`.
        loss: maps the solution, shape ``(len(t), *y0.shape)``, to a scalar.
        step_size: a sensible default step for fixed-step solvers.
        exact_gradient: returns ``(dL/dy0, {name: dL/dparam})`` of this problem (its values as
            cast, the arithmetic in float64 on the CPU), parameters in ``func.named_parameters()``
            order; set by `Task.build` from `Task._exact_gradient`, None when no closed form exists.
        exact_gradient_error: relative 2-norm error bound of `exact_gradient` (its float64
            round-off); None when unknown.
    """

    func: nn.Module
    y0: torch.Tensor
    t: torch.Tensor
    loss: Callable[[torch.Tensor], torch.Tensor]
    step_size: float
    exact_gradient: ExactGradient | None = None
    exact_gradient_error: float | None = None

    @property
    def n_params(self) -> int:
        """Number of scalar parameters of `func`."""
        return sum(p.numel() for p in self.func.parameters())

    @property
    def state_size(self) -> int:
        """Number of scalars in the (batched) state."""
        return self.y0.numel()


class Task(abc.ABC):
    """A family of problems indexed by one size knob; `build` makes one of them.

    Subclasses set the class variables and implement `_build`, which returns the problem in
    float64 on the CPU; `build` casts it once, so a float32 or GPU problem is the rounding of the
    float64 CPU one. Building is cheap, deterministic and leaves the global random state alone:
    everything random is drawn from a local generator seeded with `seed`. A task with a closed-form
    gradient also implements `_exact_gradient`.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    paper: ClassVar[str]
    probes: ClassVar[str]
    size_knob: ClassVar[str]
    default_size: ClassVar[int]
    sizes: ClassVar[tuple[int, ...]]
    #: ``_exact_gradient(problem)``: the problem's gradient in float64 on the CPU; None where no
    #: closed form exists.
    _exact_gradient: ClassVar[Callable[[Problem], Gradient] | None] = None
    #: What records call a reference taken from `_exact_gradient` (``reference_kind``): a closed
    #: form ("analytic"), or a gradient the user passed ("user", `odebench.usermodel.UserTask`).
    exact_gradient_kind: ClassVar[str] = "analytic"
    #: Sizes above this are referenced at rtol = atol = 1e-14 rather than 1e-12: where the
    #: sensitivity grows with the size (chaos, close encounters), so does the reference's error;
    #: such a task's docstring gives the estimates measured at both tolerances.
    tight_reference_above: ClassVar[float] = math.inf

    def build(
        self,
        size: int | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> Problem:
        """Make the problem of the given size (None: `default_size`) in `dtype` on `device`.

        The float64 CPU problem of `_build` is cast here: the field (its parameters and
        buffers), ``y0``, ``t`` and a loss that is an `nn.Module` (its floating buffers). Its exact
        gradient, where the task has one, is bound to the cast problem: computed in float64 from
        the rounded values.
        """
        size = self.default_size if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidInputError(
                f"{self.name}: size ({self.size_knob}) must be a positive int, got {size!r}"
            )
        if not dtype.is_floating_point:
            raise InvalidInputError(f"{self.name}: dtype must be floating point, got {dtype}")
        generator = torch.Generator(device="cpu").manual_seed(seed)
        problem = self._build(size, generator)
        cast = dict(dtype=dtype, device=torch.device(device))
        loss = problem.loss.to(**cast) if isinstance(problem.loss, nn.Module) else problem.loss
        problem = dataclasses.replace(
            problem, func=problem.func.to(**cast), y0=problem.y0.to(**cast), t=problem.t.to(**cast), loss=loss
        )
        if self._exact_gradient is None:
            return problem
        return dataclasses.replace(problem, exact_gradient=functools.partial(self._exact_gradient, problem))

    @abc.abstractmethod
    def _build(self, size: int, generator: torch.Generator) -> Problem:
        """The problem of this size in float64 on the CPU, its random draws from `generator`."""

    def reference_tolerance(self, size: int) -> float:
        """rtol = atol of the float64 dopri8 reference solve at this size (`tight_reference_above`)."""
        return 1e-14 if size > self.tight_reference_above else 1e-12

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, {self.size_knob}={self.default_size})"


def uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    """Float64 CPU uniform draws on ``[low, high)`` from `generator`."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def normal(generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Float64 CPU standard normal draws from `generator`."""
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def stack_last(parts: list[Array]) -> Array:
    """Stack NumPy arrays or torch tensors along a new last axis.

    A field written with it serves both as a task's learnable torch model and on the NumPy
    state of its data solve (`rk4`): one definition of the dynamics, not two.
    """
    if isinstance(parts[0], torch.Tensor):
        return torch.stack(parts, dim=-1)
    return np.stack(parts, axis=-1)


def rk4(
    field: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float, steps: int, every: int
) -> np.ndarray:
    """Classical RK4 for a task's data: `steps` steps of `h` from `x`, the states after every `every`.

    In NumPy: a small state solved over thousands of steps is dominated by per-operation
    overhead, which NumPy keeps far below torch's.
    """
    out = []
    for n in range(1, steps + 1):
        k1 = field(x)
        k2 = field(x + 0.5 * h * k1)
        k3 = field(x + 0.5 * h * k2)
        k4 = field(x + h * k3)
        x = x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        if n % every == 0:
            out.append(x)
    return np.stack(out)


class WeightedSum(nn.Module):
    """``L = sum_i <w_i, y(t_i)>``: weights of the solution's shape (or broadcastable to it)."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        return (solution * self.weights).sum()


class TrajectoryMSE(nn.Module):
    """Mean squared error between the solution at ``t[1:]`` and a fixed target of that shape.

    A zero target makes it the mean squared state along the trajectory.
    """

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target)

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        return (solution[1:] - self.target).pow(2).mean()


class FinalStateEnergy(nn.Module):
    """``L = mean over the batch of |y(T)|^2 / (2 * scale^2)``: the final state only."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        return solution[-1].pow(2).sum(-1).mean() / (2 * self.scale**2)
