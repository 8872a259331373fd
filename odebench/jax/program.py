"""One problem's gradient by one diffrax adjoint, compiled: what a JAX gradient case measures.

`compile_program` translates the task's field and loss (`odebench.jax.translate`), builds the
loss of the diffrax solve as a function of the field's parameters and the initial state, and
compiles it ahead of time (``jax.jit(...).lower(...).compile()``, timed apart as compile time):

- reverse-mode adjoints: a forward program ``jax.vjp`` returning the loss, the solver statistics
  and the pullback (whose residuals are what the adjoint keeps), and a backward program applying
  the pullback, the split a torch forward and ``backward()`` make;
- forward mode: one program computing the loss and its gradient by ``jax.jacfwd``, the way
  odebench's own forward mode computes it in the forward solve; its backward is empty.

Peak memory is XLA's own account of the compiled programs (``memory_analysis``): temporaries and
outputs of the forward, then the forward's outputs (the residuals) with the backward's
temporaries and outputs; arguments (parameters, initial state) exist before the case, as in torch
cases. Function evaluations are counted by a host callback in a separate counting program, so the
timed programs carry no instrumentation.

Reference: Kidger, "On Neural Differential Equations", PhD thesis, 2021 (diffrax).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from odebench import references
from odebench.errors import MaxStepsExceeded, UnsupportedError
from odebench.jax import load
from odebench.jax.translate import Translated, to_jax, translate

jax = load()
jnp = jax.numpy

import diffrax  # noqa: E402

#: odebench's solver names -> diffrax's solver of the same tableau (fixed-step ones on a constant
#: step). rk4 (Kutta's 3/8 rule) and the Fehlberg pairs have no diffrax counterpart.
SOLVERS: dict[str, Callable[[], Any]] = {
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "bosh3": diffrax.Bosh3,
    "adaptive_heun": diffrax.Heun,
    "heun2": diffrax.Heun,
    "midpoint": diffrax.Midpoint,
    "euler": diffrax.Euler,
}


#: torch device kinds -> JAX platform names.
PLATFORMS = {"cpu": "cpu", "cuda": "gpu"}


def jax_device(device) -> Any:
    """JAX's first device of the kind of torch `device`; one line naming what JAX has otherwise."""
    device = torch.device(device)
    kind, platform = device.type, PLATFORMS.get(device.type)
    if platform is not None:
        try:
            found = jax.devices(platform)
        except RuntimeError:
            found = []
        if (device.index or 0) < len(found):
            return found[device.index or 0]
    have = ", ".join(sorted({d.platform for d in jax.devices()}))
    raise UnsupportedError(f"JAX has no {kind} device here (it has: {have}); JAX methods run on those")


class _LossOf(nn.Module):
    """A task's loss that is a plain function, as a module ``torch.export`` can capture."""

    def __init__(self, loss) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        return self.loss(solution)


@dataclass(frozen=True)
class JaxProblem:
    """A task's problem in JAX: field ``fn(params, t, y)``, loss ``fn(loss_params, solution)``,
    the initial state and output times, and the torch problem's parameter layout."""

    field: Translated
    loss: Translated
    y0: Any
    t: Any


def jax_problem(problem) -> JaxProblem:
    """`problem` (an `odebench.tasks.Problem`) translated to JAX with the same values."""
    func, y0, t = problem.func, problem.y0.detach(), problem.t.detach()
    field = translate(func, (t[0].clone(), y0.clone()), name=f"{type(func).__name__} field")
    loss = problem.loss if isinstance(problem.loss, nn.Module) else _LossOf(problem.loss)
    solution = y0.unsqueeze(0).expand(len(t), *y0.shape).clone()
    return JaxProblem(field, translate(loss, (solution,), name="loss"), to_jax(y0), to_jax(t))


@dataclass(frozen=True)
class Setup:
    """How a case solves: the diffrax solver, adjoint and step control."""

    solver: Any
    adjoint: Any
    reverse_mode: bool
    rtol: float | None
    atol: float | None
    step_size: float | None
    max_steps_per_interval: int
    intervals: int

    @property
    def max_steps(self) -> int:
        """diffrax's budget for the whole solve: odebench's is per output interval."""
        return self.max_steps_per_interval * self.intervals


