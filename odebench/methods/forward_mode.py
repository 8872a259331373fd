"""Forward-mode sensitivities: one directional derivative of the discrete solve per input."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.autograd.forward_ad as fwad

from odebench import solvers
from odebench.errors import UnsupportedError
from odebench.methods.base import GradientMethod, MethodOption
from odebench.methods.claims import discrete_exact
from odebench.methods.stepwise import stepwise_capabilities
from odebench.solvers.runge_kutta import check_options, integrate, replay

PAPER = (
    "forward sensitivity analysis (Ma, Dixit, Innes, Guo & Rackauckas, A Comparison of Automatic "
    "Differentiation and Continuous Sensitivity Analysis for Derivatives of Differential Equation "
    "Solutions, IEEE HPEC 2021)"
)


class ForwardMode(GradientMethod):
    """Forward-mode automatic differentiation through the native solver's accepted steps.

    Forward: solve without a graph (torchdiffeq's accepted steps, `integrate`). Backward: for
    each input direction (every entry of ``y0`` and of each parameter that requires grad),
    replay the recorded grid once with a dual-number tangent (`torch.autograd.forward_ad`) and
    take its inner product with the outputs' cotangents: one gradient entry per replay. The
    gradient is that of the discrete forward solve, exact to round-off and free of any backward
    integration; its cost grows with the number of directions D (D replays of N steps, each
    evaluation carrying a tangent), its memory does not grow with N (one step's tangents).
    Practical where parameters are few (physical models, small fields); refused above
    `max_directions` (the option, ``forward:2048``) rather than run for hours.
    """

    description = "forward-mode sensitivities (dual numbers through the native steps)"
    capabilities = replace(stepwise_capabilities(PAPER), memory_in_steps="flat", cost_per_input=True)
    option = MethodOption("max_directions", default=512)
    claims = (
        discrete_exact("forward", "forward sensitivity analysis: the derivative of the discrete solve"),
    )

    def __init__(self, max_directions: int = option.default) -> None:
        self.max_directions = max_directions

    def with_option(self, value: int) -> ForwardMode:
        return type(self)(value)

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        spec = solvers.get(solver)
        check_options(spec, options)
        named = [(n, p) for n, p in func.named_parameters() if p.requires_grad]
        directions = y0.numel() + sum(p.numel() for _, p in named)
        if directions > self.max_directions:
            raise UnsupportedError(
                f"forward mode needs one solve per input entry: {directions} here, above its limit of "
                f"{self.max_directions} (raise it with forward:{directions}, or use a reverse-mode method)"
            )
        return _ForwardModeSolve.apply(func, spec, t, rtol, atol, options, named, y0, *(p for _, p in named))


class _ForwardModeSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, func, solver, t, rtol, atol, options, named, y0, *params):
        solution, trajectory = integrate(func, y0, t, solver, rtol, atol, options, keep_states=False)
        ctx.func, ctx.trajectory, ctx.names = func, trajectory, [n for n, _ in named]
        ctx.save_for_backward(y0, *params)
        return solution

    @staticmethod
    def backward(ctx, grad_solution):
        y0, *params = ctx.saved_tensors
        inputs = [y0, *params]
        grads = [torch.empty_like(x) for x in inputs]
        for which, x in enumerate(inputs):
            flat = grads[which].view(-1)
            for i in range(x.numel()):
                tangent = torch.zeros_like(x)
                tangent.view(-1)[i] = 1.0
                flat[i] = _directional(ctx, inputs, which, tangent, grad_solution)
        return (None,) * 7 + tuple(grads)


def _directional(ctx, inputs, which: int, tangent: torch.Tensor, grad_solution) -> torch.Tensor:
    """``<grad_solution, d solution>`` along `tangent` on input number `which` (0: ``y0``)."""
    with fwad.dual_level():
        duals = [fwad.make_dual(x, tangent) if k == which else x for k, x in enumerate(inputs)]
        # The parameters are swapped for their duals once for the whole replay, not per call.
        values = {f"func.{name}": dual for name, dual in zip(ctx.names, duals[1:])}
        solution = torch.func.functional_call(_Replay(ctx.func, ctx.trajectory), values, (duals[0],))
        tangent_out = fwad.unpack_dual(solution).tangent
    if tangent_out is None:  # the input does not reach the solution
        return torch.zeros((), dtype=grad_solution.dtype, device=grad_solution.device)
    return torch.sum(tangent_out * grad_solution)


class _Replay(torch.nn.Module):
    """The recorded grid replayed from ``y0`` with the field as a child module."""

    def __init__(self, func, trajectory) -> None:
        super().__init__()
        self.func, self.trajectory = func, trajectory

    def forward(self, y0):
        return replay(self.func, y0, self.trajectory)
