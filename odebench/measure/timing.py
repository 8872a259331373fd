"""Wall-clock time of the forward solve and of the backward pass, timed separately.

Each repeat calls ``run_forward()`` (solve and compute the loss, building a fresh graph) and
then ``run_backward(loss)`` with what it returned (``loss.backward()``), each between two
readings of the clock. On CUDA (and MPS) the device is synchronised before every reading, so a phase's
time includes the kernels it queued. Warm-up repeats run the same way first and are discarded.
Python's cyclic garbage collector is paused inside the timed regions, as `timeit` does, and an
optional untimed ``setup()`` runs before each repeat (e.g. to clear ``.grad``).

The summary of each phase is the median and the interquartile range (``numpy.percentile`` at
25 and 75, linear interpolation); the raw samples are kept so results can be re-summarised.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class PhaseTiming:
    """Samples of one measured quantity (seconds per repeat of a phase, or per-round time ratios)
    with their median and interquartile range."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def q25(self) -> float:
        return float(np.percentile(self.samples, 25))

    @property
    def q75(self) -> float:
        return float(np.percentile(self.samples, 75))

    @property
    def iqr(self) -> float:
        return self.q75 - self.q25


@dataclass(frozen=True)
class TimingStats:
    """Forward and backward timings of `repeats` runs (warm-up excluded)."""

    forward: PhaseTiming
    backward: PhaseTiming
    warmup: int

    @property
    def repeats(self) -> int:
        return len(self.forward.samples)

    @property
    def total(self) -> PhaseTiming:
        """Forward plus backward, repeat by repeat."""
        pairs = zip(self.forward.samples, self.backward.samples)
        return PhaseTiming(tuple(f + b for f, b in pairs))


def synchronizer(device: torch.device | str) -> Callable[[], None]:
    """A function that waits for `device` to finish its queued work (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return lambda: torch.mps.synchronize()
    return lambda: None


def time_forward_backward(
    run_forward: Callable[[], Any],
    run_backward: Callable[[Any], None],
    *,
    repeats: int,
    warmup: int = 1,
    device: torch.device | str = "cpu",
    setup: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingStats:
    """Time `run_forward` and `run_backward` separately over `repeats` runs after `warmup` runs.

    Args:
        run_forward: builds a fresh graph and returns what the backward pass needs, e.g.
            ``lambda: loss_fn(method.odeint(func, y0, t))``. Called once per run.
        run_backward: called with `run_forward`'s result, e.g. ``lambda loss: loss.backward()``.
        repeats: timed runs (at least one).
        warmup: untimed runs before them, discarded.
        device: synchronised around each timed region when it is a CUDA device.
        setup: called untimed before every run, warm-ups included.
        clock: seconds as a float; `time.perf_counter` unless a test injects a fake.

    Returns:
        The per-run samples of each phase with their median and interquartile range.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be non-negative, got {warmup}")
    sync = synchronizer(device)
    forward: list[float] = []
    backward: list[float] = []
    for run in range(warmup + repeats):
        if setup is not None:
            setup()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            sync()
            start = clock()
            out = run_forward()
            sync()
            middle = clock()
            run_backward(out)
            sync()
            end = clock()
        finally:
            if gc_was_enabled:
                gc.enable()
        del out  # free this run's graph before the next one is built
        if run >= warmup:
            forward.append(middle - start)
            backward.append(end - middle)
    return TimingStats(PhaseTiming(tuple(forward)), PhaseTiming(tuple(backward)), warmup)


__all__ = ["PhaseTiming", "TimingStats", "synchronizer", "time_forward_backward"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads, restoring the caller's setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
