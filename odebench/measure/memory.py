"""Peak memory of a block of code, above what was allocated when the block started.

What is measured: the largest number of bytes *allocated inside the block* that are alive at
the same time. Three backends count it:

* ``"allocator"`` (the default, CPU and CUDA): the bytes torch's own allocators hand out, one
  allocation per tensor storage plus the workspaces kernels ask them for. Every allocation and
  free of the c10 CPU allocator and of the CUDA caching allocator is reported to the profiler's
  memory hook (``profile_memory``); the backend starts the profiler with operator collection
  switched off, so only those reports are kept (measured: 0-20% slower than the bare block,
  plus about 5 us per allocation to read the reports back), and the peak is the high-water mark
  of their running sum. The count is exact and deterministic: the same run gives the same bytes,
  and nothing outside torch's tensors (Python objects, interpreter arenas) counts. On CPU the
  bytes are the storages' own sizes and a free of memory allocated before the block is ignored
  (the allocator does not know its size), so the peak never goes below zero; on CUDA they are
  the caching allocator's 512-byte blocks and such a free lowers the level, exactly as
  ``torch.cuda.max_memory_allocated`` counts them.
* ``"memray"`` (CPU, the process-level check): a `memray.Tracker` intercepts every
  ``malloc``/``posix_memalign``/``mmap`` of the process (torch's CPU allocator, all threads) and,
  with ``trace_python_allocators``, every Python object allocation individually, so it sees
  what the allocator backend does not: Python objects, other libraries' buffers. It costs
  0.1-0.25 s a block to start and 10-50% of the block's time, and a few KB of its figure move
  from run to run. Frees of memory allocated before tracking started are ignored. Not under
  ``memray run`` (one tracker per process).
* ``"cuda"``: ``torch.cuda.max_memory_allocated(device) - memory_allocated at the start``, after
  ``synchronize`` and ``reset_peak_memory_stats``: the caching allocator's own counters, the
  cross-check of the allocator backend on a GPU.

``"unavailable"`` is any other device, or a build without the profiler and memray: the peak is
``None``. There is no sound fallback: `tracemalloc` sees only Python's allocator; ``ru_maxrss``
is the high-water mark of the whole process life. A missing number is better than a wrong one.

Run the block once beforehand, or make the measured run the first of several and accept that
lazily initialised buffers (cuBLAS workspaces, cached constants) count: with the allocator
backend only tensors count, so thread pools and imports never do. No backend is reentrant: one
measurement at a time (the allocator backend refuses to start under another active profiler).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import autograd

from odebench.errors import InvalidInputError

try:
    import memray
except ImportError:  # memray is not built for every platform (Windows)
    memray = None

#: The backends a run can ask for, default first; `BACKENDS` adds the reading of none and
#: `XLA`, the compiled programs' own account that JAX cases report (`odebench.jax.program`).
CHOICES = ("allocator", "memray", "cuda")
XLA = "xla"
BACKENDS = (*CHOICES, XLA, "unavailable")
#: Backends whose figure is the same in every run of the same code: a comparison judges any
#: change of theirs (`odebench.comparison`), where memray's moves by a few KB.
EXACT = frozenset({"allocator", XLA})


@dataclass
class PeakReading:
    """Filled in when a `track_peak` block exits; ``peak_bytes`` is ``None`` until then.
    ``readout_s`` is the time the exit took to read the peak back (the allocator backend's
    reports, memray's capture file), the measurement's own cost beyond the slowed block."""

    backend: str
    peak_bytes: int | None = None
    readout_s: float = 0.0


class PeakMemory(NamedTuple):
    """What `measure_peak` returns: the block's result, its peak in bytes, and the backend."""

    result: Any
    peak_bytes: int | None
    backend: str


#: The profiler entry points the allocator backend drives (private, as is the profiler's
#: `_ExperimentalConfig`: a torch without them falls back to memray rather than failing).
_PROFILER_CALLS = ("_prepare_profiler", "_enable_profiler", "_toggle_collection_dynamic", "_disable_profiler")


def _available(backend: str, kind: str) -> bool:
    if backend == "allocator":
        hooks = all(hasattr(autograd, name) for name in _PROFILER_CALLS)
        hooks = hooks and hasattr(torch._C._profiler, "_ExperimentalConfig")
        return (
            hooks
            and autograd.kineto_available()
            and (kind == "cpu" or (kind == "cuda" and torch.cuda.is_available()))
        )
    if backend == "memray":
        return kind == "cpu" and memray is not None
    if backend == "cuda":
        return kind == "cuda" and torch.cuda.is_available()
    return backend == "unavailable"


def available(device: torch.device | str) -> list[str]:
    """The backends that can measure on `device` here, default first (empty: none can)."""
    kind = torch.device(device).type
    return [name for name in CHOICES if _available(name, kind)]


def backend_for(device: torch.device | str, backend: str | None = None) -> str:
    """The backend that measures memory on `device`: `backend` if given (refused in one line
    where it cannot measure there), else the first available of allocator, memray, cuda."""
    kind = torch.device(device).type
    if backend is not None:
        if backend not in BACKENDS:
            valid = ", ".join(CHOICES)
            raise InvalidInputError(f"unknown memory backend {backend!r}; valid: {valid}")
        if not _available(backend, kind):
            valid = ", ".join(available(device)) or "none"
            raise InvalidInputError(
                f"memory backend {backend!r} cannot measure on {kind} here; valid: {valid}"
            )
        return backend
    return next(iter(available(device)), "unavailable")


@contextlib.contextmanager
def track_peak(device: torch.device | str = "cpu", backend: str | None = None) -> Iterator[PeakReading]:
    """Measure the peak memory allocated on `device` inside the ``with`` block.

    Usage::

        with track_peak(y0.device) as reading:
            loss = loss_fn(method.odeint(func, y0, t))
            loss.backward()
        reading.peak_bytes, reading.backend

    `backend` names one of `BACKENDS` (None: `backend_for`'s choice). The reading is filled in
    only when the block completes; if it raises, the exception propagates and ``peak_bytes``
    stays ``None``.
    """
    reading = PeakReading(backend_for(device, backend))
    device = torch.device(device)
    tracker = _TRACKERS.get(reading.backend)
    if tracker is None:
        yield reading
        return
    with tracker(device, reading):
        yield reading
        completed = time.perf_counter()  # not reached if the block raises
    reading.readout_s = time.perf_counter() - completed


def measure_peak(
    fn: Callable[[], Any], device: torch.device | str = "cpu", backend: str | None = None
) -> PeakMemory:
    """Call ``fn()`` and return its result with the peak memory it allocated on `device`.

    Args:
        fn: the block to measure, e.g. a solve followed by ``loss.backward()``.
        device: where its tensors live.
        backend: one of `BACKENDS` (None: the default for `device`, see the module docstring).

    Returns:
        ``(result, peak_bytes, backend)``; ``peak_bytes`` is ``None`` where the backend is
        ``"unavailable"``.
    """
    with track_peak(device, backend) as reading:
        result = fn()
    return PeakMemory(result, reading.peak_bytes, reading.backend)


_ACTIVITIES = {autograd.ProfilerActivity.CPU}


@contextlib.contextmanager
def _allocator_peak(device: torch.device, reading: PeakReading) -> Iterator[None]:
    if autograd._profiler_enabled():
        raise RuntimeError("the allocator memory backend needs the profiler, and another one is active")
    config = autograd.ProfilerConfig(
        autograd.ProfilerState.KINETO,
        False,  # report_input_shapes
        True,  # profile_memory: the allocators report every allocation and free
        False,  # with_stack
        False,  # with_flops
        False,  # with_modules
        torch._C._profiler._ExperimentalConfig(),
        "",
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    # Kineto logs every start and stop, and torch a warning meant for GPU traces on every toggle,
    # straight to the process's stderr (fd 2, past `sys.stderr`): one line per case otherwise.
    with _native_stderr_silenced():
        autograd._prepare_profiler(config, _ACTIVITIES)
        autograd._enable_profiler(config, _ACTIVITIES)
    try:
        with _native_stderr_silenced():  # operator events off: only the allocators' reports
            autograd._toggle_collection_dynamic(False, _ACTIVITIES)
        yield
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        with _native_stderr_silenced():
            result = autograd._disable_profiler()
    reading.peak_bytes = _peak_of(result.events(), device)  # not reached if the block raised


def _peak_of(events, device: torch.device) -> int:
    """High-water mark of the running sum of the allocation reports on `device`."""
    kind = autograd.DeviceType.CUDA if device.type == "cuda" else autograd.DeviceType.CPU
    index = -1
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
    starts = [event.start_ns() for event in events]
    if any(later < earlier for earlier, later in itertools.pairwise(starts)):  # several threads
        events = [event for _, event in sorted(zip(starts, events), key=lambda pair: pair[0])]
    level = peak = 0
    for event in events:
        if event.device_type() == kind and event.device_index() == index:
            level += event.nbytes()
            if level > peak:
                peak = level
    return peak


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (C++ logging bypasses `sys.stderr`)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _memray_peak(device: torch.device, reading: PeakReading) -> Iterator[None]:
    directory = tempfile.mkdtemp(prefix="odebench-memray-")
    try:
        path = os.path.join(directory, "capture.bin")
        destination = memray.FileDestination(path, overwrite=True, compress_on_exit=False)
        # Aggregated format: the file holds totals, not one record per allocation, so it stays
        # small however many allocations the block makes; the peak is computed all the same.
        tracker = memray.Tracker(
            destination=destination,
            native_traces=False,
            trace_python_allocators=True,
            file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS,
        )
        with tracker:
            yield
        with memray.FileReader(path) as reader:
            reading.peak_bytes = int(reader.metadata.peak_memory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _cuda_peak(device: torch.device, reading: PeakReading) -> Iterator[None]:
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    yield
    torch.cuda.synchronize(device)
    reading.peak_bytes = int(torch.cuda.max_memory_allocated(device) - baseline)


#: How each backend measures: a context manager over the block that fills the reading's peak
#: on its way out (its readout), only when the block completed.
_TRACKERS = {"allocator": _allocator_peak, "memray": _memray_peak, "cuda": _cuda_peak}


__all__ = [
    "BACKENDS",
    "CHOICES",
    "EXACT",
    "PeakMemory",
    "PeakReading",
    "available",
    "backend_for",
    "measure_peak",
    "track_peak",
]
