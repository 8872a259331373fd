"""Reversible solvers: McCallum & Foster's reversible Runge-Kutta, reversible Heun, torchsde's peer.

Each is held to the gradient of its own discrete solve (`discrete_solve`), to the analytic
gradient, to its inverse, to the evaluation counts its docstring states, and reversible Heun to
torchsde's implementation of the same scheme.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from odebench import methods, solvers
from odebench.errors import InvalidInputError, UnavailableError, UnsupportedError
from odebench.measure.nfe import CountedField
from odebench.methods import torchsde_peer
from odebench.methods.reversible import Reversible, invert_step, solve, used_stages
from odebench.methods.reversible_heun import invert_heun_step, make_grid
from odebench.methods.reversible_heun import solve as heun_solve
from odebench.registry import Registry
from odebench.solvers.runge_kutta import fixed_grid
from tests.methods.fields import LinearField, MLPField, SpiralField, gradients, linear_problem, rel_error

TORCHSDE = importlib.util.find_spec("torchsde") is not None
needs_torchsde = pytest.mark.skipif(not TORCHSDE, reason="torchsde is not installed")

FIELDS = {
    "spiral": (SpiralField, lambda: torch.tensor([[2.0, 0.0], [0.5, 1.0]], dtype=torch.float64)),
    "mlp": (
        lambda: MLPField(width=8),
        lambda: torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64),
    ),
}
TIMES = {"one_output": [0.0, 1.5], "several_outputs": [0.0, 0.3, 0.31, 1.0, 1.5]}


def solve_and_grad(method, field, times, solver, step_size=None, *, discrete=False, tol=1e-6):
    """The solution and the flattened gradient of ``sum(solution^2)`` (y0 first, then parameters)."""
    make_field, make_y0 = FIELDS[field]
    func, y = make_field(), make_y0().requires_grad_(True)
    t = torch.tensor(TIMES[times] if isinstance(times, str) else times, dtype=torch.float64)
    options = None if step_size is None else {"step_size": step_size}
    m = methods.get(method) if isinstance(method, str) else method
    run = m.discrete_solve if discrete else m.odeint
    out = run(func, y, t, solver=solver, rtol=tol, atol=tol * 1e-2, options=options)
    (out**2).sum().backward()
    return out.detach(), gradients(func, y)


@pytest.mark.parametrize("solver, step_size", [("dopri5", None), ("bosh3", None), ("rk4", 0.05)])
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("times", TIMES)
def test_reversible_is_discrete_exact(solver, step_size, field, times):
    """The gradient is autograd's through the very same coupled steps, to round-off."""
    out, got = solve_and_grad("reversible", field, times, solver, step_size)
    ref_out, expected = solve_and_grad("reversible", field, times, solver, step_size, discrete=True)
    assert torch.equal(out, ref_out)
    assert rel_error(got, expected) <= 1e-10


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("times", TIMES)
def test_reversible_heun_is_discrete_exact(field, times):
    """Outputs inside a step (0.31 at h = 0.05) are interpolated: their cotangents too."""
    out, got = solve_and_grad("reversible_heun", field, times, "heun2", 0.05)
    ref_out, expected = solve_and_grad("reversible_heun", field, times, "heun2", 0.05, discrete=True)
    assert torch.equal(out, ref_out)
    assert rel_error(got, expected) <= 1e-10


def test_coupling_is_the_constructor_argument():
    """The registered solver couples with the paper's 0.999; another coupling is another scheme,
    and still discrete-exact."""
    assert methods.get("reversible").coupling == 0.999
    loose = Reversible(coupling=0.5)
    out, got = solve_and_grad(loose, "spiral", "several_outputs", "rk4", 0.05)
    _, expected = solve_and_grad(loose, "spiral", "several_outputs", "rk4", 0.05, discrete=True)
    default_out, _ = solve_and_grad("reversible", "spiral", "several_outputs", "rk4", 0.05)
    assert rel_error(got, expected) <= 1e-10 and 0 < rel_error(out, default_out) < 1e-3
    for bad in (0.0, 1.0, 1.5, "0.9"):
        with pytest.raises(InvalidInputError, match="coupling"):
            Reversible(coupling=bad)


def linear_error(method, solver, x):
    """Relative error of (dL/dy0, dL/dA) against exp(A T), L = w . y(2), at tolerance or step x."""
    A, y0, w, gA, gy = linear_problem()
    func, y = LinearField(A), y0.clone().requires_grad_(True)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    if solvers.get(solver).adaptive:
        out = methods.get(method).odeint(func, y, t, solver=solver, rtol=x, atol=x)
    else:
        out = methods.get(method).odeint(func, y, t, solver=solver, options={"step_size": x})
    (out[-1] @ w).backward()
    return rel_error(torch.cat([y.grad, func.A.grad.flatten()]), torch.cat([gy, gA.flatten()]))


