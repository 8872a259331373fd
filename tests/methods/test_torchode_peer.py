"""The torchode peers against the analytic gradient, and their registration.

Measured on `linear_problem` (5-d, T = 2, rtol = atol = tol, float64): autodiff dopri5
1.2e-5 / 1.1e-7 at tol 1e-5 / 1e-7, backsolve dopri5 4.5e-5 / 3.7e-7; adaptive_heun 1.5e-3 /
1.5e-5 (autodiff) and 1.6e-3 / 1.6e-5 (backsolve) at 1e-3 / 1e-5; heun2 at h = 0.1 / 0.025
1.6e-2 / 9.7e-4 (autodiff) and 1.8e-2 / 1.0e-3 (backsolve).
"""

from __future__ import annotations

import sys
import types
from importlib.metadata import version

import pytest
import torch

from odebench import methods, solvers
from odebench.errors import MaxStepsExceeded, UnavailableError, UnsupportedError
from odebench.measure.nfe import CountedField
from odebench.methods import torchode_peer
from odebench.registry import Registry
from tests.methods.fields import LinearField, MLPField, assert_converges, linear_problem, rel_error

AVAILABLE = set(torchode_peer.PEERS) <= set(methods.names())
pytestmark = pytest.mark.skipif(
    not AVAILABLE, reason=f"torchode peers unavailable: {methods.unavailable().get('autodiff@torchode')}"
)

# solver -> (coarse, fine, K): error at most K * x (adaptive) or K * x**order (fixed), about 3x
# the measured value, and shrinking with x.
BOUNDS = {"dopri5": (1e-5, 1e-7, 15.0), "adaptive_heun": (1e-3, 1e-5, 5.0), "heun2": (0.1, 0.025, 5.0)}


def linear_gradient_error(method, solver, x, dtype=torch.float64):
    A, y0, w, gA, gy = linear_problem(dtype=dtype)
    func, y = LinearField(A), y0.clone().requires_grad_(True)
    t = torch.tensor([0.0, 2.0], dtype=dtype)
    if solvers.get(solver).adaptive:
        out = methods.get(method).odeint(func, y, t, solver=solver, rtol=x, atol=x)
    else:
        out = methods.get(method).odeint(func, y, t, solver=solver, options={"step_size": x})
    assert out.shape == (2, *y0.shape) and out.dtype == dtype
    (out[-1] @ w).backward()
    return rel_error(torch.cat([y.grad, func.A.grad.flatten()]), torch.cat([gy, gA.flatten()]))


@pytest.mark.parametrize("method", sorted(torchode_peer.PEERS))
@pytest.mark.parametrize("solver", BOUNDS)
def test_linear_gradient_matches_analytic(method, solver):
    coarse_x, fine_x, k = BOUNDS[solver]
    coarse = linear_gradient_error(method, solver, coarse_x)
    fine = linear_gradient_error(method, solver, fine_x)
    assert_converges(solvers.get(solver), coarse, fine, coarse_x, fine_x, k)


@pytest.mark.parametrize("method", sorted(torchode_peer.PEERS))
def test_several_outputs_counted_and_batched_state(method):
    """A (6, 2) state is one problem (not six): the solution agrees with torchdiffeq's, every
    evaluation is counted, and the backsolve's VJPs are counted one per evaluation."""
    func = CountedField(MLPField())
    y0 = torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.tensor([0.0, 0.3, 1.0, 1.5], dtype=torch.float64)
    y = y0.clone().requires_grad_(True)
    out = methods.get(method).odeint(func, y, t, solver="dopri5", rtol=1e-7, atol=1e-9)
    with func.phase("backward"):
        (out**2).sum().backward()
    reference = methods.get("naive").odeint(MLPField(), y0, t, solver="dopri5", rtol=1e-7, atol=1e-9)
    assert out.shape == (4, 6, 2) and torch.equal(out[0], y0)
    assert rel_error(out.detach(), reference) < 1e-6
    assert func.counts["forward"].nfe > 20 and func.counts["backward"].vjp > 20
    assert y.grad is not None and torch.isfinite(y.grad).all()


@pytest.mark.parametrize("method", sorted(torchode_peer.PEERS))
def test_float32_and_frozen_parameters(method):
    assert linear_gradient_error(method, "dopri5", 1e-5, dtype=torch.float32) < 1e-3
    func = MLPField()
    func.net[0].bias.requires_grad_(False)
    y = torch.tensor([[0.5, -0.2]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    methods.get(method).odeint(func, y, t, solver="dopri5").sum().backward()
    assert func.net[0].bias.grad is None and torch.count_nonzero(func.net[0].weight.grad) > 0


def test_registered_with_the_installed_version():
    for name in torchode_peer.PEERS:
        method = methods.get(name)
        assert method.backend_version == version("torchode")
        assert method.solvers() == [s for s in solvers.names() if s in torchode_peer.SOLVER_MAP]


@pytest.mark.parametrize(
    "module, reason",
    [(None, "not installed"), (types.ModuleType("torchode"), "lacks AutoDiffAdjoint")],
    ids=["missing", "broken"],
)
def test_missing_package_is_unavailable(monkeypatch, module, reason):
    monkeypatch.setitem(sys.modules, "torchode", module)
    registry = Registry("method")
    torchode_peer.register_all(registry)
    assert registry.names() == [] and set(registry.unavailable()) == set(torchode_peer.PEERS)
    for name in torchode_peer.PEERS:
        with pytest.raises(UnavailableError, match=reason):
            registry.get(name)


@pytest.mark.parametrize("method", sorted(torchode_peer.PEERS))
def test_refusals_and_step_budget(method):
    A, y0, _, _, _ = linear_problem()
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    peer = methods.get(method)
    with pytest.raises(UnsupportedError, match="not supported"):
        peer.odeint(LinearField(A), y0, t, solver="bosh3")
    with pytest.raises(UnsupportedError, match="step_size"):
        peer.odeint(LinearField(A), y0, t, solver="euler")
    with pytest.raises(UnsupportedError, match="not supported"):
        peer.odeint(LinearField(A), y0, t, solver="dopri5", options={"safety": 0.5})
    with pytest.raises(MaxStepsExceeded):
        peer.odeint(
            LinearField(A), y0, t, solver="dopri5", rtol=1e-10, atol=1e-10, options={"max_num_steps": 5}
        )
