"""The CI regression gate: deterministic metrics of a fixed grid against ``results/baseline.json``.

``python -m odebench.baseline check`` runs every case of `grid` through `run_case` and compares
it with the committed baseline; ``python -m odebench.baseline update`` rewrites the baseline
(run it when a change of the numbers is intended, and commit the file with that change).

What is gated, per case (keyed by ``case_id``, reported by the case's label):

* counts, exactly: ``nfe_forward``, ``nfe_backward``, ``vjp_backward``, the accepted and
  rejected steps of the forward solve and of a solved backward pass. On a fixed machine they
  are bitwise reproducible (float64, CPU, one torch thread), so any change is a change of the
  algorithm;
* gradient errors, ``grad_rel_error`` and ``grad_rel_error_discrete``, to ``GRAD_RTOL``
  relative or ``GRAD_ATOL`` absolute, whichever is looser. Two runs agree bitwise; the
  tolerance only absorbs the round-off of another CPU or BLAS build, which moves errors at
  round-off level (the discrete-exact methods' ~1e-16) by amounts of their own size;
* the status: a case that ran must still run;
* the backward time as a ratio to ``naive``'s backward time on the same case, both measured in
  the same run: a failure only past ``TIME_FACTOR`` times the baseline's ratio, so that a noisy
  runner does not fail by chance. Absolute times are printed, never gated.

A case of the baseline that the grid no longer produces is a failure (update the baseline if
it was removed on purpose); a case new to the grid is reported and passes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from odebench.harness import run_case
from odebench.methods import CORE
from odebench.record import Case, Record

#: The committed baseline, relative to the repository root.
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "results" / "baseline.json"
FORMAT_VERSION = 1

#: Compared exactly.
COUNT_METRICS = (
    "nfe_forward",
    "nfe_backward",
    "vjp_backward",
    "steps_accepted",
    "steps_rejected",
    "steps_accepted_backward",
    "steps_rejected_backward",
)
#: Compared to GRAD_RTOL relative or GRAD_ATOL absolute.
ERROR_METRICS = ("grad_rel_error", "grad_rel_error_discrete")
GRAD_RTOL = 1e-6
GRAD_ATOL = 1e-12
#: A method's backward time over naive's may grow this much over the baseline's ratio.
TIME_FACTOR = 5.0
#: Timed forward+backward runs per case (after one warm-up); the median is used.
REPEATS = 3
RATIO_METRIC = "backward_time_ratio"
RATIO_TO = "naive"

TASKS = ("linear", "spiral", "mlp")
#: Fixed-step cases: the methods that support a fixed grid (seminorm refuses one).
RK4_TASKS = ("linear", "mlp")
RK4_METHODS = ("naive", "adjoint", "aca", "symplectic")


def grid() -> list[Case]:
    """The gated cases: 3 tasks x the 5 core methods with dopri5, plus rk4 on two tasks.

    float64, CPU, default sizes, seed 0, dopri5 at rtol 1e-6 / atol 1e-8, rk4 at the task's
    default step.
    """
    cases = [Case(task=task, method=method, repeats=REPEATS) for task in TASKS for method in CORE]
    cases += [
        Case(task=task, method=method, solver="rk4", repeats=REPEATS)
        for task in RK4_TASKS
        for method in RK4_METHODS
    ]
    return cases


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """One torch thread (reductions in a fixed order) and no noise from torchdiffeq's warnings."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            # rk4 does not take the step-rejection callback the counter installs: harmless.
            warnings.filterwarnings("ignore", message=r"Solver .* does not support callbacks")
            yield
    finally:
        torch.set_num_threads(threads)


def entry(record: Record) -> dict[str, Any]:
    """What the baseline keeps of one Record: its label, case, status and deterministic metrics."""
    row: dict[str, Any] = {"label": record.case.label(), "case": asdict(record.case)}
    row["status"] = record.status
    if record.error is not None:
        row["error"] = record.error
    for name in (*COUNT_METRICS, *ERROR_METRICS):
        row[name] = getattr(record, name)
    # Measured, not gated: kept for the time-ratio gate and for the reader.
    row["time_forward_s"] = record.time_forward_s
    row["time_backward_s"] = record.time_backward_s
    return row


