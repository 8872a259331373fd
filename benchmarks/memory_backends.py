"""The memory backends side by side: the allocator backend against memray (and CUDA's counters).

Run ``python -m benchmarks.memory_backends [--suite quick] [--device cpu]`` (or
``make memory-backends``): for every gradient case of the suite it runs the case's forward plus
backward once unmeasured, then once under each backend available on the device, and prints, per
method, the median and extreme ratio of each other backend's peak to the allocator backend's,
and the largest difference in bytes. memray counts everything the process allocates (Python
objects, interpreter arenas) besides torch's tensors, so its figure is the allocator's plus that
bookkeeping; on a GPU the caching allocator's own peak must equal the allocator backend's. Not a
test: a measurement to run on purpose (the quick suite takes about a minute here).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

from odebench import suites
from odebench.jobs.gradient import Case, build_case
from odebench.measure.memory import available, measure_peak
from odebench.measure.timing import torch_threads


def peaks(case: Case, backends: list[str]) -> dict[str, int]:
    """Peak bytes of the case's forward plus backward under each backend, after one warm-up."""
    built = build_case(case)
    built.forward_backward()
    return {name: measure_peak(built.forward_backward, case.device, name).peak_bytes for name in backends}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_backends")
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--task", nargs="+", help="only these tasks of the suite")
    args = parser.parse_args(argv)
    others = [name for name in available(args.device) if name != "allocator"]
    cases = [
        c
        for c in suites.plan(args.suite, setting_axes={"devices": (args.device,)}).cases
        if isinstance(c, Case) and (not args.task or c.task in args.task)
    ]
    by_method: dict[str, list[dict[str, int]]] = defaultdict(list)
    done = 0
    try:
        with torch_threads(1):
            for case in cases:
                measured = peaks(case, ["allocator", *others])
                by_method[case.method].append(measured)
                done += 1
                print(case.label(), measured, flush=True)
    except KeyboardInterrupt:  # `scripts/cuda-check` stops it at its time limit: say what was done
        print(f"stopped after {done} of {len(cases)} cases")
    print(f"\n{done} cases of suite {args.suite!r} on {args.device}: peak / allocator backend's peak")
    for name in others:
        print(f"\n{name}:\n{'method':>14} {'n':>3} {'median':>8} {'min':>8} {'max':>8} {'max diff':>10}")
        for method, rows in by_method.items():
            ratios = [row[name] / row["allocator"] for row in rows if row["allocator"]]
            diff = max(abs(row[name] - row["allocator"]) for row in rows)
            print(
                f"{method:>14} {len(rows):>3} {statistics.median(ratios):>8.3f} {min(ratios):>8.3f} "
                f"{max(ratios):>8.3f} {diff / 1024:>8.1f} KiB"
            )


if __name__ == "__main__":
    main()
