"""The TorchDiffEqPack peers against the analytic gradient, and their registration.

Bounds are measured on `linear_problem` (5-d, T = 2, atol = rtol = tol). TorchDiffEqPack keeps
times in float32, so float64 errors level off near 1e-7; no tolerance below 1e-7 is tested.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from importlib.metadata import version

import pytest
import torch

from odebench import methods, solvers
from odebench.errors import MaxStepsExceeded, UnavailableError, UnsupportedError
from odebench.methods import peers
from odebench.registry import Registry
from tests.methods.fields import LinearField, assert_converges, linear_problem, rel_error

INSTALLED = importlib.util.find_spec(peers.BACKEND) is not None
PEER_NAMES = [n for n in methods.names() if methods.get(n).capabilities.backend == peers.BACKEND]

# (peer, solver) -> (coarse, fine, K): at tolerance (adaptive) or step size (fixed) ``x`` the
# relative gradient error is at most ``K * x`` (adaptive) or ``K * x**order`` (fixed), about 3x
# the measured value. Measured: aca dopri5 1.6e-5 / 1.6e-7, aca bosh3 8.9e-4 / 8.9e-6,
# aca adaptive_heun 1.5e-3 / 1.5e-4, mali adaptive_heun 1.5e-3 / 1.6e-5,
# mali midpoint (h = 0.1 / 0.025) 1.6e-2 / 9.7e-4.
BOUNDS = {
    ("aca@torchdiffeqpack", "dopri5"): (1e-5, 1e-7, 5.0),
    ("aca@torchdiffeqpack", "bosh3"): (1e-4, 1e-6, 30.0),
    ("aca@torchdiffeqpack", "adaptive_heun"): (1e-3, 1e-4, 5.0),
    ("mali@torchdiffeqpack", "adaptive_heun"): (1e-3, 1e-5, 5.0),
    ("mali@torchdiffeqpack", "midpoint"): (0.1, 0.025, 5.0),
}


def peer_solver_pairs():
    return [(m, s) for m in PEER_NAMES for s in methods.get(m).solvers()]


def linear_gradient_error(method, solver, x, *, device="cpu", dtype=torch.float64, t_end=2.0):
    """Relative error of (dL/dy0, dL/dA) for L = w . y(T), at tolerance or step size `x`."""
    A, y0, w, gA, gy = linear_problem(device=device, dtype=dtype, T=t_end)
    func = LinearField(A)
    y = y0.clone().requires_grad_(True)
    t = torch.tensor([0.0, t_end], dtype=dtype, device=device)
    if solvers.get(solver).adaptive:
        out = methods.get(method).odeint(func, y, t, solver=solver, rtol=x, atol=x)
    else:
        out = methods.get(method).odeint(func, y, t, solver=solver, options={"step_size": x})
    assert out.shape == (2, *y0.shape) and out.dtype == dtype and out.device == y0.device
    (out[-1] @ w).backward()
    return rel_error(torch.cat([y.grad, func.A.grad.flatten()]), torch.cat([gy, gA.flatten()]))


@pytest.mark.parametrize("method, solver", peer_solver_pairs())
def test_linear_gradient_matches_analytic(method, solver, device):
    coarse_x, fine_x, k = BOUNDS[(method, solver)]
    coarse = linear_gradient_error(method, solver, coarse_x, device=device)
    fine = linear_gradient_error(method, solver, fine_x, device=device)
    assert_converges(solvers.get(solver), coarse, fine, coarse_x, fine_x, k)


@pytest.mark.parametrize("method, solver", peer_solver_pairs())
def test_several_output_times(method, solver):
    """Segment-by-segment solves: the loss may use every output time."""
    A, y0, w, _, _ = linear_problem()
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    A_, y_ = A.clone().requires_grad_(True), y0.clone().requires_grad_(True)
    sum((i + 1) * w @ (torch.linalg.matrix_exp(A_ * ti) @ y_) for i, ti in enumerate(t)).backward()
    func, y = LinearField(A), y0.clone().requires_grad_(True)
    spec = solvers.get(solver)
    _, x, k = BOUNDS[(method, solver)]
    if spec.adaptive:
        out = methods.get(method).odeint(func, y, t, solver=solver, rtol=x, atol=x)
        bound = k * x
    else:
        out = methods.get(method).odeint(func, y, t, solver=solver, options={"step_size": x})
        bound = k * x**spec.order
    assert out.shape == (5, 5)
    assert rel_error(out[0], y0) == 0.0
    sum((i + 1) * w @ out[i] for i in range(len(t))).backward()
    error = rel_error(torch.cat([y.grad, func.A.grad.flatten()]), torch.cat([y_.grad, A_.grad.flatten()]))
    assert error < bound, error


@pytest.mark.parametrize("method", PEER_NAMES)
def test_float32(method):
    solver = methods.get(method).solvers()[-1]
    x = 1e-4 if solvers.get(solver).adaptive else 0.05
    assert linear_gradient_error(method, solver, x, dtype=torch.float32) < 1e-2


def test_peers_registered_when_installed():
    if INSTALLED:
        assert set(peers.PEERS) <= set(methods.names())
        for name in peers.PEERS:
            method = methods.get(name)
            assert method.backend_version == version(peers.BACKEND)
            assert method.solvers() == [s for s in solvers.names() if s in method.solver_map]
    else:
        assert set(peers.PEERS) <= set(methods.unavailable())


@pytest.mark.parametrize(
    "module, reason",
    [(None, "not installed"), (types.ModuleType(peers.BACKEND), "lacks odesolve_adjoint")],
    ids=["missing", "broken"],
)
def test_missing_package_is_unavailable(monkeypatch, module, reason):
    monkeypatch.setitem(sys.modules, peers.BACKEND, module)
    registry = Registry("method")
    peers.register_all(registry)
    assert registry.names() == []
    assert set(registry.unavailable()) == set(peers.PEERS)
    for name in peers.PEERS:
        with pytest.raises(UnavailableError, match=reason):
            registry.get(name)


@pytest.mark.parametrize("method", PEER_NAMES)
def test_refuses_what_torchdiffeqpack_does_not_run(method):
    A, y0, _, _, _ = linear_problem()
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    with pytest.raises(UnsupportedError, match="not supported"):
        methods.get(method).odeint(LinearField(A), y0, t, solver="rk4")
    solver = methods.get(method).solvers()[-1]
    with pytest.raises(UnsupportedError, match="not supported"):
        methods.get(method).odeint(LinearField(A), y0, t, solver=solver, options={"safety": 0.5})


@pytest.mark.parametrize("method", [m for m in PEER_NAMES if methods.get(m).capabilities.adaptive])
def test_step_budget_is_enforced(method):
    """TorchDiffEqPack would jump to t1 after neval_max steps; the wrapper raises instead."""
    A, y0, _, _, _ = linear_problem()
    solver = next(s for s in methods.get(method).solvers() if solvers.get(s).adaptive)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    with pytest.raises(MaxStepsExceeded):
        methods.get(method).odeint(
            LinearField(A),
            y0.clone().requires_grad_(True),
            t,
            solver=solver,
            rtol=1e-8,
            atol=1e-8,
            options={"max_num_steps": 5},
        )


@pytest.mark.parametrize("method", [m for m in PEER_NAMES if methods.get(m).capabilities.fixed_step])
def test_step_size_must_divide_the_interval(method):
    A, y0, _, _, _ = linear_problem()
    solver = next(s for s in methods.get(method).solvers() if not solvers.get(s).adaptive)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    with pytest.raises(UnsupportedError, match="does not divide"):
        methods.get(method).odeint(LinearField(A), y0, t, solver=solver, options={"step_size": 0.3})
