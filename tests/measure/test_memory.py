"""Peak-memory measurement: what it counts, and the memory shapes the methods are known for.

Allocation counts are deterministic, so the shapes are asserted: every method's peak grows with
the number of steps as its `Capabilities.memory_in_steps` declares (backprop through the solver
and ACA linearly, the adjoint, the reversible schemes and bounded checkpointing not at all), with
magnitudes checked where they are known.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
from torch import nn

from odebench import methods
from odebench.errors import InvalidInputError, UnsupportedError
from odebench.measure import memory
from odebench.measure.memory import backend_for, measure_peak, track_peak
from odebench.measure.timing import torch_threads

MB = 2**20
has_memray = pytest.mark.skipif(memory.memray is None, reason="memray is not installed")
needs_cuda = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


def test_backend_for():
    allocator = "allocator" if torch.autograd.kineto_available() else None
    assert backend_for("cpu") == (allocator or ("memray" if memory.memray is not None else "unavailable"))
    assert backend_for("meta") == "unavailable"
    if torch.cuda.is_available():
        assert backend_for("cuda") == (allocator or "cuda")
    else:
        assert backend_for("cuda") == "unavailable"


def test_backend_refusals_name_the_valid_ones():
    with pytest.raises(InvalidInputError, match="unknown memory backend 'rss'; valid: allocator, memray"):
        backend_for("cpu", "rss")
    with pytest.raises(InvalidInputError, match="memory backend 'cuda' cannot measure on cpu here; valid: "):
        backend_for("cpu", "cuda")


#: Every backend that measures on each device here: (device, backend) pairs.
BACKEND_CASES = [
    pytest.param(device, backend, marks=needs_cuda if device == "cuda" else ())
    for device, backend in [
        ("cpu", "allocator"),
        ("cpu", "memray"),
        ("cuda", "allocator"),
        ("cuda", "cuda"),
    ]
]


def usable(device: str, backend: str) -> None:
    try:
        backend_for(device, backend)
    except InvalidInputError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize(("device", "backend"), BACKEND_CASES)
def test_counts_a_tensor_allocated_inside(device, backend):
    usable(device, backend)
    result, peak, used = measure_peak(lambda: torch.ones(100 * MB // 4, device=device), device, backend)
    assert (result.numel(), used) == (100 * MB // 4, backend)
    assert 100 * MB <= peak < 101 * MB


@pytest.mark.parametrize(("device", "backend"), BACKEND_CASES)
def test_counts_a_temporary_freed_inside(device, backend):
    usable(device, backend)
    result, peak, _ = measure_peak(lambda: torch.ones(50 * MB // 4, device=device).sum(), device, backend)
    assert float(result) == 50 * MB // 4
    assert 50 * MB <= peak < 51 * MB


@pytest.mark.parametrize(("device", "backend"), BACKEND_CASES)
def test_ignores_memory_alive_before_the_block(device, backend):
    usable(device, backend)
    before = {"x": torch.ones(100 * MB // 4, device=device)}
    _, peak, _ = measure_peak(lambda: before["x"].add_(1.0), device, backend)
    assert peak < 1 * MB
    # Freeing it inside the block does not make the peak negative or hide new allocations.
    _, peak, _ = measure_peak(
        lambda: (before.pop("x"), torch.ones(10 * MB // 4, device=device)), device, backend
    )
    assert 10 * MB <= peak < 11 * MB


def test_allocator_counts_tensor_bytes_exactly():
    """Exactly the storages' bytes, nothing of Python's: a peak of 3 tensors of 1000 floats."""
    usable("cpu", "allocator")

    def block():
        a, b = torch.ones(1000), torch.ones(1000)
        return (a + b).sum()

    assert measure_peak(block, "cpu", "allocator").peak_bytes == 3 * 4000 + 4


def test_allocator_refuses_to_nest():
    usable("cpu", "allocator")
    nested = pytest.raises(RuntimeError, match="another one is active")
    with track_peak("cpu", "allocator"), nested, track_peak("cpu", "allocator"):
        pass


@has_memray
def test_capture_file_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    measure_peak(lambda: torch.ones(1000), "cpu", "memray")
    with pytest.raises(ZeroDivisionError), track_peak("cpu", "memray") as reading:
        torch.ones(1000)
        1 / 0
    assert reading.peak_bytes is None
    assert os.listdir(tmp_path) == []
    # The tracker was stopped: a new one sees the 4000 bytes (plus about 1 KB of bookkeeping).
    assert 4000 <= measure_peak(lambda: torch.ones(1000), "cpu", "memray").peak_bytes < 6000


def test_unavailable_without_any_backend(monkeypatch):
    monkeypatch.setattr(memory, "memray", None)
    monkeypatch.setattr(torch.autograd, "kineto_available", lambda: False)
    result, peak, backend = measure_peak(lambda: 42, "cpu")
    assert (result, peak, backend) == (42, None, "unavailable")


# --- the memory shapes of the gradient methods -------------------------------------------------

DIM, WIDTH, BATCH = 16, 256, 128
FEW, MANY = 10, 40
STATE_BYTES = BATCH * DIM * 8
HIDDEN_BYTES = BATCH * WIDTH * 8


class MLP(nn.Module):
    def __init__(self, device) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(DIM, WIDTH), nn.Tanh(), nn.Linear(WIDTH, DIM))
        self.to(device=device, dtype=torch.float64)

    def forward(self, t, y):
        return self.net(y)


@pytest.fixture(scope="module", params=DEVICES)
def peaks(request) -> dict[tuple[str, int], int]:
    """Peak bytes of solve + backward, for every method and both step counts."""
    device = request.param
    if backend_for(device) == "unavailable":
        pytest.skip("no memory backend")
    func = MLP(device)
    y0 = torch.randn(BATCH, DIM, dtype=torch.float64, device=device, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64, device=device)

    def block(name: str, steps: int):
        solver = fixed_step_solver(name)

        def run():
            for x in (y0, *func.parameters()):
                x.grad = None
            y = methods.get(name).odeint(func, y0, t, solver=solver, options={"step_size": 1.0 / steps})
            y[-1].pow(2).sum().backward()

        return run

    # One thread: the counts do not depend on it (checked), and it is much faster on shared cores.
    out = {}
    with torch_threads(1):
        for name in MEASURED:
            if fixed_step_solver(name) is None:
                continue
            try:
                block(name, 2)()  # warm-up: lazily initialised buffers are not the method's
            except UnsupportedError:  # forward mode refuses this many directions
                continue
            for steps in (FEW, MANY):
                out[name, steps] = measure_peak(block(name, steps), device).peak_bytes
    print({f"{name}@{steps}": peak for (name, steps), peak in out.items()})
    return out


#: Every method odebench implements (peers are measured by the harness, not here), and a
#: checkpointed one with a budget of 4 states.
MEASURED = [
    *(n for n in methods.names() if methods.get(n).capabilities.backend in ("odebench", "torchdiffeq")),
    "checkpointed:4",
]


def fixed_step_solver(name: str) -> str | None:
    """The first of rk4, midpoint, heun2 the method takes (None: it takes no fixed step)."""
    return next((s for s in ("rk4", "midpoint", "heun2") if methods.get(name).supports(s)), None)


def growth_per_step(peaks, name):
    return (peaks[name, MANY] - peaks[name, FEW]) / (MANY - FEW)


@pytest.mark.parametrize("name", [n for n in MEASURED if fixed_step_solver(n) is not None])
def test_memory_grows_as_the_method_declares(peaks, name):
    """``linear``: at least three quarters of a state per step (ACA keeps one, backprop a graph of
    four hidden layers); ``flat``: under a quarter of a state per step."""
    if (name, MANY) not in peaks:
        pytest.skip(f"{name} refuses this problem")
    growth = growth_per_step(peaks, name) / STATE_BYTES
    if methods.get(name).capabilities.memory_in_steps == "linear":
        assert growth > 0.75, growth
    else:
        assert growth < 0.25, growth


def test_a_checkpoint_budget_bounds_memory(peaks):
    """Four checkpoints over 40 steps keep less than ACA's ten states over 10 steps."""
    assert peaks["checkpointed:4", MANY] < peaks["aca", FEW]


