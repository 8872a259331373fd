"""torchode's gradient methods, registered as ``autodiff@torchode`` and ``backsolve@torchode``.

torchode (Lienen & Günnemann) solves a batch of independent problems, each with its own step
size; odebench's ``odeint`` solves one problem on the whole state, with one error norm. So the
wrappers solve a batch of one: ``y0`` flattened to ``(1, numel)``, the output times as
``t_eval`` of shape ``(1, len(t))``, and the field called with the state in its own shape and
the time as a 0-d tensor; the solution comes back as ``(len(t), *y0.shape)``. Outputs between
steps come from torchode's dense output. Times stay in ``t``'s dtype (``y0``'s): torchode's
joint backsolve scales the field by a time tensor, which must not promote a float32 state.

Solvers with the same tableau as odebench's (torchode's others, e.g. Tsit5, have no odebench
counterpart and are not offered): ``dopri5`` (Dormand-Prince 5(4); torchode's error weights are
the other embedded fourth-order solution, 1951/21600, ..., not torchdiffeq's, so the grids
differ), ``adaptive_heun`` (Heun-Euler 2(1)), both on torchode's ``IntegralController`` with
``rtol``/``atol`` (safety 0.9, factor in [0.2, 10], exponent 1/order) and its initial step
selection; ``euler`` and ``heun2`` on its fixed-step controller, which need
``options={"step_size": h}`` (the last step is shortened to land on ``t[-1]``).

Reference: Lienen & Günnemann, "torchode: A Parallel ODE Solver for PyTorch", The Symbiosis
of Deep Learning and Differential Equations Workshop, NeurIPS 2022.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from odebench import solvers
from odebench.errors import MaxStepsExceeded, UnsupportedError
from odebench.methods.base import Capabilities, GradientMethod
from odebench.methods.peer_backend import TrainableParameters, register_peers
from odebench.solvers.runge_kutta import refuse_bad_options

BACKEND = "torchode"  # the PyPI distribution name, so `backend_version` finds it
PAPER = (
    "Lienen & Günnemann, torchode: A Parallel ODE Solver for PyTorch, "
    "The Symbiosis of Deep Learning and Differential Equations Workshop, NeurIPS 2022"
)
#: odebench solver name -> torchode step method (class name in ``torchode``).
SOLVER_MAP = {"euler": "Euler", "heun2": "Heun", "adaptive_heun": "Heun", "dopri5": "Dopri5"}
ADAPTIVE_OPTIONS = frozenset({"first_step", "max_num_steps"})
FIXED_OPTIONS = frozenset({"step_size"})
_ENTRY_POINTS = ("AutoDiffAdjoint", "JointBacksolveAdjoint", "IntegralController", "FixedStepController")


class _Term(TrainableParameters):
    """``func(t, y)`` as torchode calls it: ``y`` of shape ``(1, numel)``, ``t`` of shape ``(1,)``;
    `func` sees the state in its own shape and the time as a 0-d tensor of the state's dtype.
    The backsolve adjoint differentiates every tensor ``parameters()`` yields, hence only the
    trainable ones (`TrainableParameters`).
    """

    def __init__(self, func: nn.Module, shape: torch.Size) -> None:
        super().__init__(func)
        self.shape = shape

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.func(t.reshape(()).to(y.dtype), y.reshape(self.shape)).reshape(y.shape)


class TorchodeMethod(GradientMethod):
    """Common driver of the torchode peers; subclasses build torchode's adjoint and solve."""

    def supports(self, solver: str) -> bool:
        solvers.get(solver)  # an unknown name is answered with the valid ones
        return solver in SOLVER_MAP

    @abc.abstractmethod
    def _build(self, term, step_method, controller, max_steps: int | None):
        """torchode's solver object for one solve (its ``solve(problem, dt0=...)`` is called)."""

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        import torchode

        spec = solvers.get(solver)
        options = _check_options(spec, options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        term = torchode.ODETerm(_Term(func, y0.shape), with_stats=False)
        step_method = getattr(torchode, SOLVER_MAP[solver])(term=term)
        t_eval = t.detach().reshape(1, -1)
        if spec.adaptive:
            controller = torchode.IntegralController(atol=atol, rtol=rtol, term=term)
            first = options.get("first_step")
        else:
            controller = torchode.FixedStepController()
            first = options["step_size"]
        dt0 = None if first is None else torch.full((1,), float(first), dtype=t.dtype, device=t.device)
        max_steps = options.get("max_num_steps")
        adjoint = self._build(term, step_method, controller, None if max_steps is None else int(max_steps))
        problem = torchode.InitialValueProblem(y0=y0.reshape(1, -1), t_eval=t_eval)
        solution = adjoint.solve(problem, dt0=dt0)
        _check_status(int(solution.status.max()), max_steps)
        return solution.ys[0].reshape(len(t), *y0.shape)


def _capabilities(*, exact_discrete_gradient: bool, memory_in_steps: str) -> Capabilities:
    """What both peers declare: every solver in `SOLVER_MAP`, several output times, no time
    gradient."""
    return Capabilities(
        exact_discrete_gradient=exact_discrete_gradient,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend=BACKEND,
        paper=PAPER,
        memory_in_steps=memory_in_steps,
    )


class AutoDiffPeer(TorchodeMethod):
    """torchode's ``AutoDiffAdjoint``: autograd through every operation of its solver loop.

    Exact for its discrete solve (with torchode's default, it also differentiates through the
    step-size controller and the dense output); memory grows with the number of steps.
    """

    description = "backprop through torchode's solver (torchode AutoDiffAdjoint)"
    capabilities = _capabilities(exact_discrete_gradient=True, memory_in_steps="linear")

    def _build(self, term, step_method, controller, max_steps):
        import torchode

        return torchode.AutoDiffAdjoint(step_method, controller, max_steps=max_steps)


class BacksolvePeer(TorchodeMethod):
    """torchode's backsolve adjoint: the continuous adjoint, solved backwards in time.

    Forward without a graph; backward, one solve per output interval of the augmented state
    ``(y, a_y, a_params)`` with the same solver and tolerances, the state reset to the forward
    output at each output time. Not discrete-exact; memory flat in the steps.

    It runs ``JointBacksolveAdjoint``, torchode's backsolve for problems that share their
    output times, which for a batch of one is ``BacksolveAdjoint`` step for step (the same
    ``BacksolveFunction`` and augmented dynamics) with the VJPs taken by ``torch.autograd``
    instead of ``torch.func.vjp`` under ``vmap``: functorch refuses a field that contains an
    ``autograd.Function`` without ``setup_context``, as odebench's counting wrapper
    (`odebench.measure.CountedField`) does, so ``BacksolveAdjoint`` could not be measured.

    Reference: Chen, Rubanova, Bettencourt & Duvenaud, "Neural Ordinary Differential
    Equations", NeurIPS 2018 (the method), as implemented in torchode.
    """

    description = "continuous adjoint, backsolve (torchode JointBacksolveAdjoint, a batch of one)"
    capabilities = _capabilities(exact_discrete_gradient=False, memory_in_steps="flat")

    def _build(self, term, step_method, controller, max_steps):
        import torchode

        adjoint = torchode.JointBacksolveAdjoint(term, step_method, controller)
        # Its constructor takes no step budget; both inner solves take one.
        adjoint.forward_loop.max_steps = max_steps
        adjoint.backward_loop.max_steps = max_steps
        return adjoint


PEERS: dict[str, type[TorchodeMethod]] = {
    "autodiff@torchode": AutoDiffPeer,
    "backsolve@torchode": BacksolvePeer,
}


def register_all(registry) -> None:
    """Register the torchode peers (as unavailable, with the reason, where it cannot be used)."""
    register_peers(registry, BACKEND, _ENTRY_POINTS, "1.0.1", PEERS)


def _check_options(spec: solvers.Solver, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Refuse options the torchode wrappers do not implement (valid ones listed)."""
    valid = ADAPTIVE_OPTIONS if spec.adaptive else FIXED_OPTIONS
    options = refuse_bad_options(options, valid, spec, "the torchode peers")
    if not spec.adaptive and options.get("step_size") is None:
        raise UnsupportedError(
            f"solver {spec.name!r} with the torchode peers needs options={{'step_size': h}} "
            "(torchode's fixed-step controller takes a step size, not the output grid)"
        )
    return options


#: torchode's failure codes (``torchode.status_codes``) other than 3, max steps.
_FAILURES = {
    1: "general error",
    2: "step size below dt_min",
    4: "infinite error norm (NaN or inf in the state)",
}


def _check_status(status: int, max_steps) -> None:
    """torchode reports failure in ``solution.status`` and returns what it has; refuse that."""
    if status == 0:
        return
    if status == 3:
        raise MaxStepsExceeded(f"max_num_steps exceeded ({max_steps}) in torchode's solve")
    raise FloatingPointError(f"torchode's solve failed: {_FAILURES.get(status, f'status {status}')}")
