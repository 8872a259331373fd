"""Every registered method against analytic and discrete-exact gradients.

Parametrised over the registries: a method or solver is tested the moment it is registered.
Peers from other packages are held to their own bounds in their own test files.
"""

from __future__ import annotations

import pytest
import torch

from odebench import methods, solvers
from odebench.methods import CORE
from odebench.solvers.runge_kutta import integrate
from tests.methods.fields import LinearField, MLPField, SpiralField, gradients, linear_problem, rel_error

#: Methods odebench implements itself or through torchdiffeq (peers: their own test files).
OURS = [n for n in methods.names() if methods.get(n).capabilities.backend in ("odebench", "torchdiffeq")]
NATIVE_ODEBENCH = [n for n in OURS if methods.get(n).capabilities.backend == "odebench"]
#: Native methods that take torchdiffeq's accepted steps (the others have their own schemes).
ON_TORCHDIFFEQ_GRID = [n for n in NATIVE_ODEBENCH if methods.get(n).capabilities.torchdiffeq_grid]
EXACT = [n for n in OURS if methods.get(n).capabilities.exact_discrete_gradient]
WITH_DOPRI5 = [n for n in OURS if methods.get(n).supports("dopri5")]


#: The solver every method is checked with in the default run; a method whose backward pass
#: costs a solve per input (forward mode) meets the others in the slow tier (`make test-slow`).
EVERYDAY_SOLVER = "dopri5"


def pays_per_input(method: str) -> bool:
    return methods.get(method).capabilities.cost_per_input


def many_steps(solver: str) -> bool:
    """Low-order adaptive pairs: hundreds of steps per digit of tolerance."""
    spec = solvers.get(solver)
    return spec.adaptive and spec.order <= 3


def tiered(method: str, solver: str, *rest):
    """The parameter set, marked slow where the method pays per input and the solver is not the
    everyday one, and where a method beyond the core five meets a low-order adaptive solver."""
    slow = (pays_per_input(method) and solver != EVERYDAY_SOLVER) or (
        method not in CORE and many_steps(solver)
    )
    return pytest.param(method, solver, *rest, marks=[pytest.mark.slow] if slow else [])


def tiered_methods(names):
    """Each method, marked slow where it pays per input (its checks beyond the analytic and
    discrete-exact ones run in the slow tier)."""
    return [pytest.param(m, marks=[pytest.mark.slow] if pays_per_input(m) else []) for m in names]


def method_solver_pairs():
    return [tiered(m, s) for m in OURS for s in solvers.names() if methods.get(m).supports(s)]


def linear_gradient_error(method, solver, device, *, tol=None, step_size=None, dtype=torch.float64):
    A, y0, w, gA, gy = linear_problem(device=device, dtype=dtype)
    func = LinearField(A)
    y = y0.clone().requires_grad_(True)
    t = torch.tensor([0.0, 2.0], dtype=dtype, device=device)
    options = None if step_size is None else {"step_size": step_size}
    kwargs = {} if tol is None else {"rtol": tol, "atol": tol}
    out = methods.get(method).odeint(func, y, t, solver=solver, options=options, **kwargs)
    (out[-1] @ w).backward()
    return rel_error(torch.cat([y.grad, func.A.grad.flatten()]), torch.cat([gy, gA.flatten()]))


@pytest.mark.parametrize("method, solver", method_solver_pairs())
def test_linear_gradient_converges_to_analytic(method, solver, device):
    """The error against exp(A T) shrinks with the tolerance (adaptive), or at the solver's
    order with the step (fixed: a 4x smaller step gains at least 2^order)."""
    spec = solvers.get(solver)
    if spec.adaptive:
        # Low-order pairs need far more steps per digit: keep their tolerances loose.
        coarse_tol, fine_tol = (1e-5, 1e-9) if spec.order >= 3 else (1e-3, 1e-6)
        coarse = linear_gradient_error(method, solver, device, tol=coarse_tol)
        fine = linear_gradient_error(method, solver, device, tol=fine_tol)
        assert fine < coarse / 10, (coarse, fine)
    else:
        coarse = linear_gradient_error(method, solver, device, step_size=0.1)
        fine = linear_gradient_error(method, solver, device, step_size=0.025)
        assert fine < coarse / 2**spec.order, (coarse, fine)


