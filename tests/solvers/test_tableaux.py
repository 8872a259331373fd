"""Every registered tableau: consistent, of its stated order, and integrated alike by the native
core and torchdiffeq (the adaptive ones with any error norm)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torchdiffeq

from odebench import solvers
from odebench.solvers.runge_kutta import integrate
from odebench.solvers.tableau import from_torchdiffeq
from tests.methods.fields import SpiralField


def order_conditions(order: int):
    """``(name, lhs(tab), rhs)`` of the Runge-Kutta order conditions up to order 3."""
    conditions = [("sum b = 1", lambda b, c, a: sum(b), 1.0)]
    if order >= 2:
        conditions.append(("sum b c = 1/2", lambda b, c, a: sum(bi * ci for bi, ci in zip(b, c)), 0.5))
    if order >= 3:
        conditions += [
            ("sum b c^2 = 1/3", lambda b, c, a: sum(bi * ci**2 for bi, ci in zip(b, c)), 1 / 3),
            (
                "sum b a c = 1/6",
                lambda b, c, a: sum(b[i] * sum(a[i][j] * c[j] for j in range(i)) for i in range(len(b))),
                1 / 6,
            ),
        ]
    return conditions


@pytest.mark.parametrize("name", solvers.names())
def test_every_tableau_is_consistent_and_meets_its_order_conditions(name):
    tab = solvers.get(name).tableau
    for i, row in enumerate(tab.a):
        assert math.isclose(sum(row), tab.c[i], abs_tol=1e-12), f"row {i}: c_i != sum_j a_ij"
    for what, lhs, rhs in order_conditions(min(tab.order, 3)):
        assert math.isclose(lhs(tab.b, tab.c, tab.a), rhs, abs_tol=1e-12), what
    if tab.adaptive:
        assert math.isclose(sum(tab.b_error), 0.0, abs_tol=1e-12)  # both solutions are consistent
        assert math.isclose(sum(tab.b_mid), 0.5, abs_tol=1e-12)  # the half step


@pytest.mark.parametrize("name", sorted(solvers.ADAPTIVE))
def test_torchdiffeq_integrates_every_adaptive_tableau_with_the_same_coefficients(name):
    assert from_torchdiffeq(name) == solvers.get(name).tableau


def test_fehlberg3_converges_at_third_order():
    """A 2x smaller step divides the error by about 2^3 (torchdiffeq reuses the last stage as the
    next step's first: the closing f(t1, y1) stage keeps that exact)."""
    field = SpiralField().double()
    y0, t = torch.tensor([[2.0, 0.0]], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    exact = torchdiffeq.odeint(field, y0, t, method="dopri8", rtol=1e-13, atol=1e-13)[-1]
    errors = []
    for h in (0.04, 0.02, 0.01):
        options = {"first_step": h, "max_step": h}
        y = torchdiffeq.odeint(field, y0, t, method="fehlberg3", rtol=1e3, atol=1e3, options=options)[-1]
        errors.append((y - exact).abs().max().item())
    assert all(6.0 < a / b < 10.0 for a, b in itertools.pairwise(errors))


def per_example_l1(scaled_error: torch.Tensor) -> torch.Tensor:
    return scaled_error.abs().sum(-1).max()


@pytest.mark.parametrize("solver", ["fehlberg3", "dopri5"])
def test_an_error_norm_option_drives_the_native_core_as_it_drives_torchdiffeq(solver):
    """The same accepted grid, to the bit, with a per-example L1 norm; and it is another grid than
    the default RMS norm's (the option is not ignored)."""
    from tests.methods.test_core import RecordAccepted

    field = SpiralField().double()
    y0 = torch.tensor([[2.0, 0.0], [0.5, 1.0], [-1.0, 0.3]], dtype=torch.float64)
    t = torch.tensor([0.0, 0.7, 3.0], dtype=torch.float64)
    grids = {}
    for norm in (per_example_l1, None):
        options = {} if norm is None else {"norm": norm}
        recorder = RecordAccepted(field)
        with torch.no_grad():
            torchdiffeq.odeint(recorder, y0, t, method=solver, rtol=0.0, atol=1e-6, options=options)
            _, trajectory = integrate(field, y0, t, solvers.get(solver), 0.0, 1e-6, options)
        assert len(trajectory.steps) == len(recorder.accepted) > 5
        for step, (t0, y, dt) in zip(trajectory.steps, recorder.accepted):
            assert torch.equal(step.t0, t0) and torch.equal(step.dt, dt) and torch.equal(step.y0, y)
        grids[norm] = len(trajectory.steps)
    assert grids[per_example_l1] != grids[None]
