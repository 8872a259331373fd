"""Time ratios measured the steady way: contenders interleaved round by round in one process.

On this machine class the median time of the same work differs by up to 1.7x from one process
to the next, and within a process the load drifts over seconds; both move every contender of a
round alike, so the ratio of two contenders timed in the same round cancels them. Each round runs
every contender once (forward plus backward), in an order rotated from round to round so that
none always runs first; a round's ratio is contender / baseline; the statistic is the median
over rounds, with the quartiles beside it.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping

from odebench.measure.timing import PhaseTiming


class RatioStats(PhaseTiming):
    """A contender's time over the baseline's, per round: their median and quartiles."""

    @property
    def rounds(self) -> int:
        return len(self.samples)


def interleaved_ratios(
    runs: Mapping[str, Callable[[], None]],
    baseline: str,
    *,
    rounds: int,
    warmup: int = 1,
    budget_s: float | None = None,
    min_rounds: int = 5,
    sync: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict[str, RatioStats], float]:
    """Time each of `runs` once per round for `rounds` rounds; ratios to `baseline`.

    Args:
        runs: name -> a call that does one complete unit of work (e.g. forward and backward).
        baseline: the name every ratio is taken against (it must be in `runs`).
        rounds: timed rounds at most; `warmup` untimed rounds run first.
        budget_s: stop after the round in which the timed calls passed this many seconds, once
            `min_rounds` rounds are done (None: always `rounds`).
        sync: waits for queued device work (CUDA), called around every timed call.
        clock: seconds as a float (a test may inject a fake).

    Returns:
        ``({name: RatioStats}, baseline's median seconds)``; the baseline's own ratio is 1.
    """
    if baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not among the runs: {', '.join(runs)}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    spent = 0.0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    gc.collect()
    gc.freeze()  # what exists now is never scanned again: a round's collection sees its own garbage
    try:
        for r in range(warmup + rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                sync()
                start = clock()
                runs[name]()
                sync()
                elapsed = clock() - start
                if r >= warmup:
                    seconds[name].append(elapsed)
                    spent += elapsed
            gc.collect()  # between rounds, outside the timed calls
            done = r + 1 - warmup
            if budget_s is not None and done >= min_rounds and spent > budget_s:
                break
    finally:
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()
    base = seconds[baseline]
    ratios = {name: RatioStats(tuple(t / b for t, b in zip(seconds[name], base))) for name in names}
    return ratios, statistics.median(base)


__all__ = ["RatioStats", "interleaved_ratios"]
