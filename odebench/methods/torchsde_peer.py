"""torchsde's reversible Heun with its reversible adjoint, registered as ``reversible_heun@torchsde``.

The ODE is handed to ``torchsde.sdeint_adjoint(method="reversible_heun",
adjoint_method="adjoint_reversible_heun")`` as a Stratonovich SDE with diagonal noise whose
diffusion is zero (reversible Heun takes Stratonovich SDEs of any noise type; diagonal is the
cheapest product), driven by a Brownian motion that is identically zero, so no noise is sampled
that the zero diffusion would multiply away. torchsde wants a ``(batch, channels)`` state: a 2-d
``y0`` is passed as it is, any other shape as ``(1, numel)`` and restored.

Known behaviour of torchsde 0.2.6, read from its source:

* the forward pass steps ``t + dt`` from ``t[0]`` to ``t[-1]`` and interpolates linearly at the
  output times; the adjoint restarts at every output time and steps back to the previous one,
  so the gradient is that of the forward solve only when every output interval is a multiple of
  ``dt`` (torchsde warns otherwise);
* ``sdeint_adjoint`` evaluates the drift once more than the solve needs, to check its shape;
* the adjoint evaluates ``f`` twice per step (once to invert, once for the VJP) and flattens the
  state, its cotangents and the parameters' cotangents into one vector every step.

Reference: Kidger, Foster, Li & Lyons, "Efficient and Accurate Gradients for Neural SDEs",
NeurIPS 2021 (torchsde is the authors' library).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from odebench import solvers
from odebench.errors import UnsupportedError
from odebench.methods.base import Capabilities, GradientMethod
from odebench.methods.peer_backend import register_peers
from odebench.methods.reversible_heun import SOLVER, ReversibleHeun
from odebench.solvers.runge_kutta import call_field, refuse_bad_options

BACKEND = "torchsde"
_ENTRY_POINTS = ("sdeint_adjoint", "BaseBrownian")
_NATIVE = ReversibleHeun()
OPTIONS = frozenset({"step_size"})


class _ZeroNoiseSDE(nn.Module):
    """``dy = f(t, y) dt + 0 dW`` over a ``(batch, channels)`` view of the state.

    `func` is held without being registered (its parameters go to torchsde as
    ``adjoint_params``); ``shape`` is the caller's state shape (None: already 2-d).
    """

    noise_type = "diagonal"
    sde_type = "stratonovich"

    def __init__(self, func: nn.Module, shape: torch.Size | None) -> None:
        super().__init__()
        object.__setattr__(self, "func", func)
        self.shape = shape

    def f_and_g(self, t, y):
        if self.shape is None:
            f = call_field(self.func, t, y)
        else:
            f = call_field(self.func, t, y.reshape(self.shape)).reshape(y.shape)
        return f, torch.zeros_like(y)


def _zero_brownian(shape, dtype, device):
    """A Brownian motion that is identically zero (the diffusion is zero)."""
    return _zero_brownian_class()(shape, dtype, device)


@functools.cache
def _zero_brownian_class():
    from torchsde import BaseBrownian

    class ZeroBrownian(BaseBrownian):
        __slots__ = ("_device", "_dtype", "_shape")

        def __init__(self, shape, dtype, device) -> None:
            self._shape, self._dtype, self._device = torch.Size(shape), dtype, device

        def __call__(self, ta, tb=None, return_U=False, return_A=False):
            if return_U or return_A:
                raise UnsupportedError("the zero Brownian motion has no space-time Levy area")
            return torch.zeros(self._shape, dtype=self._dtype, device=self._device)

        def __repr__(self) -> str:
            return f"ZeroBrownian(shape={tuple(self._shape)})"

        @property
        def dtype(self):
            return self._dtype

        @property
        def device(self):
            return self._device

        @property
        def shape(self):
            return self._shape

        @property
        def levy_area_approximation(self):
            return "none"

    return ZeroBrownian


class ReversibleHeunPeer(GradientMethod):
    """torchsde's reversible Heun and its algebraically reversible adjoint (zero diffusion).

    Forward: ``f(t0, y0)`` and the state ``(y, z, f)``, one evaluation per step of ``dt``
    (``options["step_size"]``, required), outputs interpolated linearly; kept: the outputs and
    the end ``(y, z, f)``. Backward, per output interval from the last: restart ``y`` at the
    output, then per step invert it without a graph and differentiate ``f`` at the later state
    again with a graph. Counts, N steps: forward ``N + 2`` evaluations (one is torchsde's shape
    check), backward ``2N`` evaluations and ``N + 1`` VJPs. Memory: the outputs, a few states
    and one evaluation's graph: flat in the steps.

    Not claimed discrete-exact: torchsde's backward re-grids each output interval (module
    notes). `discrete_solve` is the native `ReversibleHeun`'s replay on torchdiffeq's grid, the
    same scheme, so the harness reports the distance.

    Reference: Kidger, Foster, Li & Lyons, "Efficient and Accurate Gradients for Neural SDEs",
    NeurIPS 2021.
    """

    description = "reversible Heun with its reversible adjoint (torchsde sdeint_adjoint, zero noise)"
    capabilities = Capabilities(
        exact_discrete_gradient=False,
        adaptive=False,
        fixed_step=True,
        multiple_output_times=True,
        time_gradient=False,
        backend=BACKEND,
        paper="Kidger, Foster, Li & Lyons, Efficient and Accurate Gradients for Neural SDEs, NeurIPS 2021",
        torchdiffeq_grid=False,
        memory_in_steps="flat",
    )

    def supports(self, solver: str) -> bool:
        solvers.get(solver)  # an unknown name is answered with the valid ones
        return solver == SOLVER

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        import torchsde

        step_size = _step_size(solvers.get(solver), options)
        if len(t) == 1:
            return y0.unsqueeze(0)
        shape = None if y0.ndim == 2 else y0.shape
        y = y0 if shape is None else y0.reshape(1, -1)
        sde = _ZeroNoiseSDE(func, shape)
        ys = torchsde.sdeint_adjoint(
            sde,
            y,
            t,
            bm=_zero_brownian(y.shape, y.dtype, y.device),
            method="reversible_heun",
            adjoint_method="adjoint_reversible_heun",
            dt=step_size,
            adjoint_params=tuple(p for p in func.parameters() if p.requires_grad),
        )
        return ys.reshape(len(t), *y0.shape)

    def discrete_solve(self, func, y0, t, *, solver, rtol, atol, options):
        """The native reversible Heun's replay: the same scheme on torchdiffeq's fixed grid."""
        return _NATIVE.discrete_solve(func, y0, t, solver=solver, rtol=rtol, atol=atol, options=options)


def _step_size(spec: solvers.Solver, options: Mapping[str, Any] | None) -> float:
    value = refuse_bad_options(options, OPTIONS, spec, "reversible_heun@torchsde").get("step_size")
    if value is None:
        raise UnsupportedError(
            "reversible_heun@torchsde needs options={'step_size': h}: torchsde steps a fixed dt"
        )
    return float(value)


PEERS: dict[str, type[GradientMethod]] = {"reversible_heun@torchsde": ReversibleHeunPeer}


def register_all(registry) -> None:
    """Register the torchsde peer (as unavailable, with the reason, where it cannot be used)."""
    register_peers(registry, BACKEND, _ENTRY_POINTS, "0.2.6", PEERS)