@pytest.mark.parametrize("method", tiered_methods(WITH_DOPRI5))
def test_dopri5_tight_tolerance_is_accurate(method, device):
    assert linear_gradient_error(method, "dopri5", device, tol=1e-10) < 1e-6


def solve_and_grad(method, func, y0, t, solver, options, tol=1e-6):
    y = y0.clone().requires_grad_(True)
    out = methods.get(method).odeint(func, y, t, solver=solver, rtol=tol, atol=tol * 1e-2, options=options)
    (out**2).sum().backward()
    return gradients(func, y)


def discrete_exact(method, make_field, y0, t, solver, options, tol=1e-6):
    """Autograd through the method's own discrete solve (for methods on torchdiffeq's grid, the
    very steps the native integrator takes)."""
    func = make_field()
    y = y0.clone().requires_grad_(True)
    solution = methods.get(method).discrete_solve(
        func, y, t, solver=solver, rtol=tol, atol=tol * 1e-2, options=options
    )
    (solution**2).sum().backward()
    return gradients(func, y)


FIELDS = {
    "spiral": (
        lambda d: SpiralField(device=d),
        lambda d: torch.tensor([[2.0, 0.0], [0.5, 1.0]], dtype=torch.float64, device=d),
    ),
    "mlp": (
        lambda d: MLPField(width=4, device=d),  # few parameters: forward mode solves once per entry
        lambda d: torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(d),
    ),
}


def needs(method: str, solver: str) -> bool:
    """adaptive_heun and heun2 stand for the schemes of methods that take no dopri5 (MALI,
    reversible Heun); the methods that take every tableau meet the others."""
    return solver not in ("adaptive_heun", "heun2") or not methods.get(method).supports("dopri5")


SOLVER_CASES = [
    ("dopri5", None),
    ("bosh3", None),
    ("dopri8", None),
    ("adaptive_heun", None),
    ("rk4", 0.05),
    ("midpoint", 0.05),
    ("heun2", 0.05),
]
TIMES = {"one_output": [0.0, 1.5], "several_outputs": [0.0, 0.3, 0.31, 1.0, 1.5]}


@pytest.mark.parametrize(
    "method, solver, step_size",
    [tiered(m, s, h) for m in EXACT for s, h in SOLVER_CASES if methods.get(m).supports(s) and needs(m, s)],
)
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("times", TIMES)
def test_exact_methods_equal_discrete_exact_gradient(method, solver, step_size, field, times, device):
    make_field, make_y0 = FIELDS[field]
    y0 = make_y0(device)
    t = torch.tensor(TIMES[times], dtype=torch.float64, device=device)
    options = None if step_size is None else {"step_size": step_size}
    tol = 1e-3 if solvers.get(solver).order < 3 else 1e-6  # low order: hundreds of steps already
    if method == "naive" and solvers.get(solver).adaptive:
        # Naive also differentiates torchdiffeq's initial step-size selection; with the first
        # step given, its grid is fixed and it must be discrete-exact too.
        with torch.no_grad():
            _, tr = integrate(make_field(device), y0, t, solvers.get(solver), tol, tol * 1e-2, None)
        options = {"first_step": tr.steps[0].dt.item()}
    expected = discrete_exact(method, lambda: make_field(device), y0, t, solver, options, tol)
    got = solve_and_grad(method, make_field(device), y0, t, solver, options, tol)
    assert rel_error(got, expected) <= 1e-10


def test_naive_differentiates_the_initial_step_selection():
    """Without a given first step, naive's gradient includes d(h0)/d(theta): a real, small gap."""
    y0 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([0.0, 1.5], dtype=torch.float64)
    expected = discrete_exact("aca", SpiralField, y0, t, "dopri5", None)
    got = solve_and_grad("naive", SpiralField(), y0, t, "dopri5", None)
    assert 1e-12 < rel_error(got, expected) < 1e-4