def test_naive_grows_by_four_hidden_layers_per_step(peaks):
    """Backprop keeps the graph of every rk4 stage: 4 tanh outputs (BATCH x WIDTH) and a little
    more per step (measured 4.24 HIDDEN_BYTES, 1.11 MB, tensor bytes only)."""
    assert 4 * HIDDEN_BYTES < growth_per_step(peaks, "naive") < 5 * HIDDEN_BYTES


def test_adjoint_is_flat(peaks):
    """Measured in tensor bytes: no growth at all (1.79 MB at 40 steps, 1.99 MB at 10)."""
    assert growth_per_step(peaks, "adjoint") < 0.25 * STATE_BYTES


@pytest.mark.parametrize("name", ["aca", "symplectic"])
def test_checkpointing_grows_by_one_state_per_step(peaks, name):
    """One checkpointed state per step: the forward pass alone keeps exactly 1.00 state per step,
    but the peak of forward plus backward falls inside the backward pass, once it has freed some
    checkpoints, so the measured growth is 0.83 states for both on CPU in tensor bytes (memray,
    counting each step's Python objects too, saw 1.10 and 1.14); the upper bound leaves room for
    a few of the CUDA allocator's 512-byte blocks."""
    assert 0.75 * STATE_BYTES < growth_per_step(peaks, name) < 1.5 * STATE_BYTES


