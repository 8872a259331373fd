"""diffrax's gradient methods (JAX), registered as ``name@diffrax``: the other framework's choices.

diffrax differentiates a solve by its ``adjoint=`` argument. Each is a method here, run on the
task's problem translated to JAX (`odebench.jax.translate`) and compiled as a whole gradient
(`odebench.jax.program`); the harness measures it as it measures a torch method, against the same
reference. The methods need the ``jax`` extra (``pip install 'odebench[jax]'``); without it they are
listed as unavailable with that hint, and importing odebench never imports JAX.

diffrax's step-size controller (``PIDController`` with its defaults, an integral controller as
torchdiffeq's) and initial step are its own, so its grid is close to, not equal to,
torchdiffeq's: these methods are compared on error against the reference and on cost, never as
discrete-exact pairs of a torch method.

Reference: Kidger, "On Neural Differential Equations", PhD thesis, University of Oxford, 2021
(diffrax); the adjoints' own papers are named on each class.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from odebench.errors import UnsupportedError
from odebench.jax import missing
from odebench.methods.base import Capabilities, GradientMethod, validate
from odebench.methods.peer_backend import register_each

BACKEND = "diffrax"
KIDGER = "Kidger, On Neural Differential Equations, PhD thesis, 2021 (diffrax)"
#: odebench's solvers diffrax has with the same tableau (`odebench.jax.program.SOLVERS`).
ADAPTIVE_SOLVERS = ("adaptive_heun", "bosh3", "dopri5", "dopri8")
FIXED_SOLVERS = ("euler", "midpoint", "heun2")


def _capabilities(**overrides) -> Capabilities:
    values = dict(
        exact_discrete_gradient=True,
        adaptive=True,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend=BACKEND,
        paper=KIDGER,
        memory_in_steps="flat",
        framework="jax",
    )
    return Capabilities(**{**values, **overrides})


class DiffraxMethod(GradientMethod):
    """A diffrax adjoint: `program` compiles the case's gradient; `odeint` refuses (there is no
    torch graph to differentiate)."""

    #: The diffrax solver names this method may run with (None: every one in `SOLVERS`).
    only_solvers: ClassVar[tuple[str, ...] | None] = None
    reverse_mode: ClassVar[bool] = True

    def supports(self, solver: str) -> bool:
        allowed = self.only_solvers or (ADAPTIVE_SOLVERS + FIXED_SOLVERS)
        return solver in allowed and super().supports(solver)

    @abc.abstractmethod
    def _adjoint(self, diffrax) -> Any:
        """The diffrax adjoint object (`diffrax` is the imported module)."""

    def _solver(self, diffrax, solver: str) -> Any:
        from odebench.jax.program import SOLVERS

        return SOLVERS[solver]()

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        raise UnsupportedError(
            f"{self.description} runs as a compiled JAX program: measure it in gradient or ratio "
            "cases (odebench run); it does not differentiate a torch graph"
        )

    def program(self, problem, *, solver: str, rtol, atol, step_size, max_steps, device="cpu"):
        """The compiled gradient of `problem` (an `odebench.tasks.Problem`) by this adjoint, on
        JAX's device of the same kind as `device` (refused in one line where JAX has none)."""
        validate(self, problem.func, problem.y0, problem.t, solver, rtol, atol)
        import diffrax

        from odebench.jax.program import Setup, compile_program

        setup = Setup(
            solver=self._solver(diffrax, solver),
            adjoint=self._adjoint(diffrax),
            reverse_mode=self.reverse_mode,
            rtol=rtol,
            atol=atol,
            step_size=step_size,
            max_steps_per_interval=max_steps,
            intervals=len(problem.t) - 1,
        )
        return compile_program(problem, setup, device)


class RecursiveCheckpoint(DiffraxMethod):
    """``RecursiveCheckpointAdjoint``, diffrax's default: backpropagation through the solver's
    steps with binomial checkpointing (about log2(max_steps) checkpoints), so the gradient is
    the discrete solve's and memory does not grow with the steps taken.

    Reference: Stumm & Walther, "New algorithms for optimal online checkpointing", SIAM J. Sci.
    Comput. 2010; Kidger 2021 (diffrax)."""

    description = "diffrax RecursiveCheckpointAdjoint (backprop through steps, binomial checkpoints)"
    capabilities = _capabilities()

    def _adjoint(self, diffrax):
        return diffrax.RecursiveCheckpointAdjoint()


class Backsolve(DiffraxMethod):
    """``BacksolveAdjoint``: the continuous adjoint solved backwards with the same solver and
    controller (diffrax: "not recommended"; Chen et al.'s method, as torchdiffeq's adjoint).

    Reference: Chen, Rubanova, Bettencourt & Duvenaud, "Neural Ordinary Differential Equations",
    NeurIPS 2018."""

    description = "diffrax BacksolveAdjoint (continuous adjoint)"
    capabilities = _capabilities(
        exact_discrete_gradient=False,
        paper="Chen et al., Neural Ordinary Differential Equations, NeurIPS 2018",
    )

    def _adjoint(self, diffrax):
        return diffrax.BacksolveAdjoint()


class Direct(DiffraxMethod):
    """``DirectAdjoint``: backpropagation through a bounded loop of ``max_steps`` steps, which
    forward-mode AD can also differentiate; memory is that of the bound, not of the steps taken
    (so flat in the steps: 37.6 KB at a bound of 1,000 and 43.8 KB at 20,000 on one problem)."""

    description = "diffrax DirectAdjoint (backprop through a bounded loop)"
    capabilities = _capabilities()

    def _adjoint(self, diffrax):
        return diffrax.DirectAdjoint()


class Forward(DiffraxMethod):
    """``ForwardMode``: the gradient by forward-mode AD through the solve (``jax.jacfwd``), one
    tangent per input entry, cheap only when the inputs are few."""

    description = "diffrax ForwardMode (forward-mode AD through the solve)"
    capabilities = _capabilities(cost_per_input=True)
    reverse_mode = False

    def _adjoint(self, diffrax):
        return diffrax.ForwardMode()


class ReversibleHeunBacksolve(DiffraxMethod):
    """diffrax's ``ReversibleHeun`` solver on a constant step, differentiated by
    ``BacksolveAdjoint``: the continuous adjoint solved with the reversible scheme. diffrax 0.7
    has no adjoint that inverts the scheme algebraically, so the gradient is not the discrete
    solve's (odebench's ``reversible_heun`` is).

    Reference: Kidger, Foster, Li & Lyons, "Efficient and Accurate Gradients for Neural SDEs",
    NeurIPS 2021."""

    description = "diffrax ReversibleHeun with BacksolveAdjoint"
    capabilities = _capabilities(
        exact_discrete_gradient=False,
        adaptive=False,
        paper="Kidger, Foster, Li & Lyons, Efficient and Accurate Gradients for Neural SDEs, NeurIPS 2021",
    )
    only_solvers = ("heun2",)

    def _adjoint(self, diffrax):
        return diffrax.BacksolveAdjoint()

    def _solver(self, diffrax, solver: str):
        return diffrax.ReversibleHeun()


PEERS = {
    "recursive_checkpoint@diffrax": RecursiveCheckpoint,
    "backsolve@diffrax": Backsolve,
    "direct@diffrax": Direct,
    "forward@diffrax": Forward,
    "reversible_heun@diffrax": ReversibleHeunBacksolve,
}


def register_all(registry) -> None:
    """Register the diffrax methods, or each as unavailable with the install hint."""
    register_each(registry, PEERS, missing())