def _add_ratios(rows: dict[str, dict[str, Any]]) -> None:
    """Each case's backward time over naive's on the same case (same task, solver, tolerances)."""

    def key(case: dict[str, Any]) -> tuple:
        return tuple(sorted((k, v) for k, v in case.items() if k != "method"))

    naive = {key(r["case"]): r["time_backward_s"] for r in rows.values() if r["case"]["method"] == RATIO_TO}
    for row in rows.values():
        base = naive.get(key(row["case"]))
        mine = row["time_backward_s"]
        row[RATIO_METRIC] = float(f"{mine / base:.3g}") if mine is not None and base else None


def compute(cases: Iterable[Case] | None = None, *, progress: bool = False) -> dict[str, dict[str, Any]]:
    """Run `cases` (default: `grid`) and return ``{case_id: entry}`` with backward-time ratios."""
    rows: dict[str, dict[str, Any]] = {}
    with _deterministic():
        for case in grid() if cases is None else cases:
            started = time.perf_counter()
            record = run_case(case)
            rows[record.case_id] = entry(record)
            if progress:
                print(f"  {case.label():48s} {record.status:9s} {time.perf_counter() - started:5.1f}s")
    _add_ratios(rows)
    return rows


def environment() -> dict[str, Any]:
    """Versions the numbers depend on; a mismatch is named when a check fails."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchdiffeq": version("torchdiffeq"),
        "machine": platform.machine(),
    }


def save(rows: dict[str, dict[str, Any]], path: Path = DEFAULT_PATH) -> None:
    """Write the baseline file (sorted by label so diffs read well)."""
    # Absolute times are printed by `check`, never stored: they would churn on every update.
    absolute = ("time_forward_s", "time_backward_s")
    rows = {case_id: {k: v for k, v in row.items() if k not in absolute} for case_id, row in rows.items()}
    document = {
        "format": FORMAT_VERSION,
        "about": "Deterministic metrics of odebench.baseline.grid(); regenerate with "
        "`python -m odebench.baseline update` when a change is intended, and commit.",
        "environment": environment(),
        "cases": dict(sorted(rows.items(), key=lambda item: item[1]["label"])),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")


def load(path: Path = DEFAULT_PATH) -> dict[str, Any]:
    """The baseline document; `SystemExit` with a hint when it is missing or of another format."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"no baseline at {path}; create it with `python -m odebench.baseline update`")
    document = json.loads(path.read_text())
    if document.get("format") != FORMAT_VERSION:
        raise SystemExit(
            f"{path} has format {document.get('format')!r}, expected {FORMAT_VERSION}; "
            "regenerate it with `python -m odebench.baseline update`"
        )
    return document


@dataclass(frozen=True)
class Finding:
    """One difference between the baseline and a fresh run."""

    label: str
    metric: str
    message: str
    failure: bool = True

    def __str__(self) -> str:
        kind = "FAIL" if self.failure else "note"
        return f"{kind} {self.label}: {self.metric}: {self.message}"


def _close(old: float, new: float) -> bool:
    return abs(new - old) <= max(GRAD_RTOL * abs(old), GRAD_ATOL)


