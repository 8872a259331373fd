"""The contract every gradient method fulfils, and the input checks they all share."""

from __future__ import annotations

import abc
import contextlib
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from odebench import solvers
from odebench.claims import Claim
from odebench.errors import InvalidInputError, ToleranceWarning, UnsupportedError


@dataclass(frozen=True)
class Capabilities:
    """What a method declares about itself; tests and reports read these, never its name.

    Attributes:
        exact_discrete_gradient: the gradient equals autograd through the forward solver's
            own steps (to round-off), so its error is the discretisation error alone.
        adaptive: adaptive-step solvers are supported.
        fixed_step: fixed-step solvers are supported.
        multiple_output_times: the loss may use the solution at several times.
        time_gradient: gradients with respect to the output times ``t`` are computed.
        backend: the library that does the differentiating.
        paper: the paper the method comes from.
        torchdiffeq_grid: the forward solve takes the accepted steps of torchdiffeq's solver of
            the same name, so the discrete-exact gradient on that grid can be computed.
        memory_in_steps: how peak memory grows with the number of steps N: ``"linear"`` (a graph
            or a state per step) or ``"flat"`` (independent of N: a fixed number of states).
        cost_per_input: the backward pass costs one solve per input entry (``y0`` and the
            parameters), as forward mode does, rather than one backward sweep.
        compiles: the first solve of a field compiles (``torch.compile``): the harness runs one
            forward and backward before the counted run and records it as the compile time.
        framework: where the solve runs: ``"torch"`` (``odeint`` returns a torch solution that
            ``backward()`` differentiates) or ``"jax"`` (the method compiles a JAX program of the
            whole gradient, `odebench.jax.program`; ``odeint`` refuses).
    """

    exact_discrete_gradient: bool
    adaptive: bool
    fixed_step: bool
    multiple_output_times: bool
    time_gradient: bool
    backend: str
    paper: str
    torchdiffeq_grid: bool = False
    memory_in_steps: str = "linear"
    cost_per_input: bool = False
    compiles: bool = False
    framework: str = "torch"

    def __post_init__(self) -> None:
        if self.memory_in_steps not in MEMORY_IN_STEPS:
            raise ValueError(f"memory_in_steps must be one of {', '.join(MEMORY_IN_STEPS)}")
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}")


#: The values of `Capabilities.memory_in_steps`.
MEMORY_IN_STEPS = ("linear", "flat")
#: The values of `Capabilities.framework`.
FRAMEWORKS = ("torch", "jax")


@dataclass(frozen=True)
class MethodOption:
    """A method's one tunable setting, written after its name: ``checkpointed:8``.

    ``name`` says what the integer means (e.g. "checkpoints"); values below ``minimum`` are
    refused. The registered method runs with ``default``.
    """

    name: str
    default: int
    minimum: int = 1


class GradientMethod(abc.ABC):
    """A way of differentiating through an ODE solve.

    Subclasses set `capabilities` and implement `_odeint`; `odeint` validates the input once for
    all of them, so every method refuses the same bad input with the same one-line message.
    """

    capabilities: ClassVar[Capabilities]
    description: ClassVar[str] = ""
    #: What the method's paper claims about its gradients (`odebench.claims.Claim`, read on
    #: gradient cases by the report's one evaluator).
    claims: tuple[Claim, ...] = ()
    #: The setting a suite or the command line may give as ``name:value`` (None: none).
    option: ClassVar[MethodOption | None] = None

    def with_option(self, value: int) -> GradientMethod:
        """This method with its `option` set to `value` (methods with an option override this)."""
        raise UnsupportedError(f"{type(self).__name__} takes no option")

    @property
    def backend_version(self) -> str:
        """Version of the backend package doing the work."""
        from importlib.metadata import version

        return version(self.capabilities.backend)

    def supports(self, solver: str) -> bool:
        """Whether `solver` (a registered name) can be used with this method."""
        spec = solvers.get(solver)
        return self.capabilities.adaptive if spec.adaptive else self.capabilities.fixed_step

    def solvers(self) -> list[str]:
        """The registered solvers this method supports."""
        return [name for name in solvers.names() if self.supports(name)]

    def odeint(
        self,
        func: nn.Module,
        y0: torch.Tensor,
        t: torch.Tensor,
        *,
        solver: str = "dopri5",
        rtol: float | None = None,
        atol: float | None = None,
        options: Mapping[str, Any] | None = None,
        **unknown: Any,
    ) -> torch.Tensor:
        """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0``; return y at every time in `t`.

        The result has shape ``(len(t), *y0.shape)`` and `loss.backward()` on anything computed
        from it differentiates with respect to `y0` and `func`'s parameters by this method.
        Tolerances left as None take the defaults of `y0`'s dtype
        (`odebench.solvers.default_tolerances`: 1e-6/1e-8 in float64, 1e-4/1e-6 in float32).
        The solver is `solver` (torchdiffeq's ``method=``); another keyword is refused in one line.
        """
        if unknown:
            _refuse_keywords(unknown)
        if (rtol is None or atol is None) and isinstance(y0, torch.Tensor) and y0.is_floating_point():
            default_rtol, default_atol = solvers.default_tolerances(y0.dtype)
            rtol = default_rtol if rtol is None else rtol
            atol = default_atol if atol is None else atol
        validate(self, func, y0, t, solver, rtol, atol)
        return self._odeint(func, y0, t, solver=solver, rtol=rtol, atol=atol, options=options)

    @abc.abstractmethod
    def _odeint(self, func, y0, t, *, solver, rtol, atol, options) -> torch.Tensor: ...

    def discrete_solve(self, func, y0, t, *, solver, rtol, atol, options) -> torch.Tensor | None:
        """The same discrete solve as `odeint`, differentiated by plain autograd through every
        step: the reference a discrete-exact method must reproduce (None: no such solve).

        Methods on torchdiffeq's grid (`Capabilities.torchdiffeq_grid`) replay the native
        integrator's accepted steps; a method with its own discretisation (a reversible or
        leapfrog scheme) overrides this with its own forward steps under autograd.
        """
        if not self.capabilities.torchdiffeq_grid:
            return None
        from odebench.solvers.runge_kutta import integrate, replay

        with torch.no_grad():
            _, trajectory = integrate(func, y0, t, solvers.get(solver), rtol, atol, options)
        return replay(func, y0, trajectory)