@pytest.mark.parametrize(
    "method, solver", [("reversible", "rk4"), ("reversible", "midpoint"), ("reversible_heun", "heun2")]
)
def test_fixed_step_gradient_converges_at_the_solver_order(method, solver):
    """A 4x smaller step gains at least 2^order (the base scheme's order is kept)."""
    coarse, fine = linear_error(method, solver, 0.1), linear_error(method, solver, 0.025)
    assert fine < coarse / 2 ** solvers.get(solver).order, (coarse, fine)


@pytest.mark.parametrize("solver", ["dopri5", "bosh3"])
def test_adaptive_gradient_shrinks_with_the_tolerance(solver):
    coarse, fine = linear_error("reversible", solver, 1e-5), linear_error("reversible", solver, 1e-9)
    assert fine < coarse / 10, (coarse, fine)


def test_dopri5_tight_tolerance_is_accurate():
    assert linear_error("reversible", "dopri5", 1e-10) < 1e-6


@pytest.mark.parametrize("solver, options", [("rk4", {"step_size": 0.03}), ("dopri5", {})])
def test_inverse_reconstructs_the_start(solver, options):
    """Inverting every step from the end state, with no restart at outputs, gives y0 back."""
    func, y0 = SpiralField(), FIELDS["spiral"][1]()
    spec = solvers.get(solver)
    with torch.no_grad():
        t = torch.tensor([0.0, 1.5], dtype=torch.float64)
        _, grid = solve(func, y0, t, spec, 0.999, 1e-8, 1e-10, options)
        times = grid.times.unbind()
        y, z = grid.states[-1]
        for n in range(len(times) - 2, -1, -1):
            y, z, *_ = invert_step(func, spec.tableau, 0.999, times[n], times[n + 1], y, z)
    assert len(times) - 1 >= 50
    assert (y - y0).abs().max() < 1e-12 and (z - y0).abs().max() < 1e-12


def test_heun_inverse_reconstructs_the_start():
    func, y0 = SpiralField(), FIELDS["spiral"][1]()
    t = torch.tensor([0.0, 1.5], dtype=torch.float64)
    grid = make_grid(t, 0.03)
    with torch.no_grad():
        _, (y, z, f) = heun_solve(func, y0, t, grid)
        times = grid.times.unbind()
        for n in range(len(times) - 2, -1, -1):
            y, z, f = invert_heun_step(func, times[n], times[n + 1], y, z, f)
    assert len(times) - 1 == 50
    assert (y - y0).abs().max() < 1e-12 and (z - y0).abs().max() < 1e-12


@needs_torchsde
@pytest.mark.parametrize("field", FIELDS)
def test_reversible_heun_matches_torchsde(field):
    """Same scheme, grid and interpolation: the solution to the bit, the gradient to round-off
    (output times on the grid, and a step exact in binary, where torchsde's backward re-gridding
    changes nothing)."""
    times = [0.0, 0.5, 0.75, 1.5]
    out, got = solve_and_grad("reversible_heun", field, times, "heun2", 1 / 32)
    peer_out, expected = solve_and_grad("reversible_heun@torchsde", field, times, "heun2", 1 / 32)
    torch.testing.assert_close(out, peer_out, rtol=1e-10, atol=0)
    assert rel_error(got, expected) <= 1e-10


@needs_torchsde
def test_torchsde_peer_reshapes_the_state():
    """torchsde takes (batch, channels): a 1-d or 3-d state goes through as (1, numel)."""
    A, y0, w, _, _ = linear_problem(dim=4)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    for shape in ((4,), (2, 1, 2)):
        grads = []
        for name in ("reversible_heun", "reversible_heun@torchsde"):
            func = LinearField(A) if shape == (4,) else _Flat(A)
            y = y0.reshape(shape).clone().requires_grad_(True)
            out = methods.get(name).odeint(func, y, t, solver="heun2", options={"step_size": 0.125})
            assert out.shape == (3, *shape)
            (out.reshape(3, -1) @ w).sum().backward()
            grads.append(gradients(func, y))
        assert rel_error(grads[1], grads[0]) <= 1e-10


class _Flat(LinearField):
    """dy/dt = A y on a state of any shape with 4 entries."""

    def forward(self, t, y):
        return (y.reshape(-1) @ self.A.T).reshape(y.shape)


