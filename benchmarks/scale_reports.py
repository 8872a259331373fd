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
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = (
    "linear", "spiral", "lotka_volterra", "lorenz63", "mlp", "harmonic_oscillator_sonode",
    "harmonic_oscillator_anode", "three_body", "lorenz63_fit", "van_der_pol_stiff", "cnf2d",
    "digits_odenet", "latent_ode_spiral",
)  # fmt: skip
METHODS = ("naive", "adjoint", "seminorm", "aca", "symplectic", "aca@torchdiffeqpack", "mali@torchdiffeqpack")
RTOLS = (1e-3, 1e-5, 1e-7, 1e-9)
#: The goals: wall seconds and peak resident bytes of one report or comparison of the file.
GOAL_SECONDS, GOAL_BYTES = 60.0, 2**30


def write_file(path: Path, records: int) -> None:
    """`records` synthetic records (rounded to whole seeds), reproducibly."""
    from odebench.jobs.gradient import Case, Record
    from odebench.results import ResultsWriter

    rng = random.Random(0)
    seeds = max(1, round(records / (len(TASKS) * len(METHODS) * len(RTOLS))))
    with ResultsWriter(path, {"run_id": "scale", "suite": "scale"}) as writer:
        for task in TASKS:
            for method in METHODS:
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


def measure(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of `command` run in a process of its own."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) * 1024  # kilobytes on Linux


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
            seconds, peak = measure(command)
            ok = seconds <= GOAL_SECONDS and peak <= GOAL_BYTES
            failed |= not ok
            verdict = "within" if ok else "beyond"
            print(f"{name}: {seconds:.1f} s, peak {peak / 2**20:.0f} MiB ({verdict} 60 s and 1 GiB)")
        return 1 if failed else 0
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
