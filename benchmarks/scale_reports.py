"""How `odebench report` and `odebench compare` scale: a generated 31k-record results file.

Run ``python -m benchmarks.scale_reports [--records N] [--folder DIR]`` (or ``make scale-reports``):
it writes a results file of N synthetic gradient records (13 tasks x 7 methods x 4 tolerances x
seeds, 5 % of them timed out), then runs ``odebench report`` on it and ``odebench compare`` of it
against a copy, each in a process of its own, and prints each one's wall time and peak memory
(maximum resident set size). It exits 1 when either takes more than 60 s or 1 GiB, the goals the
project holds them to. Not an asv benchmark (asv's smoke run would pay a minute for it) and not a
timed test: a measurement to run on purpose.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RTOLS = (1e-3, 1e-5, 1e-7, 1e-9)
#: The goals: wall seconds and peak resident bytes of one report or comparison of the file.
GOAL_SECONDS, GOAL_BYTES = 60.0, 2**30


def write_file(path: Path, records: int) -> None:
    """`records` synthetic records (rounded to whole seeds), reproducibly."""
    from odebench import methods, tasks
    from odebench.jobs.gradient import Case, Record
    from odebench.methods.peers import PEERS
    from odebench.results import ResultsWriter

    names = (*methods.CORE, *PEERS)  # every method a full run can record, installed or not
    rng = random.Random(0)
    seeds = max(1, round(records / (len(tasks.names()) * len(names) * len(RTOLS))))
    with ResultsWriter(path, {"run_id": "scale", "suite": "scale"}) as writer:
        for task in tasks.names():
            for method in names:
                for rtol in RTOLS:
                    for seed in range(seeds):
                        case = Case(task=task, method=method, rtol=rtol, atol=rtol * 1e-2, size=2, seed=seed)
                        if rng.random() < 0.05:
                            writer.write(
                                Record.failed(case, "timeout", "TimeoutError: no result within 300 s")
                            )
                            continue
                        measured = dict(
                            grad_rel_error=rtol * rng.uniform(0.1, 10),
                            reference_error=1e-13,
                            at_reference_resolution=False,
                            nfe_forward=rng.randint(10, 1000),
                            nfe_backward=rng.randint(0, 2000),
                            vjp_backward=rng.randint(10, 1000),
                            steps_accepted=rng.randint(5, 200),
                            steps_rejected=rng.randint(0, 5),
                            time_forward_s=rng.uniform(0.01, 1),
                            time_backward_s=rng.uniform(0.01, 2),
                            peak_memory_bytes=rng.randint(10**5, 10**8),
                            wall_time_s=rng.uniform(1, 10),
                            method_backend="odebench",
                            reference_hash="0" * 16,
                        )
                        writer.write(Record(case, case.case_id, "ok", **measured))


def measure(command: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak resident bytes and exit code of `command`, run in a process of its own
    (its own peak: `RUSAGE_CHILDREN` would give the largest of every child so far)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss * 1024, process.returncode  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_reports")
    parser.add_argument("--records", type=int, default=31_000)
    parser.add_argument("--folder", help="where the files go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="odebench-scale-"))
    try:
        base, new = folder / "base.jsonl", folder / "new.jsonl"
        started = time.perf_counter()
        write_file(base, args.records)
        shutil.copyfile(base, new)
        print(
            f"wrote {base} ({base.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s"
        )
        odebench = [sys.executable, "-m", "odebench.cli"]
        failed = False
        for name, command in (
            ("report", [*odebench, "report", str(base), "--out", str(folder / "report")]),
            ("compare", [*odebench, "compare", str(base), str(new)]),
        ):
            seconds, peak, code = measure(command)
            ok = code == 0 and seconds <= GOAL_SECONDS and peak <= GOAL_BYTES
            failed |= not ok
            verdict = "within" if ok else "beyond"
            goals = f"{GOAL_SECONDS:g} s and {GOAL_BYTES / 2**30:g} GiB"
            exited = "" if code == 0 else f"; exited {code}"
            print(f"{name}: {seconds:.1f} s, peak {peak / 2**20:.0f} MiB ({verdict} {goals}{exited})")
        return 1 if failed else 0
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