def test_symplectic_keeps_less_than_aca(peaks):
    # One network evaluation's graph at a time against all four stages of a step.
    assert peaks["symplectic", FEW] < peaks["aca", FEW]
    assert peaks["symplectic", MANY] < peaks["aca", MANY]


# --- the allocator backend against memray ---------------------------------------------------


@has_memray
@pytest.mark.parametrize("name", ["naive", "aca", "adjoint"])
def test_memray_sees_the_allocators_bytes_and_more(name):
    """memray counts every allocation of the process, so its peak is the tensors' plus the
    bookkeeping (autograd nodes, Python objects): never less, and where tensors dominate (a
    128 x 16 state through a 256-wide MLP, 10 rk4 steps) within 15% and 256 KiB of it. Measured:
    naive 11.25 MiB against memray's 11.67, aca 2.00 against 2.09, adjoint 1.90 against 1.99.
    On the quick suite's small states the bookkeeping is most of memray's figure (`make
    memory-backends`: a median 5x to 26x per method)."""
    usable("cpu", "allocator")
    func = MLP("cpu")
    y0 = torch.randn(BATCH, DIM, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)

    def run():
        y = methods.get(name).odeint(func, y0, t, solver="rk4", options={"step_size": 0.1})
        torch.autograd.grad(y[-1].pow(2).sum(), [y0, *func.parameters()])

    with torch_threads(1):
        run()
        tensors = measure_peak(run, "cpu", "allocator").peak_bytes
        process = measure_peak(run, "cpu", "memray").peak_bytes
    assert tensors <= process < 1.15 * tensors + 256 * 1024, (tensors, process)


@pytest.mark.parametrize("name", ["naive", "aca", "adjoint"])
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_allocator_backend_equals_the_cuda_allocators_own_peak(name):
    """On a GPU both read the caching allocator: its reports summed (blocks of 512 bytes) and its
    own counters (`max_memory_allocated` above the start) must give the same bytes."""
    usable("cuda", "allocator")
    func = MLP("cuda")
    y0 = torch.randn(BATCH, DIM, dtype=torch.float64, device="cuda", requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64, device="cuda")

    def run():
        y = methods.get(name).odeint(func, y0, t, solver="rk4", options={"step_size": 0.1})
        torch.autograd.grad(y[-1].pow(2).sum(), [y0, *func.parameters()])

    run()
    assert measure_peak(run, "cuda", "allocator").peak_bytes == measure_peak(run, "cuda", "cuda").peak_bytes


@has_memray
def test_on_the_quick_suites_small_states_memray_sees_mostly_bookkeeping():
    """Two of the quick suite's cases (`make memory-backends` compares all 60): memray's peak is
    never below the tensors', and on a 16-number state it is many times larger (measured: spiral
    with rk4 over 100 steps, naive 0.104 MiB of tensors against 3.26 MiB in all)."""
    usable("cpu", "allocator")
    from benchmarks.memory_backends import peaks
    from odebench.jobs.gradient import Case

    cases = {
        "spiral naive": Case(task="spiral", method="naive", solver="rk4", size=1),
        "mlp aca": Case(task="mlp", method="aca"),
    }
    with torch_threads(1):
        measured = {name: peaks(case, ["allocator", "memray"]) for name, case in cases.items()}
    for name, peak in measured.items():
        assert 0 < peak["allocator"] <= peak["memray"], (name, peak)
    assert measured["spiral naive"]["memray"] > 10 * measured["spiral naive"]["allocator"]
