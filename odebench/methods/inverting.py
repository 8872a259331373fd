"""Methods that solve without a graph and differentiate by inverting their steps in reverse.

The forward pass keeps the step times and a few states, not a graph; the backward pass rebuilds
each step's start from its end, last step first, and pulls the cotangents back through the step
with one short graph at a time, so memory is flat in the number of steps. The subclasses (MALI,
the reversible solvers, reversible Heun) define their scheme's solve, backward pass and replay;
this module holds the autograd plumbing they share.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from odebench import solvers
from odebench.methods.base import Capabilities, GradientMethod
from odebench.solvers.runge_kutta import check_options


class InvertingMethod(GradientMethod):
    """Base of the methods that invert their steps; a subclass defines its three passes."""

    def checked_options(self, spec: solvers.Solver, options) -> dict[str, Any]:
        """`options` checked for `spec` (by default, as the native integrator checks them)."""
        return check_options(spec, options)

    @abc.abstractmethod
    def forward_pass(self, func, y0, t, spec, rtol, atol, options) -> tuple[torch.Tensor, Any]:
        """The solution without a graph, and what `backward_pass` needs (held by the autograd
        node until the backward pass has run)."""

    @abc.abstractmethod
    def backward_pass(self, func, kept, y0, params, grad_solution) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The cotangents of `y0` and of `params` from the solution's, by inverting the steps."""

    @abc.abstractmethod
    def replay(self, func, y0, t, spec, rtol, atol, options) -> torch.Tensor:
        """The same discrete solve under plain autograd (`discrete_solve`)."""

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        spec = solvers.get(solver)
        options = self.checked_options(spec, options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        params = tuple(p for p in func.parameters() if p.requires_grad)
        return _InvertingSolve.apply(self, func, spec, t, rtol, atol, options, y0, *params)

    def discrete_solve(self, func, y0, t, *, solver, rtol, atol, options):
        """The same steps replayed under plain autograd."""
        spec = solvers.get(solver)
        options = self.checked_options(spec, options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        return self.replay(func, y0, t, spec, rtol, atol, options)


def inverting_capabilities(paper: str, *, adaptive: bool = True) -> Capabilities:
    """What inverting the steps gives: the gradient of the method's own discrete solve (not on
    torchdiffeq's grid), with memory flat in the steps."""
    return Capabilities(
        exact_discrete_gradient=True,
        adaptive=adaptive,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend="odebench",
        paper=paper,
        torchdiffeq_grid=False,
        memory_in_steps="flat",
    )


class _InvertingSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, method, func, spec, t, rtol, atol, options, y0, *params):
        solution, kept = method.forward_pass(func, y0, t, spec, rtol, atol, options)
        ctx.method, ctx.func, ctx.kept = method, func, kept
        ctx.save_for_backward(y0, *params)
        return solution

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_solution):
        y0, *params = ctx.saved_tensors
        grad_y0, grad_params = ctx.method.backward_pass(ctx.func, ctx.kept, y0, params, grad_solution)
        return (None,) * 7 + (grad_y0, *grad_params)


def vjp(out, x, params, cot, grad_params, sign: int = 1) -> torch.Tensor:
    """``J_x^T cot`` of ``out(x, params)``; adds ``sign * J_params^T cot`` to `grad_params`."""
    if not out.requires_grad:
        return torch.zeros_like(x)
    g, *grads = torch.autograd.grad(out, (x, *params), cot, allow_unused=True, materialize_grads=True)
    if grads:
        torch._foreach_add_(grad_params, grads, alpha=sign)
    return g
