"""The ``odebench`` command: list | run | report | compare.

Bad input (unknown names, impossible tolerances, a device this machine lacks) exits 2 with one
line naming what is valid. A sweep that completes exits 0 even when cases failed: failures are
results. ``compare`` exits 1 when anything regressed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from odebench.errors import OdebenchError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _floats(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="odebench", description="Benchmark Neural-ODE gradient methods.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = sub.add_parser("list", help="list tasks, methods, solvers or suites")
    listing.add_argument("what", nargs="?", choices=["tasks", "methods", "solvers", "suites"])
    listing.add_argument("--plugin", action="append", default=[], metavar="FILE.py")

    run = sub.add_parser("run", help="run a suite (or a grid) and record every case")
    run.add_argument("--suite", default="quick", help="quick (default) or full")
    run.add_argument("--task", nargs="+", help="restrict/override the tasks axis")
    run.add_argument("--method", nargs="+", help="restrict/override the methods axis")
    run.add_argument("--solver", nargs="+", help="restrict/override the solvers axis")
    run.add_argument("--rtol", nargs="+", type=_floats, help="relative tolerances")
    run.add_argument("--atol-ratio", type=_floats, default=1e-2, help="atol = rtol * this (default 1e-2)")
    run.add_argument("--size", nargs="+", type=int, help="task sizes (the task's size knob)")
    run.add_argument("--step-size", nargs="+", type=_floats, help="steps for fixed-step solvers")
    run.add_argument("--dtype", nargs="+", choices=["float64", "float32"])
    run.add_argument("--device", nargs="+", help="cpu or cuda")
    run.add_argument("--seed", nargs="+", type=int)
    run.add_argument("--repeats", type=int, help="timed runs per case after one warm-up")
    run.add_argument("--max-steps", type=int, default=20_000, help="adaptive step budget per interval")
    run.add_argument("--timeout", type=_floats, default=300.0, help="seconds per case (default 300)")
    run.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    run.add_argument("--out", help="results file (JSONL); default results/<suite>-<time>.jsonl")
    run.add_argument("--resume", action="store_true", help="append to --out, skipping recorded cases")
    run.add_argument("--plugin", action="append", default=[], metavar="FILE.py")
    run.add_argument("--in-process", action="store_true", help="no worker subprocess (debugging)")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--dry-run", action="store_true", help="print the cases and exit")

    report = sub.add_parser("report", help="write report.md, report.html and figures")
    report.add_argument("results", nargs="+")
    report.add_argument("--out", required=True, help="output directory")

    compare = sub.add_parser("compare", help="compare two results files case by case")
    compare.add_argument("base")
    compare.add_argument("new")
    compare.add_argument("--factor", type=_floats, default=1.1, help="noise factor for time and memory")
    compare.add_argument("--out", help="also write the comparison as markdown")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = shlex.join(["odebench", *argv])
    try:
        if args.command == "list":
            return _list(args)
        if args.command == "run":
            return _run(args, command)
        if args.command == "report":
            return _report(args, command)
        return _compare(args)
    except OdebenchError as exc:
        print(f"odebench: error: {exc}", file=sys.stderr)
        return 2


def _list(args) -> int:
    from odebench import methods, solvers, suites, tasks
    from odebench.plugins import load_plugins

    load_plugins(args.plugin)
    sections = [args.what] if args.what else ["tasks", "methods", "solvers", "suites"]
    for section in sections:
        print(f"{section}:")
        if section == "tasks":
            for name, task in tasks.registry.items():
                print(f"  {name:26s} {task.description} [{task.size_knob}, default {task.default_size}]")
        elif section == "methods":
            for name, method in methods.registry.items():
                caps = method.capabilities
                print(f"  {name:26s} {method.description} ({caps.backend} {method.backend_version})")
            for name, reason in methods.unavailable().items():
                print(f"  {name:26s} unavailable: {reason}")
        elif section == "solvers":
            for name, solver in solvers.registry.items():
                print(f"  {name:26s} {solver.description}")
        else:
            for name, suite in suites.registry.items():
                print(f"  {name:26s} {suite.description} ({suite.expected_duration})")
    return 0


def _validate_axes(args) -> None:
    """Resolve every name and number up front, so bad input fails before any case runs."""
    from odebench import methods, solvers, suites, tasks
    from odebench.harness.run import check_device
    from odebench.methods.base import check_tolerances

    suites.get(args.suite)
    for name in args.task or ():
        tasks.get(name)
    for name in args.method or ():
        methods.get(name)
    for name in args.solver or ():
        solvers.get(name)
    for device in args.device or ():
        check_device(device)
    for dtype in args.dtype or ("float64",):
        for rtol in args.rtol or ():
            check_tolerances(rtol, rtol * args.atol_ratio, _torch_dtype(dtype))
    for value, name in ((args.size, "--size"), (args.step_size, "--step-size")):
        if value and any(v <= 0 for v in value):
            raise _input_error(f"{name} must be positive, got {value}")
    for value, name in (
        (args.repeats, "--repeats"),
        (args.threads, "--threads"),
        (args.max_steps, "--max-steps"),
    ):
        if value is not None and value < 1:
            raise _input_error(f"{name} must be at least 1, got {value}")
    if args.timeout <= 0:
        raise _input_error(f"--timeout must be positive, got {args.timeout}")


def _input_error(message: str) -> OdebenchError:
    from odebench.errors import InvalidInputError

    return InvalidInputError(message)


def _torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def _run(args, command: str) -> int:
    from odebench import suites
    from odebench.environment import collect_metadata
    from odebench.harness.sweep import run_sweep
    from odebench.plugins import load_plugins
    from odebench.summary import summary_table

    load_plugins(args.plugin)
    _validate_axes(args)
    overrides = {
        "tasks": args.task,
        "methods": args.method,
        "solvers": args.solver,
        "rtols": args.rtol,
        "sizes": args.size,
        "step_sizes": args.step_size,
        "dtypes": args.dtype,
        "devices": args.device,
        "seeds": args.seed,
    }
    cases = suites.get(args.suite).cases(
        overrides, repeats=args.repeats, atol_ratio=args.atol_ratio, max_steps=args.max_steps
    )
    if not cases:
        raise _input_error("no case matches: every (method, solver) pair asked for is unsupported")
    if args.dry_run:
        for case in cases:
            print(case.label())
        print(f"{len(cases)} cases")
        return 0
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"results/{args.suite}-{stamp}.jsonl")
    devices = args.device or ("cpu",)
    metadata = collect_metadata(device=devices[0], command=command)
    metadata.update(suite=args.suite, threads=args.threads, timeout_s=args.timeout)
    result = run_sweep(
        cases,
        out,
        metadata=metadata,
        resume=args.resume,
        isolate=not args.in_process,
        timeout=args.timeout,
        threads=args.threads,
        plugins=args.plugin,
        progress=not args.no_progress,
    )
    print(summary_table(result.records))
    failed = len(result.failures)
    print(
        f"\n{len(result.records)} cases run ({failed} failed), {result.skipped} already recorded, "
        f"in {result.wall_time_s:.1f} s -> {out}"
    )
    if result.interrupted:
        print(f"interrupted: rerun with --resume --out {out} to continue", file=sys.stderr)
        return 130
    return 0


def _report(args, command: str) -> int:
    from odebench.report import write_report
    from odebench.results import load

    frame = load(args.results)
    html = write_report(frame, Path(args.out), command=command, sources=list(args.results))
    print(f"report: {html} (and report.md, figures/ beside it)")
    return 0


def _compare(args) -> int:
    from odebench.report import compare
    from odebench.results import load

    comparison = compare(load(args.base), load(args.new), factor=args.factor)
    print(comparison.markdown)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(comparison.markdown)
    return 1 if comparison.regressed else 0


if __name__ == "__main__":
    sys.exit(main())
