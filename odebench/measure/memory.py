"""Peak memory of a block of code, above what was allocated when the block started.

What is measured: the largest number of bytes *allocated inside the block* that are alive at
the same time. Memory alive before the block (the model, ``y0``, a dataset) does not count,
whether or not the block frees it. Both backends count bytes requested from an allocator, not
resident pages or allocator caches, so the numbers mean the same thing on CPU and GPU:

* ``"memray"`` (CPU): a `memray.Tracker` intercepts every ``malloc``/``posix_memalign``/``mmap``
  of the process (torch's CPU allocator, all threads) and, with ``trace_python_allocators``,
  every Python object allocation individually (without it Python objects show up as whole
  1 MiB pymalloc arenas, and whether a block happens to open a new arena made the same run's
  peak jump by 1 MiB: 2.05 MB vs 3.12 MB for the adjoint in one run of the memory test), and
  `FileReader(...).metadata.peak_memory` is the high-water mark of the allocations it saw.
  Frees of memory allocated before tracking started are ignored, so the peak never goes below
  zero. No stacks are recorded (``native_traces=False``): interception does not need them, and
  unwinding native stacks would only add overhead. The capture file lives in a private temporary
  directory that is removed on exit, also when the block raises.
* ``"cuda"``: ``torch.cuda.max_memory_allocated(device) - memory_allocated at the start``, after
  ``synchronize`` and ``reset_peak_memory_stats``; only the caching allocator's allocated blocks
  on that device count (not its reserved cache, not host memory).
* ``"unavailable"``: CPU without memray (e.g. Windows), or another device type; the peak is
  ``None``. There is no sound fallback: `tracemalloc` sees only Python's allocator, not
  torch's; ``ru_maxrss`` is the high-water mark of the whole process life, so a delta is zero
  unless the block beats every earlier peak; RSS also counts glibc's retained free memory and
  misses allocated but untouched pages. A missing number is better than a wrong one.

Overhead of the memray backend: starting and stopping a tracker costs 0.1-0.25 s once torch is
loaded (memray patches the allocator symbols of every loaded library, torch's included), and
every allocation inside the block is intercepted and recorded, which slowed solve + backward
by 10-50% (more for methods that make many small allocations). Measure time and memory in
separate runs. Allocations by other threads of the process during the block count too.

Run the block once untracked beforehand: first calls allocate lazily initialised buffers
(thread pools, cuBLAS workspaces) that would otherwise be attributed to the method. Neither
backend is reentrant: one measurement at a time, and on CPU not under ``memray run`` (memray
allows one tracker per process and refuses a second with a RuntimeError).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

try:
    import memray
except ImportError:  # memray is not built for every platform (Windows)
    memray = None

BACKENDS = ("memray", "cuda", "unavailable")


@dataclass
class PeakReading:
    """Filled in when a `track_peak` block exits; ``peak_bytes`` is ``None`` until then."""

    backend: str
    peak_bytes: int | None = None


class PeakMemory(NamedTuple):
    """What `measure_peak` returns: the block's result, its peak in bytes, and the backend."""

    result: Any
    peak_bytes: int | None
    backend: str


def backend_for(device: torch.device | str) -> str:
    """The backend that measures memory on `device` in this environment."""
    kind = torch.device(device).type
    if kind == "cpu":
        return "memray" if memray is not None else "unavailable"
    if kind == "cuda" and torch.cuda.is_available():
        return "cuda"
    return "unavailable"


@contextlib.contextmanager
def track_peak(device: torch.device | str = "cpu") -> Iterator[PeakReading]:
    """Measure the peak memory allocated on `device` inside the ``with`` block.

    Usage::

        with track_peak(y0.device) as reading:
            loss = loss_fn(method.odeint(func, y0, t))
            loss.backward()
        reading.peak_bytes, reading.backend

    The reading is filled in only when the block completes; if it raises, the exception
    propagates and ``peak_bytes`` stays ``None``.
    """
    reading = PeakReading(backend_for(device))
    if reading.backend == "memray":
        with _memray_peak(reading):
            yield reading
    elif reading.backend == "cuda":
        with _cuda_peak(torch.device(device), reading):
            yield reading
    else:
        yield reading


def measure_peak(fn: Callable[[], Any], device: torch.device | str = "cpu") -> PeakMemory:
    """Call ``fn()`` and return its result with the peak memory it allocated on `device`.

    Args:
        fn: the block to measure, e.g. a solve followed by ``loss.backward()``.
        device: where its tensors live; selects the backend (see the module docstring).

    Returns:
        ``(result, peak_bytes, backend)``; ``peak_bytes`` is ``None`` where the backend is
        ``"unavailable"``.
    """
    with track_peak(device) as reading:
        result = fn()
    return PeakMemory(result, reading.peak_bytes, reading.backend)


@contextlib.contextmanager
def _memray_peak(reading: PeakReading) -> Iterator[None]:
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


__all__ = ["BACKENDS", "PeakMemory", "PeakReading", "backend_for", "measure_peak", "track_peak"]
