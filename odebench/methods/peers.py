"""Peer implementations from other packages, registered as ``method@backend`` when installed.

TorchDiffEqPack (Zhuang et al.) ships the reference implementations of ACA and MALI. Its
memory-efficient entry points return the solution at ``t1`` only, keep times in float32 and
bring their own solvers, so the wrappers here do four things and nothing else:

* map an odebench solver name to the TorchDiffEqPack solver that runs (``solver_map``); a name
  with no TorchDiffEqPack counterpart is refused, never silently substituted;
* solve one segment ``[t_i, t_{i+1}]`` per output time, each a fresh TorchDiffEqPack solve from
  the previous segment's end state, so the loss may use several times (the step-size
  controller restarts at every output time, and its cost is counted);
* call the vector field with the time cast to the state's dtype (TorchDiffEqPack passes float32
  tensors or Python floats), and hand TorchDiffEqPack only the parameters that require grad;
* turn TorchDiffEqPack's silent jump to ``t1`` after ``neval_max`` steps into `MaxStepsExceeded`.

Known limits of TorchDiffEqPack 1.0.1, measured on torch 2.13 / numpy 2:

* Times are float32 throughout (``.float()`` on t0, t1 and every step point). The forward pass
  steps with float64 step sizes while the backward pass replays the float32 step points, so in
  float64 the gradient departs from the gradient of the returned solution by about 1e-7
  (relative), and float64 accuracy levels off there however tight the tolerance.
* ``regenerate_graph`` breaks ``odesolve_adjoint`` (the option is passed twice); it is never set.
* ``odesolve_adjoint`` with a fixed-step solver (euler, rk2, rk4) fails in the backward pass
  (``list(None)`` on the missing error estimate), so ACA is offered with adaptive solvers only.
* The ``safety`` option is accepted and ignored by the step-size controller; it is not offered.
* The adaptive forward pass evaluates every accepted step twice (the accepted trial, then the
  step itself), so its NFE is about twice that of torchdiffeq on the same grid.

References: Zhuang, Dvornek, Li, Tatikonda, Papademetris & Duncan, "Adaptive Checkpoint Adjoint
Method for Gradient Estimation in Neural ODE", ICML 2020; Zhuang, Dvornek, Tatikonda & Duncan,
"MALI: A memory efficient and reverse accurate integrator for Neural ODEs", ICLR 2021.
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from odebench import solvers
from odebench.errors import MaxStepsExceeded, UnsupportedError
from odebench.methods.base import Capabilities, GradientMethod
from odebench.methods.peer_backend import TrainableParameters, register_peers
from odebench.solvers.runge_kutta import refuse_bad_options

BACKEND = "TorchDiffEqPack"  # the PyPI distribution name, so `backend_version` finds it
ADAPTIVE_OPTIONS = frozenset({"first_step", "max_num_steps"})
FIXED_OPTIONS = frozenset({"step_size"})
_ENTRY_POINTS = ("odesolve_adjoint", "odesolve_adjoint_sym12")
_UNLIMITED = 2**31 - 1


class _Field(TrainableParameters):
    """``func(t, y)`` as TorchDiffEqPack calls it: time cast to the state's dtype and device.

    TorchDiffEqPack differentiates every tensor ``parameters()`` yields, hence only the trainable
    ones (`TrainableParameters`). ``shape`` restores a 0-d state that is solved as shape ``(1,)``.
    """

    def __init__(self, func: nn.Module, shape: torch.Size | None = None) -> None:
        super().__init__(func)
        self.shape = shape

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        if torch.is_tensor(t):
            t = t.to(dtype=y.dtype, device=y.device)
        else:
            t = torch.tensor(float(t), dtype=y.dtype, device=y.device)
        if self.shape is None:
            return self.func(t, y)
        return self.func(t, y.reshape(self.shape)).reshape(y.shape)


class TorchDiffEqPackMethod(GradientMethod):
    """Common driver of the TorchDiffEqPack peers; subclasses name the entry point and solvers.

    ``solver_map`` maps each accepted odebench solver name to the TorchDiffEqPack ``method``
    that runs. Options: ``first_step`` (TorchDiffEqPack's ``h``; default: its own initial step
    selection) and ``max_num_steps`` (its ``neval_max``, which counts accepted steps) for
    adaptive solvers; ``step_size`` for fixed-step ones, which must divide every interval
    between output times (TorchDiffEqPack's fixed grid is uniform; without it, one step per
    interval, as odebench integrates on the output grid).
    """

    solver_map: ClassVar[Mapping[str, str]]

    def supports(self, solver: str) -> bool:
        solvers.get(solver)  # an unknown name is answered with the valid ones
        return solver in self.solver_map

    @abc.abstractmethod
    def _solve(self, field: _Field, y: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
        """One TorchDiffEqPack solve from ``options["t0"]`` to ``options["t1"]``."""

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        spec = solvers.get(solver)
        options = _check_options(spec, options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        times = [float(x) for x in t.detach().cpu().tolist()]
        if len(set(torch.tensor(times, dtype=torch.float32).tolist())) < len(times):
            raise UnsupportedError(
                "TorchDiffEqPack keeps times in float32, which does not separate these output times"
            )
        field = _Field(func, y0.shape if y0.ndim == 0 else None)
        y = y0.reshape(1) if y0.ndim == 0 else y0
        max_steps = int(options.get("max_num_steps", _UNLIMITED))
        outputs = [y]
        for a, b in itertools.pairwise(times):
            segment = {"method": self.solver_map[solver], "t0": a, "t1": b, "print_neval": False}
            if spec.adaptive:
                segment.update(rtol=rtol, atol=atol, h=options.get("first_step"), neval_max=max_steps)
            else:
                segment["h"] = (b - a) / _steps_per_interval(a, b, options.get("step_size"))
            y = self._solve(field, y, segment)
            _check_step_budget(y, max_steps, a, b)
            outputs.append(y)
        return torch.stack(outputs).reshape(len(t), *y0.shape)


class ACAPeer(TorchDiffEqPackMethod):
    """TorchDiffEqPack's Adaptive Checkpoint Adjoint (``odesolve_adjoint``).

    Forward: solve without a graph, keeping the accepted step times only. Backward: re-solve
    from ``y0`` on those times without a graph to recover each step's start state, then
    backpropagate through one step at a time, last first, plus one evaluation at ``t1`` for
    the (unused) end-time gradient. Its solvers take the same tableaux as odebench's but
    evaluate every stage afresh (no first-same-as-last reuse) and use scipy's step-size
    controller, so the grids and NFE differ from the native ACA.

    Solvers: ``adaptive_heun`` runs ``rk12`` (Heun-Euler 2(1)), ``bosh3`` runs ``rk23``
    (Bogacki-Shampine 3(2)), ``dopri5`` runs ``dopri5``. Fixed-step solvers are not offered:
    their backward pass fails in TorchDiffEqPack 1.0.1 (its ``rk4`` is also the classical
    scheme, not odebench's 3/8 rule). Not discrete-exact in float64: see the module notes.

    Reference: Zhuang et al., "Adaptive Checkpoint Adjoint Method for Gradient Estimation in
    Neural ODE", ICML 2020.
    """

    description = "adaptive checkpoint adjoint (TorchDiffEqPack odesolve_adjoint)"
    capabilities = Capabilities(
        exact_discrete_gradient=False,
        adaptive=True,
        fixed_step=False,
        multiple_output_times=True,
        time_gradient=False,
        backend=BACKEND,
        paper=(
            "Zhuang et al., Adaptive Checkpoint Adjoint Method for Gradient Estimation in Neural ODE, "
            "ICML 2020"
        ),
    )
    solver_map: ClassVar[Mapping[str, str]] = {"adaptive_heun": "rk12", "bosh3": "rk23", "dopri5": "dopri5"}

    def _solve(self, field, y, options):
        from TorchDiffEqPack import odesolve_adjoint

        return odesolve_adjoint(field, y, options=options)


class MALIPeer(TorchDiffEqPackMethod):
    """TorchDiffEqPack's MALI: the asynchronous leapfrog (ALF) integrator, run in reverse.

    ALF carries ``(y, v)`` with ``v0 = f(t0, y0)``; a step of size ``h`` is
    ``y_half = y + h/2 v``, ``u = f(t + h/2, y_half)``, ``v' = 2u - v``, ``y' = y_half + h/2 v'``:
    second order, one evaluation per step, and algebraically invertible. Forward: solve without
    a graph, keeping the step times and the end state. Backward: per step, last first, rebuild
    the start state by inverting ALF (one evaluation), then backpropagate through the step (one
    evaluation and one VJP). Memory is constant in the number of steps.

    ALF is none of odebench's Runge-Kutta schemes, so the solver names stand for ALF of the same
    order: ``midpoint`` runs ``fixedstep_sym12async`` (ALF on a uniform grid; its first step is
    the explicit midpoint step) and ``adaptive_heun`` runs ``sym12async`` (ALF with a
    ``h (u - v)`` error estimate and an order-1 controller, a 2(1) pair like Heun-Euler).
    Discrete-exact on a fixed grid; not in float64 with adaptive steps (module notes).

    Reference: Zhuang, Dvornek, Tatikonda & Duncan, "MALI: A memory efficient and reverse
    accurate integrator for Neural ODEs", ICLR 2021.
    """

    description = "MALI, asynchronous leapfrog run in reverse (TorchDiffEqPack odesolve_adjoint_sym12)"
    capabilities = Capabilities(
        exact_discrete_gradient=False,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        memory_in_steps="flat",
        backend=BACKEND,
        paper=(
            "Zhuang et al., MALI: A memory efficient and reverse accurate integrator for Neural ODEs, "
            "ICLR 2021"
        ),
    )
    solver_map: ClassVar[Mapping[str, str]] = {
        "midpoint": "fixedstep_sym12async",
        "adaptive_heun": "sym12async",
    }

    def _solve(self, field, y, options):
        from TorchDiffEqPack import odesolve_adjoint_sym12

        return odesolve_adjoint_sym12(field, y, options=options)


PEERS: dict[str, type[TorchDiffEqPackMethod]] = {
    "aca@torchdiffeqpack": ACAPeer,
    "mali@torchdiffeqpack": MALIPeer,
}


def register_all(registry) -> None:
    """Register the TorchDiffEqPack peers (as unavailable, with the reason, where it cannot be used)."""
    register_peers(registry, BACKEND, _ENTRY_POINTS, "1.0.1", PEERS)


def _check_options(spec: solvers.Solver, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Refuse options the TorchDiffEqPack wrappers do not implement (valid ones listed)."""
    valid = ADAPTIVE_OPTIONS if spec.adaptive else FIXED_OPTIONS
    return refuse_bad_options(options, valid, spec, "the TorchDiffEqPack peers")


def _steps_per_interval(a: float, b: float, step_size: float | None) -> int:
    """Number of uniform steps over ``[a, b]``; `step_size` must divide the interval."""
    if step_size is None:
        return 1
    n = max(1, round((b - a) / step_size))
    if not math.isclose(n * step_size, b - a, rel_tol=1e-6):
        raise UnsupportedError(
            f"step_size={step_size:g} does not divide the interval [{a:g}, {b:g}]; TorchDiffEqPack's "
            "fixed grid is uniform between output times"
        )
    return n


def _check_step_budget(y: torch.Tensor, max_steps: int, a: float, b: float) -> None:
    """TorchDiffEqPack jumps straight to t1 once ``neval_max`` steps are spent; refuse that.

    The step times live on the autograd node (TorchDiffEqPack's ctx), so the check runs when
    autograd records the solve, which every gradient measurement does.
    """
    steps = getattr(y.grad_fn, "steps", None)
    if steps is not None and len(steps) > max_steps:
        raise MaxStepsExceeded(
            f"max_num_steps exceeded ({len(steps)}>{max_steps}) on [{a:g}, {b:g}]; TorchDiffEqPack "
            "would have jumped to the end time"
        )