def compare(
    baseline: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], *, times: bool = True
) -> list[Finding]:
    """Every difference that matters between two ``{case_id: entry}`` maps (see the module doc)."""
    findings: list[Finding] = []
    for case_id, old in baseline.items():
        label = old["label"]
        new = current.get(case_id)
        if new is None:
            findings.append(
                Finding(label, "case", f"in the baseline (id {case_id}) but not produced by this run")
            )
            continue
        if new["status"] != old["status"]:
            detail = f" ({new['error']})" if new.get("error") else ""
            message = f"status {old['status']!r} -> {new['status']!r}{detail}"
            findings.append(Finding(label, "status", message))
            continue
        for metric in COUNT_METRICS:
            if new.get(metric) != old.get(metric):
                message = f"{old.get(metric)} -> {new.get(metric)} (counts must match exactly)"
                findings.append(Finding(label, metric, message))
        for metric in ERROR_METRICS:
            a, b = old.get(metric), new.get(metric)
            if (a is None) != (b is None) or (a is not None and not _close(a, b)):
                change = "" if a is None or b is None or a == 0 else f", relative change {(b - a) / a:+.3g}"
                message = f"{a!r} -> {b!r}{change} (tolerance {GRAD_RTOL:g} relative, {GRAD_ATOL:g} absolute)"
                findings.append(Finding(label, metric, message))
        a, b = old.get(RATIO_METRIC), new.get(RATIO_METRIC)
        if times and a is not None and b is not None and b > TIME_FACTOR * a:
            message = f"{b:.2f}x naive's backward, baseline {a:.2f}x (limit {TIME_FACTOR:g}x the baseline)"
            findings.append(Finding(label, RATIO_METRIC, message))
    for case_id, new in current.items():
        if case_id not in baseline:
            findings.append(
                Finding(new["label"], "case", f"new (id {case_id}), not in the baseline", failure=False)
            )
    return findings


def _fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{1e3 * seconds:.1f}"


def _fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None or not math.isfinite(ratio) else f"{ratio:.2f}"


def table(baseline: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> str:
    """Absolute times and ratios of this run beside the baseline's ratios (for the log)."""
    lines = [
        f"{'case':48s} {'status':7s} {'nfe f/b':>10s} {'fwd ms':>8s} {'bwd ms':>8s} "
        f"{'bwd/naive':>9s} {'baseline':>8s}"
    ]
    for case_id, row in sorted(current.items(), key=lambda item: item[1]["label"]):
        old = baseline.get(case_id, {})
        nfe = f"{row.get('nfe_forward')}/{row.get('nfe_backward')}"
        lines.append(
            f"{row['label']:48s} {row['status']:7s} {nfe:>10s} {_fmt_ms(row.get('time_forward_s')):>8s} "
            f"{_fmt_ms(row.get('time_backward_s')):>8s} {_fmt_ratio(row.get(RATIO_METRIC)):>9s} "
            f"{_fmt_ratio(old.get(RATIO_METRIC)):>8s}"
        )
    return "\n".join(lines)


def check(path: Path = DEFAULT_PATH, *, times: bool = True) -> int:
    """Recompute the grid, print the table and every finding; 0 when nothing fails, else 1."""
    document = load(path)
    baseline = document["cases"]
    started = time.perf_counter()
    print(f"odebench.baseline check: {len(grid())} cases against {path}")
    current = compute(progress=True)
    print(table(baseline, current))
    findings = compare(baseline, current, times=times)
    failures = [f for f in findings if f.failure]
    for finding in findings:
        print(finding)
    elapsed = time.perf_counter() - started
    if failures:
        env, here = document.get("environment", {}), environment()
        if env != here:
            print(f"note: the baseline was made with {env}, this run has {here}")
        print(
            f"baseline check FAILED: {len(failures)} finding(s) in {elapsed:.0f}s. If the change is "
            "intended, run `python -m odebench.baseline update` and commit results/baseline.json."
        )
        return 1
    gated = "counts, gradient errors" + (f", backward-time ratios (x{TIME_FACTOR:g})" if times else "")
    print(f"baseline check passed: {len(current)} cases, {gated} in {elapsed:.0f}s")
    return 0


def update(path: Path = DEFAULT_PATH) -> int:
    """Recompute the grid and rewrite the baseline; prints what changed against the old one."""
    print(f"odebench.baseline update: {len(grid())} cases -> {path}")
    current = compute(progress=True)
    if Path(path).exists():
        try:
            old = load(path)["cases"]
        except SystemExit:
            old = {}
        for finding in compare(old, current, times=False):
            print(finding)
    save(current, path)
    print(f"wrote {path}: {len(current)} cases; commit it with the change that moved the numbers")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odebench.baseline", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("check", "update"))
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="baseline file (%(default)s)")
    parser.add_argument(
        "--no-times",
        action="store_true",
        help="check: skip the backward-time ratio gate (counts and errors only)",
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.path, times=not args.no_times)
    return update(args.path)


if __name__ == "__main__":
    sys.exit(main())
