"""Methods with a memory budget or an option: binomial checkpointing, the checkpointed adjoint,
forward mode, and the ``name:value`` spelling of an option."""

from __future__ import annotations

import math
from functools import cache

import pytest
import torch

from odebench import methods, solvers
from odebench.errors import InvalidInputError, UnsupportedError
from odebench.measure.nfe import CountedField
from odebench.methods.backsolve_checkpointed import checkpoint_times
from odebench.methods.checkpointed import recomputations
from tests.methods.fields import LinearField, MLPField, gradients, linear_problem, rel_error


@cache
def fewest_advances(steps: int, slots: int) -> int:
    """Brute force over every first split: the fewest step advances that reverse `steps` steps
    from a stored start with `slots` more checkpoints."""
    if steps <= 1:
        return 0
    if slots == 0:
        return steps * (steps - 1) // 2
    return min(m + fewest_advances(steps - m, slots - 1) + fewest_advances(m, slots) for m in range(1, steps))


def test_closed_form_is_the_optimum():
    """Griewank & Walther's closed form equals the brute-force optimum."""
    for steps in range(1, 90):
        for slots in range(5):
            assert recomputations(steps, slots) == fewest_advances(steps, slots), (steps, slots)


def solve(name, solver="rk4", step_size=1 / 40, t_end=1.0):
    func = CountedField(MLPField(width=8))
    y = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.35, t_end], dtype=torch.float64)
    options = {"step_size": step_size} if not solvers.get(solver).adaptive else None
    out = methods.get(name).odeint(func, y, t, solver=solver, rtol=1e-10, atol=1e-10, options=options)
    with func.phase("backward"):
        (out**2).sum().backward()
    return gradients(func, y), func.counts


@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
@pytest.mark.parametrize("slots", [0, 2, 5])
def test_recomputation_follows_the_schedule(solver, slots):
    """Same gradient as ACA to the bit; the backward pass spends exactly ACA's evaluations plus
    T(N, K) step advances of ``s`` (fixed) or ``s - 1`` (adaptive, first stage carried)
    evaluations each, plus, adaptive, the first stage f(t0, y0) once."""
    aca, aca_counts = solve("aca", solver)
    got, counts = solve(f"checkpointed:{slots}", solver)
    assert torch.equal(got, aca)
    steps = counts["forward"].accepted
    spec = solvers.get(solver)
    per_advance = spec.tableau.stages - int(spec.adaptive)
    expected = recomputations(steps, slots) * per_advance + int(spec.adaptive)
    assert steps > 10
    assert counts["backward"].nfe - aca_counts["backward"].nfe == expected
    assert counts["backward"].vjp == aca_counts["backward"].vjp


def test_checkpointed_keeps_at_most_its_slots():
    """Peak memory over 4x the steps does not grow by a state per step (revolve keeps K + 1
    states at most); ACA's does."""
    from odebench.measure import measure_peak

    def peak(name, steps):
        func = MLPField(dim=64, width=64)
        y = torch.randn(64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        t = torch.tensor([0.0, 1.0], dtype=torch.float64)

        def run():
            y0 = y.clone().requires_grad_(True)
            out = methods.get(name).odeint(func, y0, t, solver="rk4", options={"step_size": 1 / steps})
            out[-1].pow(2).sum().backward()

        run()
        return measure_peak(run, "cpu").peak_bytes

    state = 64 * 64 * 8
    for name, grows in (("checkpointed:4", False), ("aca", True)):
        growth = (peak(name, 160) - peak(name, 40)) / 120
        assert (growth > 0.9 * state) == grows, (name, growth / state)


def test_checkpoint_times_sit_on_a_fixed_grid():
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    inner = checkpoint_times(t, 3, solvers.get("rk4"), {"step_size": 0.1})
    assert torch.allclose(inner / 0.1, (inner / 0.1).round()) and len(inner) == 3
    assert len(checkpoint_times(t, 3, solvers.get("rk4"), None)) == 0
    assert torch.allclose(
        checkpoint_times(t, 3, solvers.get("dopri5"), None), torch.tensor([0.25, 0.5, 0.75]).double()
    )


def test_checkpointed_adjoint_without_checkpoints_is_the_adjoint():
    plain, _ = solve("adjoint", "dopri5")
    got, _ = solve("backsolve_checkpointed:0", "dopri5")
    assert torch.equal(got, plain)


def test_restarting_from_stored_states_repairs_a_chaotic_backward_solve():
    """Lorenz-63 over one time unit at tolerance 1e-6: the plain adjoint's backward
    reconstruction drifts off the forward trajectory (measured error 0.41 against the discrete
    gradient); restarting from 20 stored forward states brings it to 3.9e-6."""
    from odebench import tasks

    problem = tasks.get("lorenz63").build(1)
    grads = {}
    for name in ("aca", "adjoint", "backsolve_checkpointed:20"):
        y0 = problem.y0.detach().clone().requires_grad_(True)
        out = methods.get(name).odeint(problem.func, y0, problem.t, rtol=1e-6, atol=1e-6)
        parts = torch.autograd.grad(problem.loss(out), [y0, *problem.func.parameters()])
        grads[name] = torch.cat([g.flatten() for g in parts])
    rel = {name: rel_error(g, grads["aca"]) for name, g in grads.items()}
    assert rel["adjoint"] > 0.1
    assert rel["backsolve_checkpointed:20"] < 1e-4


def test_forward_mode_refuses_many_directions_and_names_the_option():
    A, y0, *_ = linear_problem(dim=5)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(UnsupportedError, match=r"30 here, above its limit of 20 .*forward:30"):
        methods.get("forward:20").odeint(LinearField(A), y0.requires_grad_(True), t)


def test_option_spelling():
    assert methods.get("checkpointed:3").checkpoints == 3
    assert methods.get("checkpointed:3") is methods.get("checkpointed:3")
    assert methods.get("checkpointed").checkpoints == methods.get("checkpointed").option.default
    with pytest.raises(
        InvalidInputError, match=r"'naive' takes no option; methods with an option: checkpointed"
    ):
        methods.get("naive:3")
    with pytest.raises(InvalidInputError, match=r"integer >= 0, e\.g\. checkpointed:8"):
        methods.get("checkpointed:-1")
    assert methods.order_key("checkpointed:2") < methods.order_key("checkpointed:16")
    assert methods.order_key("naive") < methods.order_key("checkpointed:2")
    assert math.isfinite(methods.order_key("unknown@peer")[0])
