"""The ``odebench`` command: list | run | train | report | compare | merge.

Bad input (unknown names, impossible tolerances, a device this machine lacks) exits 2 with one
line naming what is valid. A sweep that completes exits 0 even when cases failed: failures are
results. ``compare`` exits 1 when anything regressed. Ctrl-C (or SIGTERM) stops a sweep after the
records written and prints how to resume it (exit 130, 143 for SIGTERM); output cut short by a
closed pipe (``odebench list | head``) ends quietly (exit 141). Warnings are one line each, each
once. ``list`` and ``compare`` print JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import shlex
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from odebench import __version__
from odebench.catalog import SECTIONS
from odebench.errors import InvalidInputError, OdebenchError, first_line
from odebench.policy import Policy
from odebench.statuses import STATUSES


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _floats(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None


def _positive(value: str) -> float:
    number = _floats(value)
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return number


#: Help of ``--plugin``, shared by every command that takes it.
_PLUGIN_HELP = "a Python file registering your own tasks, methods or studies (repeatable)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="odebench", description="Benchmark Neural-ODE gradient methods.")
    parser.add_argument("--version", action="version", version=f"odebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = sub.add_parser("list", help="list tasks, methods, solvers or suites")
    listing.add_argument(
        "what",
        nargs="?",
        choices=SECTIONS,
        help="one section (default: every one)",
    )
    listing.add_argument("--plugin", action="append", default=[], metavar="FILE.py", help=_PLUGIN_HELP)
    listing.add_argument("--json", action="store_true", help="print JSON: each section's entries and fields")

    run = sub.add_parser(
        "run",
        help="run a suite (or a grid) of gradient cases and record every case",
        description=(
            "What runs is what was asked. No axis: the suite (quick by default). Axes without "
            "--suite: exactly their product over the defaults (methods: the five core methods; "
            "solver: dopri5; rtol: the dtype's default, 1e-6 in float64 and 1e-4 in float32; size: "
            "the task's default; step: the task's own step at each size; float64; cpu; seed 0). "
            "--suite with --task/--method/--solver/--rtol/--size/--step-size: the suite's cases "
            "with those values. --dtype, --device and --seed apply to every case. rtol applies "
            "to adaptive solvers, --step-size to fixed-step ones. Cases that cannot run are left "
            "out with the reason."
        ),
    )
    run.add_argument("--suite", help="quick (the default without axes), full or gate (gradient suites)")
    run.add_argument("--task", nargs="+", help="tasks (default: every task)")
    run.add_argument("--size", nargs="+", type=int, help="task sizes (the task's size knob)")
    run.add_argument("--repeats", type=int, help="timed runs per case after the counted run")
    run.add_argument(
        "--memory-backend",
        help="what measures peak memory: allocator (default: exact tensor bytes), memray (the "
        "whole process's allocations, CPU) or cuda (the CUDA allocator's own peak)",
    )
    run.add_argument("--atol-ratio", type=_floats, default=1e-2, help="atol = rtol * this (default 1e-2)")
    run.add_argument(
        "--no-ratios",
        action="store_true",
        help="skip the same-run time ratio case per problem (then the report gives no speed verdict)",
    )
    run.add_argument(
        "--model",
        metavar="PACKAGE.MODULE:FACTORY",
        help="your own model: a function returning (func, y0, t, loss), run as one more task "
        "(in its dtype and device unless --dtype/--device say otherwise)",
    )
    _sweep_arguments(run)

    train = sub.add_parser(
        "train",
        help="train studies' models with each gradient method and record every run",
        description=(
            "The rules of `run`, for training runs. No axis: the suite (train-quick by default). "
            "Axes without --suite: exactly their product over each study's published setup "
            "(its solver, tolerances or step and budget; the five core methods; float64; cpu; "
            "seed 0). Tolerances are explicit: --rtol or --atol alone picks the study's published "
            "pair with that value, any other pair needs both. --suite with --study/--method/"
            "--solver/--rtol/--atol/--step-size: the suite's runs with those values. --iterations, "
            "--dtype, --device and --seed apply to every run."
        ),
    )
    train.add_argument(
        "--suite", help="train-quick (the default without axes), claims or train-full (training suites)"
    )
    train.add_argument("--study", nargs="+", help="studies (see `odebench list studies`)")
    train.add_argument("--atol", nargs="+", type=_floats, help="absolute tolerances of adaptive solvers")
    train.add_argument("--iterations", nargs="+", type=int, help="training iterations (default: the study's)")
    train.add_argument("--eval-every", type=int, help="check held-out metric and gradient error every N")
    train.add_argument("--max-seconds", type=_floats, help="stop a run after this much training time")
    _sweep_arguments(train)

    report = sub.add_parser("report", help="write report.md, report.html and figures")
    report.add_argument("results", nargs="+", help="results files (JSONL), or folders of them")
    report.add_argument("--out", required=True, help="output directory")
    report.add_argument("--max-memory", type=_positive, help="memory budget in MiB for the picks (> 0)")
    report.add_argument("--max-error", type=_positive, help="gradient error target for the picks (> 0)")

    compare = sub.add_parser(
        "compare",
        help="compare two results files case by case",
        description="Exit 1 when a case regressed or a case of BASE is missing from NEW.",
    )
    compare.add_argument("base", help="the results file to compare against")
    compare.add_argument("new", help="the results file judged")
    default = Policy()
    compare.add_argument(
        "--ratio-factor", type=_floats, help="also judge each method's time over naive's in the same run"
    )
    compare.add_argument(
        "--memory-factor",
        type=_floats,
        default=default.memory_factor,
        help=f"peak memory (default {default.memory_factor:g})",
    )
    compare.add_argument("--time-factor", type=_floats, help="also judge absolute times (not by default)")
    compare.add_argument(
        "--interleaved-factor",
        type=_floats,
        default=default.interleaved_factor,
        help=f"interleaved time ratios (default {default.interleaved_factor:g})",
    )
    compare.add_argument("--out", help="also write the comparison as markdown")
    compare.add_argument(
        "--json",
        action="store_true",
        help="print JSON (verdict, counts, every regression) instead of markdown",
    )

    merge = sub.add_parser(
        "merge",
        help="combine results files (shards, machines) into one",
        description=(
            "Every header is kept; a case recorded in several files keeps the record of the last "
            "file given. Files of different odebench versions (or commits) or suites are refused "
            "unless --force."
        ),
    )
    merge.add_argument("results", nargs="+", help="results files, in order (a later file's record wins)")
    merge.add_argument("--out", required=True, help="the merged results file (must not exist)")
    merge.add_argument("--force", action="store_true", help="merge different versions or suites")
    return parser


def _shard(value: str) -> tuple[int, int]:
    index, _, count = value.partition("/")
    try:
        index_, count_ = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not I/N: {value!r}") from None
    if not 1 <= index_ <= count_:
        raise argparse.ArgumentTypeError(f"shard {value} is not one of 1/{count_} .. {count_}/{count_}")
    return index_, count_


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags `run` and `train` share: axes, settings, isolation, output."""
    parser.add_argument("--method", nargs="+", help="gradient methods (default: the five core methods)")
    parser.add_argument("--solver", nargs="+", help="solvers")
    parser.add_argument("--rtol", nargs="+", type=_floats, help="relative tolerances of adaptive solvers")
    parser.add_argument("--step-size", nargs="+", type=_floats, help="steps of fixed-step solvers")
    parser.add_argument(
        "--dtype",
        nargs="+",
        choices=["float64", "float32"],
        help="precision of every case (default float64; with --model, the model's)",
    )
    parser.add_argument("--device", nargs="+", help="cpu or cuda")
    parser.add_argument("--seed", nargs="+", type=int, help="seeds of the problems' random draws (default 0)")
    parser.add_argument("--max-steps", type=int, default=20_000, help="adaptive step budget per interval")
    parser.add_argument("--timeout", type=_floats, default=300.0, help="seconds per case (default 300)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    parser.add_argument(
        "--memory-limit",
        type=_floats,
        metavar="MIB",
        help="memory a case may take before it ends as 'memory' (default: 90%% of this machine's "
        "over the local workers; 0: none)",
    )
    parser.add_argument("--out", help="results file (JSONL); default results/<suite>-<time>.jsonl")
    parser.add_argument("--resume", action="store_true", help="append to --out, skipping recorded cases")
    parser.add_argument(
        "--retry-failed",
        nargs="*",
        choices=[s for s in STATUSES if s != "ok"],
        metavar="STATUS",
        help="with --resume: run again the recorded cases with these statuses (default: timeout crashed)",
    )
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py", help=_PLUGIN_HELP)
    parser.add_argument("--in-process", action="store_true", help="no worker subprocess (debugging)")
    parser.add_argument(
        "--executor", choices=["local", "dask"], default="local", help="where cases run (default local)"
    )
    parser.add_argument(
        "--workers", type=int, help="local: worker processes (default 1); dask: start a local cluster of N"
    )
    parser.add_argument("--scheduler", metavar="ADDRESS", help="dask: the scheduler of a running cluster")
    parser.add_argument("--retries", type=int, help="dask: resubmit a case whose worker died (default 2)")
    parser.add_argument(
        "--one-per-host", action="store_true", help="dask: one CPU case at a time per host (quiet timings)"
    )
    parser.add_argument("--shard", type=_shard, metavar="I/N", help="run only the I-th of N shards (1-based)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--dry-run", action="store_true", help="print the cases and exit")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = shlex.join(["odebench", *argv])
    try:
        with _one_line_warnings():
            return _dispatch(args, command)
    except BrokenPipeError:  # the reader left (``odebench list | head -1``): end quietly
        _quiet_stdout()
        return 128 + signal.SIGPIPE
    except OdebenchError as exc:
        print(f"odebench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unwritable or unreadable path, a full disk
        message = f"odebench: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        if args.command in ("run", "train") and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            message += (
                f"; what was recorded is kept: free the space, then rerun with --resume --out {exc.filename}"
            )
        print(message, file=sys.stderr)
        return 2


