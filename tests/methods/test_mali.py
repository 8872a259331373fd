"""Native MALI: discrete-exact, second order, the peer's solve on a fixed grid, its exact counts.

Measured (torch 2.13, CPU): against autograd through its own steps 1e-16 to 5e-16 (float64);
against ``mali@torchdiffeqpack`` on t = [0, 1], h = 1/16 the same solution bitwise and the
gradient to 1.7e-17 (float64) and 4e-9 (float32); on `linear_problem` the gradient error is
1.57e-2 at h = 0.1 and shrinks 4.0x per halving, and is 1.6 tol with adaptive steps.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from odebench import methods
from odebench.errors import MaxStepsExceeded, UnsupportedError
from odebench.measure import measure_peak
from odebench.measure.memory import backend_for
from odebench.measure.nfe import CountedField
from odebench.methods.mali import MALI
from tests.methods.fields import LinearField, MLPField, SpiralField, gradients, linear_problem, rel_error

PEER = "mali@torchdiffeqpack"
SOLVES = {"midpoint": {"options": {"step_size": 0.05}}, "adaptive_heun": {"rtol": 1e-5, "atol": 1e-7}}
TIMES = {"one_output": [0.0, 1.5], "several_outputs": [0.0, 0.3, 0.31, 1.0, 1.5]}
FIELDS = {"spiral": SpiralField, "mlp": MLPField}


def y0_for(device, dtype=torch.float64):
    y0 = torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return y0.to(device, dtype)


def solve_and_grad(method, func, y0, t, **kwargs):
    y = y0.clone().requires_grad_(True)
    out = methods.get(method).odeint(func, y, t, **kwargs)
    (out**2).sum().backward()
    return out.detach(), gradients(func, y)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("solver", SOLVES)
@pytest.mark.parametrize("times", TIMES)
def test_gradient_is_that_of_the_discrete_solve(field, solver, times, device):
    """Reconstructing each step by inverting ALF reproduces autograd through the same steps."""
    t = torch.tensor(TIMES[times], dtype=torch.float64, device=device)
    y0 = y0_for(device)
    kwargs = dict(SOLVES[solver], solver=solver)
    func = FIELDS[field](device=device)
    out, got = solve_and_grad("mali", func, y0, t, **kwargs)
    func = FIELDS[field](device=device)
    y = y0.clone().requires_grad_(True)
    kwargs.setdefault("rtol", None)
    kwargs.setdefault("atol", None)
    kwargs.setdefault("options", None)
    reference = MALI().discrete_solve(func, y, t, **kwargs)
    (reference**2).sum().backward()
    assert torch.equal(out, reference.detach())
    assert rel_error(got, gradients(func, y)) <= 1e-10


def linear_gradient_error(x, solver, dtype=torch.float64):
    A, y0, w, gA, gy = linear_problem(dtype=dtype)
    func, y = LinearField(A), y0.clone().requires_grad_(True)
    t = torch.tensor([0.0, 2.0], dtype=dtype)
    if solver == "midpoint":
        out = methods.get("mali").odeint(func, y, t, solver=solver, options={"step_size": x})
    else:
        out = methods.get("mali").odeint(func, y, t, solver=solver, rtol=x, atol=x)
    (out[-1] @ w).backward()
    return rel_error(torch.cat([y.grad, func.A.grad.flatten()]), torch.cat([gy, gA.flatten()]))


def test_second_order_in_the_step_size():
    """ALF is second order: halving h divides the gradient error by about 4 (measured 4.0)."""
    errors = [linear_gradient_error(h, "midpoint") for h in (0.1, 0.05, 0.025)]
    assert errors[0] < 0.05, errors
    for coarse, fine in itertools.pairwise(errors):
        assert 3.5 < coarse / fine < 4.5, errors


def test_adaptive_error_follows_the_tolerance():
    """Measured 1.6 tol at tol = 1e-3 and 1e-5."""
    coarse, fine = linear_gradient_error(1e-3, "adaptive_heun"), linear_gradient_error(1e-5, "adaptive_heun")
    assert coarse < 5e-3 and fine < 5e-5, (coarse, fine)


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
def test_matches_the_peer_on_a_fixed_grid(dtype, bound):
    """Times and steps exact in float32 (TorchDiffEqPack's time dtype): the same solve."""
    if PEER not in methods.names():
        pytest.skip(f"{PEER} unavailable: {methods.unavailable().get(PEER)}")
    y0, t = y0_for("cpu", dtype), torch.tensor([0.0, 1.0], dtype=dtype)
    kwargs = {"solver": "midpoint", "options": {"step_size": 1 / 16}}
    out, got = solve_and_grad("mali", MLPField(dtype=dtype), y0, t, **kwargs)
    peer_out, expected = solve_and_grad(PEER, MLPField(dtype=dtype), y0, t, **kwargs)
    assert rel_error(out, peer_out) <= bound
    assert rel_error(got, expected) <= bound


def counts(solver, **kwargs):
    func = CountedField(SpiralField())
    y = y0_for("cpu").requires_grad_(True)
    t = torch.tensor([0.0, 0.5, 1.5], dtype=torch.float64)
    out = methods.get("mali").odeint(func, y, t, solver=solver, **kwargs)
    with func.phase("backward"):
        (out**2).sum().backward()
    return func.counts


def test_counts_on_the_fixed_grid():
    """N steps: forward N + 1 evaluations (v0 = f(t0, y0), one per step); backward one per step,
    which inverts the step and gives its VJP, and one at (t0, y0) for v0's: N + 1 and N + 1."""
    c = counts("midpoint", options={"step_size": 0.1})
    n = 15
    assert c["forward"].accepted == c["forward"].steps == n
    assert c["forward"].nfe == n + 1
    assert (c["backward"].nfe, c["backward"].vjp) == (n + 1, n + 1)


def test_counts_with_adaptive_steps():
    """A attempted, N accepted: forward A + 2 (v0, the initial step selection, one per attempt);
    backward N + 1 evaluations and VJPs, as on the fixed grid; rejected trials cost nothing."""
    c = counts("adaptive_heun", rtol=1e-5, atol=1e-7)
    attempted, accepted = c["forward"].steps, c["forward"].accepted
    assert accepted > 20 and c["forward"].rejected > 0
    assert c["forward"].nfe == attempted + 2
    assert (c["backward"].nfe, c["backward"].vjp) == (accepted + 1, accepted + 1)
    given = counts("adaptive_heun", rtol=1e-5, atol=1e-7, options={"first_step": 0.01})
    assert given["forward"].nfe == given["forward"].steps + 1


@pytest.mark.skipif(backend_for("cpu") == "unavailable", reason="no memory backend")
def test_memory_is_flat_in_the_steps():
    """8x the steps: no state per step. Measured in tensor bytes on a 512 x 2 state (8 KiB):
    peaks of 515 and 520 KiB at 32 and 256 steps, 24 bytes a step (three float64 scalars),
    against 8,192 for one state a step."""
    func = MLPField(width=32)
    y0 = torch.randn(512, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)

    def run(h):
        y = y0.clone().requires_grad_(True)
        out = methods.get("mali").odeint(func, y, t, solver="midpoint", options={"step_size": h})
        torch.autograd.grad(out.square().sum(), [y, *func.parameters()], allow_unused=True)

    peaks = []
    for h in (1 / 32, 1 / 256):
        run(h)
        peaks.append(measure_peak(lambda h=h: run(h)).peak_bytes)
    assert (peaks[1] - peaks[0]) / 224 < 0.05 * y0.numel() * 8, peaks


def test_refuses_other_solvers_and_options():
    A, y0, _, _, _ = linear_problem()
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    mali = methods.get("mali")
    assert mali.solvers() == ["midpoint", "adaptive_heun"]
    with pytest.raises(UnsupportedError, match="valid: midpoint, adaptive_heun"):
        mali.odeint(LinearField(A), y0, t, solver="dopri5")
    with pytest.raises(UnsupportedError, match="not supported"):
        mali.odeint(LinearField(A), y0, t, solver="midpoint", options={"interp": "cubic"})
    with pytest.raises(UnsupportedError, match="positive"):
        mali.odeint(LinearField(A), y0, t, solver="midpoint", options={"step_size": -0.1})


def test_step_budget_and_trivial_solve():
    A, y0, _, _, _ = linear_problem()
    mali = methods.get("mali")
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    with pytest.raises(MaxStepsExceeded):
        mali.odeint(LinearField(A), y0, t, solver="adaptive_heun", options={"max_num_steps": 5})
    y = y0.clone().requires_grad_(True)
    out = mali.odeint(LinearField(A), y, t[:1], solver="midpoint")
    out.sum().backward()
    assert torch.equal(out[0], y0) and torch.equal(y.grad, torch.ones_like(y0))


def test_unused_parameters_and_float32():
    func = MLPField()
    y = torch.tensor([[0.5, -0.2]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    methods.get("mali").odeint(func, y, t, solver="adaptive_heun").sum().backward()
    assert func.unused.grad is None or torch.count_nonzero(func.unused.grad) == 0
    for p in func.net.parameters():
        assert torch.count_nonzero(p.grad) == p.numel()
    assert linear_gradient_error(1e-4, "adaptive_heun", dtype=torch.float32) < 1e-3