def counts(method, func, y0, t, solver, options, tol=1e-7):
    counted = CountedField(func)
    y = y0.clone().requires_grad_(True)
    with counted.phase("forward"):
        out = methods.get(method).odeint(counted, y, t, solver=solver, rtol=tol, atol=tol, options=options)
    with counted.phase("backward"):
        (out**2).sum().backward()
    return counted.counts


T_COUNTS = torch.tensor([0.0, 0.5, 1.5], dtype=torch.float64)


def test_reversible_fixed_step_counts():
    """rk4 (s = 4), N steps: forward 2sN evaluations, backward 2sN evaluations and VJPs."""
    c = counts("reversible", SpiralField(), FIELDS["spiral"][1](), T_COUNTS, "rk4", {"step_size": 0.1})
    n, s = c["forward"].accepted, 4
    assert n == 15 and c["forward"].rejected == 0
    assert c["forward"].nfe == 2 * s * n
    assert (c["backward"].nfe, c["backward"].vjp) == (2 * s * n, 2 * s * n)


def test_reversible_adaptive_counts():
    """dopri5: s_e = 7 stages for the error-checked half, s_b = 6 for the other; forward
    2 + (s_e + s_b) N + s_e R, backward 2 s_b N evaluations and VJPs."""
    tab = solvers.get("dopri5").tableau
    s_b, s_e = used_stages(tab.b), max(used_stages(tab.b), used_stages(tab.b_error))
    assert (s_b, s_e) == (6, 7)
    c = counts("reversible", SpiralField(), FIELDS["spiral"][1](), T_COUNTS, "dopri5", None)
    n, r = c["forward"].accepted, c["forward"].rejected
    assert n > 20 and r > 0
    assert c["forward"].nfe == 2 + (s_e + s_b) * n + s_e * r
    assert (c["backward"].nfe, c["backward"].vjp) == (2 * s_b * n, 2 * s_b * n)


def test_reversible_heun_counts():
    """N steps: forward N + 1 evaluations, backward N + 1 evaluations and N + 1 VJPs."""
    c = counts("reversible_heun", SpiralField(), FIELDS["spiral"][1](), T_COUNTS, "heun2", {"step_size": 0.1})
    n = c["forward"].accepted
    assert n == 15 and c["forward"].nfe == n + 1
    assert (c["backward"].nfe, c["backward"].vjp) == (n + 1, n + 1)


@needs_torchsde
def test_torchsde_peer_counts():
    """torchsde: forward N + 2 (one shape check), backward 2N evaluations and N + 1 VJPs, with a
    step exact in binary (h = 0.1 adds a sliver step where torchsde's backward accumulates
    -1.5 + 10 h to just short of -0.5: then 2N + 2 and N + 2)."""
    y0, options = FIELDS["spiral"][1](), {"step_size": 0.125}
    c = counts("reversible_heun@torchsde", SpiralField(), y0, T_COUNTS, "heun2", options)
    n = len(fixed_grid(T_COUNTS, 0.125)) - 1
    assert n == 12 and c["forward"].nfe == n + 2
    assert (c["backward"].nfe, c["backward"].vjp) == (2 * n, n + 1)


@pytest.mark.parametrize("name", ["reversible", "reversible_heun", "reversible_heun@torchsde"])
def test_memory_class_is_flat(name):
    if name not in methods.names():
        pytest.skip(methods.unavailable()[name])
    assert methods.get(name).capabilities.memory_in_steps == "flat"


@pytest.mark.parametrize("name", ["reversible_heun", "reversible_heun@torchsde"])
def test_reversible_heun_answers_to_heun2_only(name):
    if name not in methods.names():
        pytest.skip(methods.unavailable()[name])
    assert methods.get(name).solvers() == ["heun2"]
    func, y0 = SpiralField(), FIELDS["spiral"][1]()
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(UnsupportedError, match="valid: heun2"):
        methods.get(name).odeint(func, y0, t, solver="rk4", options={"step_size": 0.1})
    with pytest.raises(UnsupportedError, match="not supported"):
        methods.get(name).odeint(func, y0, t, solver="heun2", options={"step_size": 0.1, "safety": 0.5})


@needs_torchsde
def test_torchsde_peer_needs_a_step_size():
    func, y0 = SpiralField(), FIELDS["spiral"][1]()
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(UnsupportedError, match="step_size"):
        methods.get("reversible_heun@torchsde").odeint(func, y0, t, solver="heun2")


def test_missing_torchsde_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchsde", None)
    registry = Registry("method")
    torchsde_peer.register_all(registry)
    assert registry.names() == [] and set(registry.unavailable()) == set(torchsde_peer.PEERS)
    with pytest.raises(UnavailableError, match="not installed"):
        registry.get("reversible_heun@torchsde")