def _dispatch(args, command: str) -> int:
    if args.command == "list":
        return _list(args)
    if args.command in ("run", "train"):
        with _user_model(args):
            return _run(args, command)
    if args.command == "report":
        return _report(args, command)
    if args.command == "merge":
        return _merge(args)
    return _compare(args)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing more."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show each warning as one line, ``odebench: warning: ...``, and each text once per command
    (a results file that several readers read warns once)."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = first_line(str(message))
        if not category.__module__.startswith("odebench"):
            text = f"{category.__name__}: {text}"
        if text not in seen:
            seen.add(text)
            with contextlib.suppress(OSError, ValueError):
                print(f"odebench: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _user_model(args) -> Iterator[None]:
    """With ``run --model``: its task registered here and, shipped as a plug-in, in the worker."""
    if getattr(args, "model", None) is None:
        yield
        return
    from odebench.harness.shipping import ship
    from odebench.usermodel import from_factory, registered

    task = from_factory(args.model)
    _check_resumed_model(args, task.name)
    args.task = [*(args.task or ()), task.name]
    args.dtype = args.dtype or [task.dtype_name]
    args.device = args.device or [task.device_name]
    with registered(task), tempfile.TemporaryDirectory(prefix="odebench-model-") as scratch:
        if not args.in_process:
            args.plugin = [*args.plugin, str(ship(task, Path(scratch), remedy="--in-process"))]
        yield


def _check_resumed_model(args, name: str) -> None:
    """On ``--resume``, warn (one line) when the file records this model class under another
    content hash: its cases get new ids, so none of the recorded ones is skipped."""
    if not (args.resume and args.out and Path(args.out).is_file()):
        return
    from odebench.results import recorded_tasks

    try:
        recorded = recorded_tasks(args.out)
    except OdebenchError:  # not a results file: the writer refuses it in its own words
        return
    prefix = name.rsplit("-", 1)[0] + "-"
    others = sorted(task for task in recorded if task.startswith(prefix) and task != name)
    if others:
        print(
            f"odebench: warning: {args.out} records {', '.join(others)}, but --model {args.model} is now "
            f"{name}: its content changed (an unseeded model?), so none of its recorded cases is "
            "skipped; seed the factory to resume it",
            file=sys.stderr,
        )


def _list(args) -> int:
    from odebench import catalog
    from odebench.plugins import load_plugins

    load_plugins(args.plugin)
    sections = [args.what] if args.what else list(catalog.SECTIONS)
    if args.json:
        print(json.dumps({section: catalog.entries(section) for section in sections}, indent=2, default=str))
        return 0
    for section in sections:
        print(f"{section}:")
        for entry in catalog.entries(section):
            print(f"  {catalog.line(section, entry)}")
    return 0


def _axis(args, name: str) -> tuple:
    """The values given for a flag this command may not have (``run`` has no --study)."""
    return tuple(getattr(args, name, None) or ())


def _plan(args):
    """The run's cases (`odebench.suites.plan`, which checks every name and value)."""
    from odebench import suites

    selection = {
        "tasks": _axis(args, "task"),
        "studies": _axis(args, "study"),
        "methods": args.method,
        "solvers": args.solver,
        "rtols": args.rtol,
        "atols": _axis(args, "atol"),
        "sizes": _axis(args, "size"),
        "step_sizes": args.step_size,
    }
    setting_axes = {
        "dtypes": args.dtype,
        "devices": args.device,
        "seeds": args.seed,
        "iterations": _axis(args, "iterations"),
    }
    ratio = getattr(args, "atol_ratio", None)  # `train` has none: its tolerances are explicit
    settings = suites.Settings(
        repeats=getattr(args, "repeats", None),
        atol_ratio=suites.Settings.atol_ratio if ratio is None else ratio,
        max_steps=args.max_steps,
        eval_every=getattr(args, "eval_every", None),
        max_seconds=getattr(args, "max_seconds", None),
        ratios=not getattr(args, "no_ratios", False),
        memory=getattr(args, "memory_backend", None),
    )
    job = "training" if args.command == "train" else "gradient"
    return suites.plan(args.suite, selection, setting_axes, settings, default=_default_suite(args), job=job)


def _default_suite(args) -> str:
    return "train-quick" if args.command == "train" else "quick"


def _executor_options(args):
    from odebench.harness.executors import ExecutorOptions

    return ExecutorOptions(
        in_process=args.in_process,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        retries=args.retries,
        one_per_host=args.one_per_host,
        plugins=tuple(args.plugin),
        threads=args.threads,
        memory_limit_mib=args.memory_limit,
    )


def _run(args, command: str) -> int:
    from odebench.environment import collect_metadata
    from odebench.harness.executors import describe_line
    from odebench.harness.summary import counted, summary_table
    from odebench.harness.sweep import prepare, run_plan
    from odebench.plugins import load_plugins

    if args.resume and not args.out:
        raise InvalidInputError("--resume continues a results file: give --out FILE too")
    load_plugins(args.plugin)
    options = _executor_options(args)
    options.check_devices(args.device or (), getattr(args, "memory_backend", None))
    expansion = _plan(args)
    asked = dict(shard_of=args.shard, resume=args.resume, retry=_retried(args), timeout=args.timeout)
    cases = prepare(expansion, **asked)
    count = counted(len(cases), args.command) + (
        f" (shard {args.shard[0]}/{args.shard[1]} of {len(expansion.cases)})" if args.shard else ""
    )
    left_out = [f"  left out {n}: {reason}" for reason, n in expansion.reasons().items()]
    if args.dry_run:
        for case in cases:
            print(case.label())
        for case, reason in expansion.left_out:
            print(f"left out {case.label()}: {reason}")
        print("\n".join([count, *left_out]))
        return 0
    suite = args.suite or ("grid" if any(_selection_given(args)) else _default_suite(args))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"results/{suite}-{stamp}.jsonl")
    print("\n".join([f"odebench {args.command}: {count} -> {out}", *left_out]), flush=True)
    devices = args.device or ("cpu",)
    metadata = collect_metadata(device=devices[0], command=command)
    metadata.update(suite=suite, threads=args.threads, timeout_s=args.timeout)
    with _sigterm_interrupts() as received, options.build() as executor:
        print(describe_line(executor.describe()), flush=True)
        result = run_plan(
            cases, out, executor=executor, metadata=metadata, progress=not args.no_progress, **asked
        )
    print(summary_table(result.records))
    failed = len(result.failures)
    print(
        f"\n{counted(len(result.records), args.command, done=True)} ({failed} failed), "
        f"{result.skipped} already recorded, "
        f"in {result.wall_time_s:.1f} s -> {out}"
    )
    if result.interrupted:
        print(f"interrupted: rerun with --resume --out {out} to continue", file=sys.stderr)
        return 128 + (received[-1] if received else signal.SIGINT)
    return 0


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[list[int]]:
    """While a sweep runs, SIGTERM (``kill``, a batch scheduler's stop) stops it as Ctrl-C does:
    after the records already written, with the line that resumes it. Yields the signals seen."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # handlers live in the main thread
        yield received
        return

    def interrupt(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _retried(args) -> tuple[str, ...]:
    """The statuses ``--retry-failed`` names (given alone: a timeout and a crash, the failures a
    loaded machine causes)."""
    if args.retry_failed is None:
        return ()
    return tuple(args.retry_failed) or ("timeout", "crashed")


def _selection_given(args):
    return (
        _axis(args, "task"),
        _axis(args, "study"),
        args.method,
        args.solver,
        args.rtol,
        _axis(args, "atol"),
        _axis(args, "size"),
        args.step_size,
    )


def _report(args, command: str) -> int:
    from odebench.report import write_report
    from odebench.results import load, load_curves, load_ratios, load_training

    frame, training = load(args.results), load_training(args.results)
    if frame.empty and training.empty:
        raise InvalidInputError(f"no records in {', '.join(args.results)}; nothing to report")
    try:
        html = write_report(
            frame,
            Path(args.out),
            command=command,
            sources=list(args.results),
            max_memory_mib=args.max_memory,
            max_error=args.max_error,
            training=training,
            curves=load_curves(args.results),
            ratios=load_ratios(args.results),
        )
    except KeyboardInterrupt:
        print(f"odebench report: interrupted; {args.out} left as it was (no partial report)", file=sys.stderr)
        return 130
    print(f"report: {html} (and report.md, figures/ beside it)")
    return 0


def _merge(args) -> int:
    from odebench.results import merge

    result = merge(args.results, args.out, force=args.force)
    print(
        f"merged {len(args.results)} files ({result.headers} headers): {result.records} records, "
        f"{result.replaced} replaced by a later file's -> {args.out}"
    )
    if result.missing_shards:
        print(f"warning: no file of shard {', '.join(result.missing_shards)}", file=sys.stderr)
    return 0


def _compare(args) -> int:
    from odebench.comparison import compare, render_comparison
    from odebench.comparison.as_json import as_json
    from odebench.results import load, load_ratios

    policy = Policy(
        ratio_factor=args.ratio_factor,
        memory_factor=args.memory_factor,
        time_factor=args.time_factor,
        interleaved_factor=args.interleaved_factor,
    )
    ratios = {"base_ratios": load_ratios(args.base), "new_ratios": load_ratios(args.new)}
    comparison = compare(load(args.base), load(args.new), policy, **ratios)
    if comparison.n_common == 0:
        raise InvalidInputError(
            f"{args.base} and {args.new} have no cases in common ({comparison.n_only_in_base} only in "
            f"base, {comparison.n_only_in_new} only in new): nothing to compare"
        )
    markdown = render_comparison(comparison)
    verdict = 1 if comparison.regressed else 0
    print(json.dumps(as_json(comparison, verdict), indent=2) if args.json else markdown)
    if args.out:
        try:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(markdown)
        except OSError as exc:  # the verdict above stands: a regression still exits 1
            print(
                f"odebench: error: {exc.strerror or exc}: {args.out} (the comparison was not saved)",
                file=sys.stderr,
            )
            return verdict or 2
    return verdict


if __name__ == "__main__":
    sys.exit(main())
