"""diffrax's adjoints (the JAX backend) against the analytic gradient, and their registration.

Measured on the linear task (8-d, output times 0..3, float64), dopri5 at rtol 1e-6 / atol 1e-8:
relative gradient error 8.4e-7 (recursive checkpoint), 4.3e-7 (backsolve); the three adjoints
that differentiate the discrete solve (recursive checkpoint, direct, forward mode) agree to 1e-13.
"""

from __future__ import annotations

import pytest

from odebench import methods, tasks
from odebench.errors import UnavailableError, UnsupportedError
from odebench.jobs.gradient import Case, run_case
from odebench.methods import diffrax_peer
from odebench.registry import Registry

AVAILABLE = set(diffrax_peer.PEERS) <= set(methods.names())
needs_jax = pytest.mark.skipif(
    not AVAILABLE, reason=f"diffrax methods unavailable: {methods.unavailable().get('backsolve@diffrax')}"
)


@pytest.fixture(scope="module")
def linear():
    problem = tasks.get("linear").build(2)
    gy, gp = problem.exact_gradient()
    from odebench.references import flatten

    return problem, flatten(gy, gp)


def _gradient(name, problem, solver="dopri5", *, tol=1e-6, step=None):
    program = methods.get(name).program(
        problem,
        solver=solver,
        rtol=None if step else tol,
        atol=None if step else tol * 1e-2,
        step_size=step,
        max_steps=1000,
    )
    return program.flat_gradient(program.backward(program.forward()), problem.func)


def _rel(a, b) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_missing_backend_is_unavailable_with_the_install_hint(monkeypatch):
    monkeypatch.setattr(
        diffrax_peer, "missing", lambda: "diffrax not installed (pip install 'odebench[jax]')"
    )
    registry = Registry("method")
    diffrax_peer.register_all(registry)
    assert registry.names() == [] and set(registry.unavailable()) == set(diffrax_peer.PEERS)
    for name in diffrax_peer.PEERS:
        with pytest.raises(UnavailableError, match=r"odebench\[jax\]"):
            registry.get(name)


def test_missing_names_absent_packages(monkeypatch):
    import importlib.metadata

    from odebench import jax as backend

    def distribution(name):
        if name == "diffrax":
            raise importlib.metadata.PackageNotFoundError(name)
        return object()

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    assert backend.missing() == "diffrax not installed (pip install 'odebench[jax]')"


@needs_jax
def test_capabilities_solvers_and_refusals():
    assert methods.get("recursive_checkpoint@diffrax").solvers() == [
        "euler",
        "midpoint",
        "heun2",
        "adaptive_heun",
        "bosh3",
        "dopri5",
        "dopri8",
    ]
    assert methods.get("reversible_heun@diffrax").solvers() == ["heun2"]
    problem = tasks.get("linear").build(2)
    y0 = problem.y0.clone().requires_grad_(True)
    with pytest.raises(UnsupportedError, match="compiled JAX program"):
        methods.get("backsolve@diffrax").odeint(problem.func, y0, problem.t)
    with pytest.raises(UnsupportedError, match="solver 'rk4' is not supported by this method; valid: euler"):
        _gradient("backsolve@diffrax", problem, "rk4", step=0.1)


@needs_jax
@pytest.mark.slow
@pytest.mark.parametrize("method", ["recursive_checkpoint@diffrax", "forward@diffrax"])
def test_case_measured_by_the_harness(cache_dir, method):
    """One diffrax case end to end: ok, the analytic gradient to its tolerance, forward
    evaluations counted (dopri5: six a step and one at the start), XLA's memory, compile apart.
    Forward mode's backward is empty: its tangents ride the forward solve."""
    record = run_case(Case(task="linear", method=method, size=2, repeats=1), cache_dir=cache_dir)
    assert record.status == "ok", record.error
    assert record.grad_rel_error < 1e-5 and record.reference_kind == "analytic"
    assert record.nfe_forward == 6 * (record.steps_accepted + record.steps_rejected) + 1
    assert (record.nfe_backward > 0) == (method != "forward@diffrax") and record.vjp_backward is None
    assert record.memory_backend == "xla" and record.peak_memory_bytes > 0
    assert record.compile_time_s > 0 and record.grad_rel_error_discrete is None
    assert record.method_backend == "diffrax" and record.framework == "jax" and record.time_forward_s > 0


@needs_jax
@pytest.mark.slow
def test_discrete_adjoints_agree_and_backsolve_converges(linear):
    """Recursive checkpointing, the direct adjoint and forward mode differentiate the same discrete
    solve: equal to round-off. Each, and backsolve, approaches the analytic gradient as the
    tolerance tightens."""
    problem, exact = linear
    discrete = {
        name: _gradient(name, problem)
        for name in ("recursive_checkpoint@diffrax", "direct@diffrax", "forward@diffrax")
    }
    first = discrete["recursive_checkpoint@diffrax"]
    for name, gradient in discrete.items():
        assert _rel(gradient, first) < 1e-11, name
    for name in ("recursive_checkpoint@diffrax", "backsolve@diffrax"):
        coarse, fine = (_rel(_gradient(name, problem, tol=tol), exact) for tol in (1e-5, 1e-8))
        assert fine < 1e-6 and fine < coarse / 10, name


@needs_jax
@pytest.mark.slow
@pytest.mark.parametrize(
    "name, solver, order",
    [("recursive_checkpoint@diffrax", "euler", 1), ("reversible_heun@diffrax", "heun2", 1)],
)
def test_fixed_step_gradients_converge_at_the_order(linear, name, solver, order):
    """Error ratio between steps 0.1 and 0.025 near 4**order. Reversible Heun's continuous adjoint
    (diffrax's BacksolveAdjoint) converges at first order here: measured 4.6e-2 -> 1.1e-2."""
    problem, exact = linear
    coarse, fine = (_rel(_gradient(name, problem, solver, step=h), exact) for h in (0.1, 0.025))
    assert 4**order / 2 < coarse / fine < 4**order * 2


@needs_jax
@pytest.mark.slow
def test_step_budget_is_a_max_steps_status(cache_dir):
    record = run_case(
        Case(task="spiral", method="backsolve@diffrax", rtol=1e-8, max_steps=5, repeats=1),
        cache_dir=cache_dir,
    )
    assert record.status == "max_steps"
    assert "(5 steps per output interval, 40 in all)" in record.error and "\n" not in record.error