#: The keywords `GradientMethod.odeint` takes after ``func, y0, t``.
ODEINT_KEYWORDS = ("solver", "rtol", "atol", "options")


def _refuse_keywords(unknown: Mapping[str, Any]) -> None:
    """One line for keywords `GradientMethod.odeint` does not take (torchdiffeq's ``method=``)."""
    valid = f"valid keywords: {', '.join(ODEINT_KEYWORDS)}"
    if "method" in unknown:
        raise InvalidInputError(
            f"odebench calls the solver solver=, not method= (torchdiffeq's spelling): pass "
            f"solver={unknown['method']!r}; {valid}"
        )
    raise InvalidInputError(f"odeint() got unexpected keyword(s) {', '.join(sorted(unknown))}; {valid}")


@contextlib.contextmanager
def quiet_fixed_step_callbacks():
    """Silence torchdiffeq's warning that fixed-step solvers ignore ``callback_reject_step``:
    fixed steps are never rejected, so the counting wrapper loses nothing. (The adjoint's
    backward solve warns again, so `run_case` holds this for the whole case.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Solver '.*' does not support callbacks")
        yield


def check_problem(func, y0, t, *, min_times: int = 1, times_as_y0: bool = True) -> None:
    """Refuse, in one line, a problem no solve could take: ``func`` not a module, ``y0`` or ``t``
    not floating-point tensors, ``t`` not one-dimensional and strictly increasing with at least
    `min_times` times, a parameter (and, with `times_as_y0`, ``t``) of another dtype or device
    than ``y0``."""
    if not isinstance(func, nn.Module):
        raise InvalidInputError(
            f"func must be a torch.nn.Module computing func(t, y), got {summary_of(func)}"
        )
    for name, x in (("y0", y0), ("t", t)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise InvalidInputError(f"{name} must be a floating-point tensor, got {summary_of(x)}")

    def bad_times() -> InvalidInputError:  # built only when refusing: this runs on every solve
        need = f"one-dimensional, strictly increasing, with at least {min_times} time(s)"
        return InvalidInputError(f"t must be {need}; got {summary_of(t)}")

    if t.ndim != 1 or len(t) < min_times:
        raise bad_times()
    tensors = [("t", t)] * times_as_y0 + [(f"parameter {n}", p) for n, p in func.named_parameters()]
    for name, x in tensors:
        if x.dtype != y0.dtype:
            raise InvalidInputError(f"{name} has dtype {x.dtype} but y0 has {y0.dtype}")
        if x.device != y0.device:
            raise InvalidInputError(f"{name} is on device {x.device} but y0 is on {y0.device}")
    if t.device.type == "meta" or not bool((t[1:] > t[:-1]).all()):
        raise bad_times()


def summary_of(x) -> str:
    """How a refusal names a value it got: a tensor's dtype and shape, else its type."""
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def validate(method: GradientMethod, func, y0, t, solver: str, rtol, atol) -> None:
    """Refuse input no method can honour, with a one-line reason."""
    check_problem(func, y0, t)
    if len(t) > 2 and not method.capabilities.multiple_output_times:
        raise UnsupportedError(f"{type(method).__name__} supports only t = [t0, t1]")
    if t.requires_grad and not method.capabilities.time_gradient:
        raise UnsupportedError(
            f"{type(method).__name__} does not compute gradients with respect to t; detach t"
        )
    spec = solvers.get(solver)
    if not method.supports(solver):
        valid = ", ".join(method.solvers())
        raise UnsupportedError(f"solver {solver!r} is not supported by this method; valid: {valid}")
    if spec.adaptive:
        check_tolerances(rtol, atol)
        problem = solvers.tolerance_problem(rtol, y0.dtype)
        if problem is not None:
            warnings.warn(problem, ToleranceWarning, stacklevel=3)


def check_tolerances(rtol: float, atol: float) -> None:
    """Tolerances must be finite and non-negative, and not both zero (torchdiffeq's rule: an
    absolute tolerance alone is ``rtol = 0``). One finer than the dtype resolves is not refused:
    `validate` warns, and the solve shows what the solver does with it."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")
    if rtol == 0 and atol == 0:
        raise InvalidInputError("rtol and atol are both 0: no step can meet that; give one of them > 0")