@pytest.mark.parametrize("method", ON_TORCHDIFFEQ_GRID)
@pytest.mark.parametrize("solver", ["dopri5", "bosh3", "dopri8"])
def test_native_forward_takes_torchdiffeq_steps(method, solver):
    """Same accepted and rejected steps, hence the same forward NFE, as naive (torchdiffeq)."""
    from odebench.measure.nfe import CountedField

    y0 = torch.tensor([[2.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    t = torch.tensor([0.0, 0.7, 3.0], dtype=torch.float64)
    counts = {}
    for name in ("naive", method):
        func = CountedField(SpiralField())
        methods.get(name).odeint(func, y0, t, solver=solver, rtol=1e-7, atol=1e-9)
        counts[name] = func.counts["forward"]
    assert counts[method] == counts["naive"]
    assert counts[method].nfe > 50 and counts[method].rejected > 0


class RecordAccepted(torch.nn.Module):
    """A field that records the accepted steps torchdiffeq reports: (t0, y0, dt)."""

    def __init__(self, func):
        super().__init__()
        self.func, self.accepted = func, []

    def forward(self, t, y):
        return self.func(t, y)

    def callback_accept_step(self, t0, y0, dt):
        self.accepted.append((t0.clone(), y0.clone(), dt.clone()))


@pytest.mark.parametrize("solver", sorted(solvers.ADAPTIVE))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("field", ["spiral", "mlp"])
def test_native_grid_is_bitwise_torchdiffeqs(solver, dtype, field):
    """Every accepted step starts at the same time and state, with the same size, to the bit:
    the native integrator computes what torchdiffeq computes, in the same order."""
    import torchdiffeq

    make_field, make_y0 = FIELDS[field]
    func = make_field("cpu").to(dtype)
    y0 = make_y0("cpu").to(dtype)
    t = torch.tensor([0.0, 0.7, 3.0], dtype=dtype)
    tol = 1e-7 if dtype == torch.float64 else 1e-5
    if solvers.get(solver).order < 3:  # thousands of steps otherwise
        tol = max(tol, 1e-4)
    recorder = RecordAccepted(func)
    with torch.no_grad():
        torchdiffeq.odeint(recorder, y0, t, method=solver, rtol=tol, atol=tol * 1e-2)
        _, trajectory = integrate(func, y0, t, solvers.get(solver), tol, tol * 1e-2)
    assert len(trajectory.steps) == len(recorder.accepted) > 5
    for step, (t0, y, dt) in zip(trajectory.steps, recorder.accepted):
        assert torch.equal(step.t0, t0) and torch.equal(step.dt, dt) and torch.equal(step.y0, y)


def backward_counts(method, func, y0, t, solver="dopri5", tol=1e-7):
    from odebench.measure.nfe import CountedField

    counted = CountedField(func)
    y = y0.clone().requires_grad_(True)
    with counted.phase("forward"):
        out = methods.get(method).odeint(counted, y, t, solver=solver, rtol=tol, atol=tol)
        loss = (out**2).sum()
    with counted.phase("backward"):
        loss.backward()
    return counted.counts


@pytest.mark.parametrize("solver", ["dopri5", "rk4"])
def test_checkpointed_backward_counts(solver):
    """ACA replays the stages a step's end depends on: s-1 per adaptive (first-same-as-last) step,
    the first of them recomputed from the step's state, s per fixed step; the symplectic adjoint
    recomputes all but the last of them without a graph, then re-evaluates each for its VJP.
    The adaptive solve adds one evaluation at the end state, for the last output's share of the
    last step's final stage (the stage the next step would have reused)."""
    from odebench.measure.nfe import CountedField

    y0 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([0.0, 0.5, 1.5], dtype=torch.float64)
    s = solvers.get(solver).tableau.stages
    options = None if solvers.get(solver).adaptive else {"step_size": 0.1}
    per_step = s - 1 if solvers.get(solver).adaptive else s
    last = 1 if solvers.get(solver).adaptive else 0
    results = {}
    for method in ("aca", "symplectic"):
        func = CountedField(SpiralField())
        y = y0.clone().requires_grad_(True)
        out = methods.get(method).odeint(func, y, t, solver=solver, rtol=1e-7, atol=1e-9, options=options)
        with func.phase("backward"):
            (out**2).sum().backward()
        results[method] = func.counts
    steps = results["aca"]["forward"].accepted
    assert steps == results["symplectic"]["forward"].accepted > 5
    aca, sym = results["aca"]["backward"], results["symplectic"]["backward"]
    assert (aca.nfe, aca.vjp) == (steps * per_step + last, steps * per_step + last)
    assert (sym.nfe, sym.vjp) == (steps * (2 * per_step - 1) + last, steps * per_step + last)


def test_seminorm_needs_fewer_backward_evaluations():
    """Kidger et al. 2020 report a median of 40% fewer backward NFE on many-parameter fields.

    Measured here on this MLP: 36% fewer at T = 5, tol 1e-8, but 4-24% *more* at T = 1,
    where the backward solve is short and the parameter adjoints do not yet limit the step.
    """
    y0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.tensor([0.0, 5.0], dtype=torch.float64)
    nfe = {}
    for method in ("adjoint", "seminorm"):
        nfe[method] = backward_counts(method, MLPField(width=32), y0, t, tol=1e-8)["backward"].nfe
    reduction = 1 - nfe["seminorm"] / nfe["adjoint"]
    print(f"backward NFE adjoint={nfe['adjoint']} seminorm={nfe['seminorm']} reduction={reduction:.0%}")
    assert reduction > 0.3


@pytest.mark.parametrize("method", tiered_methods(WITH_DOPRI5))
def test_gradcheck(method, device):
    A, y0, _, _, _ = linear_problem(dim=3, device=device)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64, device=device)

    func = LinearField(A)

    def solve(y):
        return methods.get(method).odeint(func, y, t, solver="dopri5", rtol=1e-11, atol=1e-11)

    # With respect to y0; the parameters are covered by the analytic tests above.
    y = y0.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(solve, (y,), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method", tiered_methods(WITH_DOPRI5))
def test_unused_parameters_get_zero_gradient(method):
    func = MLPField()
    y = torch.tensor([[0.5, -0.2]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    methods.get(method).odeint(func, y, t, rtol=1e-6, atol=1e-8).sum().backward()
    assert func.unused.grad is None or torch.count_nonzero(func.unused.grad) == 0
    for p in func.net.parameters():  # every used weight gets a gradient
        assert torch.count_nonzero(p.grad) == p.numel()


@pytest.mark.parametrize("method", tiered_methods(WITH_DOPRI5))
def test_float32(method, device):
    err = linear_gradient_error(method, "dopri5", device, tol=1e-5, dtype=torch.float32)
    assert err < 1e-3


@pytest.mark.parametrize("name", tiered_methods(WITH_DOPRI5))
def test_a_kept_trajectory_is_the_native_integrators_grid(name):
    """The discrete-exact check reuses the grid a stepwise solve kept instead of solving again;
    that grid must be the one the native integrator takes (with its states, where it keeps them).
    A method that keeps none says so (`trajectory_of` is None); only native methods on
    torchdiffeq's grid keep one."""
    from odebench import tasks
    from odebench.methods.stepwise import trajectory_of

    problem = tasks.get("spiral").build(1)
    y0 = problem.y0.clone().requires_grad_(True)
    kept = trajectory_of(methods.get(name).odeint(problem.func, y0, problem.t, rtol=1e-5, atol=1e-7))
    assert (kept is not None) == (name in ON_TORCHDIFFEQ_GRID)
    if kept is None:
        return
    with torch.no_grad():
        _, fresh = integrate(problem.func, problem.y0, problem.t, solvers.get("dopri5"), 1e-5, 1e-7)
    assert len(kept.steps) == len(fresh.steps) > 10
    for a, b in zip(kept.steps, fresh.steps):
        assert torch.equal(a.t0, b.t0) and torch.equal(a.dt, b.dt)
        assert a.y0 is None or torch.equal(a.y0, b.y0)
    assert trajectory_of(methods.get("naive").odeint(problem.func, y0, problem.t)) is None