class Program:
    """The compiled forward and backward programs of one case, and what they measured."""

    def __init__(self, jp: JaxProblem, setup: Setup, device) -> None:
        self.problem = jp
        self.setup = setup
        self.device = device
        self.params = jp.field.params
        self.compile_s: dict[str, float] = {}
        loss_of = self._loss_of(counter=None)
        started = time.perf_counter()
        if setup.reverse_mode:
            forward = jax.jit(lambda p, y: jax.vjp(loss_of, p, y, has_aux=True))
            self._forward = forward.lower(self.params, jp.y0).compile()
            self.compile_s["forward"] = time.perf_counter() - started
            started = time.perf_counter()
            backward = jax.jit(lambda pull: pull(jnp.ones((), dtype=jp.y0.dtype)))
            self._backward = backward.lower(self._forward.out_info[1]).compile()  # the pullback's shapes
            self.compile_s["backward"] = time.perf_counter() - started
        else:  # one solve carries the tangents; its loss and statistics come back as aux

            def value_and_gradient(p, y):
                def with_value(p_, y_):
                    loss, stats = loss_of(p_, y_)
                    return loss, (loss, stats)

                grad, (loss, stats) = jax.jacfwd(with_value, argnums=(0, 1), has_aux=True)(p, y)
                return loss, grad, stats

            self._forward = jax.jit(value_and_gradient).lower(self.params, jp.y0).compile()
            self.compile_s["forward"] = time.perf_counter() - started
            self._backward = None

    def _loss_of(self, counter: Callable[[], None] | None):
        jp, setup = self.problem, self.setup
        field_fn = jp.field.fn

        def field(t, y, params):
            if counter is not None:
                jax.debug.callback(counter)
            return field_fn(params, t, y)

        adaptive = setup.step_size is None
        controller = (
            diffrax.PIDController(rtol=setup.rtol, atol=setup.atol)
            if adaptive
            else diffrax.ConstantStepSize()
        )

        def loss_of(params, y0):
            solution = diffrax.diffeqsolve(
                diffrax.ODETerm(field),
                setup.solver,
                jp.t[0],
                jp.t[-1],
                None if adaptive else setup.step_size,
                y0,
                args=params,
                saveat=diffrax.SaveAt(ts=jp.t),
                stepsize_controller=controller,
                adjoint=setup.adjoint,
                max_steps=setup.max_steps,
            )
            return jp.loss.fn(jp.loss.params, solution.ys), solution.stats

        return loss_of

    def forward(self):
        """Loss and what the backward needs; blocks until computed."""
        with self._budget():
            out = self._forward(self.params, self.problem.y0)
            jax.block_until_ready(out)
        return out

    def backward(self, state):
        """``(dL/dparams, dL/dy0)`` from a `forward` state; blocks until computed."""
        if self._backward is None:
            return state[1]
        with self._budget():
            grads = self._backward(state[1])
            jax.block_until_ready(grads)
        return grads

    @contextlib.contextmanager
    def _budget(self):
        """diffrax's step-budget error (a runtime error with a traceback inside) as odebench's
        one-line `MaxStepsExceeded`."""
        try:
            yield
        except Exception as exc:
            if "maximum number of solver steps was reached" not in str(exc):
                raise
            setup = self.setup
            raise MaxStepsExceeded(
                f"diffrax: the step budget was reached ({setup.max_steps_per_interval} steps per output "
                f"interval, {setup.max_steps} in all)"
            ) from None

    def forward_backward(self) -> float:
        """One gradient, forward then backward; returns the loss."""
        state = self.forward()
        self.backward(state)
        return float(state[0])

    def peak_bytes(self) -> int:
        """XLA's peak of forward then backward: see the module docstring."""
        forward = self._forward.memory_analysis()
        peak = forward.temp_size_in_bytes + forward.output_size_in_bytes
        if self._backward is not None:
            backward = self._backward.memory_analysis()
            during = (
                forward.output_size_in_bytes + backward.temp_size_in_bytes + backward.output_size_in_bytes
            )
            peak = max(peak, during)
        return int(peak)

    def counts(self) -> dict[str, int | None]:
        """Function evaluations in the forward solve and in the backward (the gradient program's
        evaluations beyond the forward's: recomputations, or the adjoint's solve), counted by a
        host callback in a program of their own; steps from diffrax's statistics. VJPs are not
        separable in JAX's transposed program: None."""
        tally = {"forward": 0, "gradient": 0}

        def counter(phase):
            return lambda: tally.__setitem__(phase, tally[phase] + 1)

        forward_loss = self._loss_of(counter("forward"))
        gradient_loss = self._loss_of(counter("gradient"))
        if self.setup.reverse_mode:
            differentiate = jax.grad(lambda p, y: gradient_loss(p, y)[0], argnums=(0, 1))
        else:
            differentiate = jax.jacfwd(lambda p, y: gradient_loss(p, y)[0], argnums=(0, 1))
        program = jax.jit(lambda p, y: (forward_loss(p, y), differentiate(p, y)))
        with jax.default_device(self.device), self._budget():
            (_, stats), _ = program(self.params, self.problem.y0)
        jax.block_until_ready(stats)
        jax.effects_barrier()
        return {
            "nfe_forward": tally["forward"],
            "nfe_backward": tally["gradient"] - tally["forward"],
            "vjp_backward": None,
            "steps_accepted": int(stats["num_accepted_steps"]),
            "steps_rejected": int(stats["num_rejected_steps"]),
        }

    def flat_gradient(self, grads, func: nn.Module) -> torch.Tensor:
        """``(dL/dparams, dL/dy0)`` flattened as odebench's references are, float64 on the CPU;
        a parameter that does not require grad gets zeros, as torch leaves it."""
        params_grad, y0_grad = grads
        trainable = set(self.problem.field.trainable)
        by_name = {
            name: torch.from_numpy(np.array(params_grad[name]))
            if name in trainable
            else torch.zeros(p.shape, dtype=torch.float64)
            for name, p in func.named_parameters()
        }
        return references.flatten(torch.from_numpy(np.array(y0_grad)), by_name)


def compile_program(problem, setup: Setup, device="cpu") -> Program:
    """`problem` translated to JAX on the device of `device`'s kind and its gradient by `setup`
    compiled there."""
    target = jax_device(device)
    with jax.default_device(target):
        return Program(jax_problem(problem), setup, target)


__all__ = ["SOLVERS", "JaxProblem", "Program", "Setup", "compile_program", "jax_problem"]
