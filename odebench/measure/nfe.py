"""Function-evaluation accounting shared by every gradient method.

What is counted, per phase (``forward`` while the solution is computed, ``backward`` while
`loss.backward()` runs):

* ``nfe``: calls of the vector field ``func(t, y)``, each one evaluation on the whole
  (possibly batched) state, whether or not autograd records it.
* ``vjp``: vector-Jacobian products through one such evaluation, i.e. one reverse pass through
  one call of ``func``, however many inputs (state, time, parameters) it differentiates for.
  A method that re-evaluates ``func`` in order to differentiate it pays one ``nfe`` and one
  ``vjp`` for that.
* ``steps`` and ``rejected``: attempted and rejected solver steps, reported through
  torchdiffeq's callback protocol (``callback_step`` before every attempt and
  ``callback_reject_step`` on rejection in the forward solve, their ``_adjoint`` variants in the
  adjoint's backward solve); ``accepted = steps - rejected``. Fixed-grid steps are always
  accepted. A method whose solver does not report steps leaves them at zero.

The phase is set by the caller (the harness) with :meth:`CountedField.phase`; the wrapper does
not guess it from autograd's internals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

PHASES = ("forward", "backward")


@dataclass
class EvaluationCounts:
    """Counters for one phase."""

    nfe: int = 0
    vjp: int = 0
    steps: int = 0
    rejected: int = 0

    @property
    def accepted(self) -> int:
        return self.steps - self.rejected


class _CountVJP(torch.autograd.Function):
    """Identity on the field's output whose backward counts `vjps` vector-Jacobian products (one
    per evaluation of the field that produced it)."""

    @staticmethod
    def forward(ctx, output: torch.Tensor, counter: CountedField, vjps: int = 1) -> torch.Tensor:
        ctx.counter, ctx.vjps = counter, vjps
        return output.view_as(output)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        ctx.counter.counts[ctx.counter.current_phase].vjp += ctx.vjps
        return grad_output, None, None


class CountedField(nn.Module):
    """Wraps a vector field ``func(t, y)`` and counts its evaluations and VJPs per phase.

    The wrapped module is a child, so ``parameters()`` are the field's own and every method
    differentiates exactly the same parameters whether or not it is counted.
    """

    def __init__(self, func: nn.Module) -> None:
        super().__init__()
        self.func = func
        self.current_phase = "forward"
        self.counts: dict[str, EvaluationCounts] = {p: EvaluationCounts() for p in PHASES}

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.counts[self.current_phase].nfe += 1
        out = self.func(t, y)
        if torch.is_grad_enabled() and out.requires_grad:
            out = _CountVJP.apply(out, self)
        return out

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Attribute the counts made inside the block to phase `name`."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; valid: {', '.join(PHASES)}")
        previous, self.current_phase = self.current_phase, name
        try:
            yield
        finally:
            self.current_phase = previous

    def reset(self) -> None:
        self.counts = {p: EvaluationCounts() for p in PHASES}

    def evaluated_inside(self, output: torch.Tensor, evaluations: int) -> torch.Tensor:
        """Count `evaluations` calls of the wrapped field made inside a compiled graph (which
        calls it, not this wrapper) that returned `output`; as many VJPs are counted when the
        backward passes through `output`."""
        self.counts[self.current_phase].nfe += evaluations
        if torch.is_grad_enabled() and output.requires_grad:
            output = _CountVJP.apply(output, self, evaluations)
        return output

    # torchdiffeq's callback protocol (forward solve and the adjoint's backward solve).
    def callback_step(self, t0, y0, dt) -> None:
        self.counts[self.current_phase].steps += 1

    def callback_reject_step(self, t0, y0, dt) -> None:
        self.counts[self.current_phase].rejected += 1

    def callback_step_adjoint(self, t0, y0, dt) -> None:
        self.counts["backward"].steps += 1

    def callback_reject_step_adjoint(self, t0, y0, dt) -> None:
        self.counts["backward"].rejected += 1


def unwrapped(func: nn.Module) -> nn.Module:
    """The field a `CountedField` wraps, or `func` itself: what a compiled graph should call."""
    return func.func if isinstance(func, CountedField) else func


def count_evaluations(func: nn.Module, output: torch.Tensor, evaluations: int) -> torch.Tensor:
    """`CountedField.evaluated_inside` where `func` counts, else `output` unchanged."""
    return func.evaluated_inside(output, evaluations) if isinstance(func, CountedField) else output


def notify(func: nn.Module, callback: str, t0, y0, dt) -> None:
    """Call torchdiffeq-style ``callback`` (e.g. ``callback_step``) on `func` if it has one."""
    method = getattr(func, callback, None)
    if method is not None:
        method(t0, y0, dt)
