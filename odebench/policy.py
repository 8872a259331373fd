"""What counts as a change between two runs of the same cases: the thresholds of a comparison.

`odebench compare` and the CI gate judge with the same `Policy` (`odebench.comparison`
applies it). The defaults are the measured noise of this machine class, with margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from odebench.errors import InvalidInputError


@dataclass(frozen=True)
class Policy:
    """Thresholds beyond which a difference between two records of one case counts.

    Counts (NFE, VJPs, steps) and statuses always count on any change, and so does peak memory
    measured by an exact backend on both sides (the allocator's tensor bytes). Gradient errors
    count beyond ``error_rtol`` relative or ``error_atol`` absolute, whichever is looser; peak
    memory from memray beyond ``memory_factor`` and ``memory_floor_bytes`` together; a method's
    time over naive's on the same case in the same run beyond ``ratio_factor``, and absolute
    times beyond ``time_factor``, only when they are set.

    Defaults, measured on this 2-core machine class: three runs of the quick suite by one commit
    agreed bitwise on every count and gradient error, and within 2.3% (7.5 KB) on every peak
    memory, hence 10% and 32 KiB. Times of cases measured one after the other moved by up to
    1.7x between processes and their same-run ratios to naive by up to 7x under shared load, so
    neither is judged unless asked for: timing regressions are caught by ratios measured with
    the methods interleaved round by round, judged beyond ``interleaved_factor``: four runs of
    the gate suite on one commit moved every such ratio by at most 1.10x (max/min), a baseline
    taken under shared load differed from a quiet run by up to 1.30x, and a method made 1.50x
    slower failed while 1.29x passed (docs/benchmarking.md, "What each check catches").
    """

    error_rtol: float = 1e-6
    error_atol: float = 1e-12
    memory_factor: float = 1.10
    memory_floor_bytes: int = 32 * 1024
    ratio_factor: float | None = None
    time_factor: float | None = None
    interleaved_factor: float | None = 1.3

    def __post_init__(self) -> None:
        for name in ("memory_factor", "ratio_factor", "time_factor", "interleaved_factor"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 1):
                raise InvalidInputError(f"{name} must be a finite number >= 1, got {value}")

    def describe(self) -> str:
        """The policy in one paragraph, for the comparison's report."""
        times = []
        if self.ratio_factor:
            times.append(
                "each method's time over naive's on the same case in the same run beyond "
                f"{self.ratio_factor:g}x"
            )
        if self.time_factor:
            times.append(f"absolute times beyond {self.time_factor:g}x")
        interleaved = (
            f"interleaved time ratios (methods timed round by round in one process) beyond "
            f"{self.interleaved_factor:g}x"
            if self.interleaved_factor
            else "interleaved time ratios are not judged"
        )
        per_case = (
            "; ".join(times)
            if times
            else (
                "per-case times are not judged (cases timed one after the other move by up to 1.7x "
                "between processes; pass --ratio-factor or --time-factor to judge them)"
            )
        )
        timing = f"{interleaved}; {per_case}"
        return (
            "Judged: a status leaving ok, or a case of the base missing from the new run; NFE, "
            "VJP and step counts on any change; gradient errors beyond "
            f"{self.error_rtol:g} relative or {self.error_atol:g} absolute (unless both are at the "
            f"reference's resolution); exact peak memory (tensor bytes) on any change, memray's "
            f"beyond {self.memory_factor:g}x and {self.memory_floor_bytes / 1024:g} KiB; {timing}."
        )


#: The measured noise of this machine class, with margin (odebench compare's defaults).
DEFAULT_POLICY = Policy()
