"""Your own model, measured like a task: ``compare_methods(func, y0, t, loss)``.

A model you already have (an `nn.Module` field ``func(t, y)``, its ``y0`` and ``t``, a loss on the
solution) becomes a transient `UserTask`, registered for the duration of the call, and ordinary
`Case`s of it run through the sweep and `run_case`: every measurement, status and record field
means what it means for a built-in task, and the records form an ordinary results file.

* **Name.** ``model:<Class>-<8 hex>``: a sha256 of the field's and the loss's types, the exact
  bytes of every tensor (parameters, buffers, ``y0``, ``t``, a given reference) and the values of
  the field and the loss at a fixed probe (6 significant digits, for what is not a tensor), so two
  different models never share a ``case_id`` and the same model always does.
* **Reference.** The task's problem is a float64 CPU copy of yours (a float32 model upcast
  exactly), so the automatic reference is that copy through dopri8
  (`odebench.references.reference_gradient`), cached in a temporary folder unless you name one.
  A reference you pass becomes the task's exact gradient (``reference_kind`` "user").
* **Your objects** are never touched: the task holds copies, and every case builds its own.
* **Isolation.** In-process by default (a notebook's classes cannot be imported elsewhere).
  ``isolate=True`` ships the task to the sweep's worker (`odebench.harness.shipping`), so a
  segfault or a hang costs one record; a task that another process could not unpickle is
  refused in one line.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib
import math
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from odebench import methods as method_registry
from odebench import solvers, tasks
from odebench.errors import InvalidInputError, describe
from odebench.jobs.base import MAX_STEPS
from odebench.jobs.gradient import DTYPES, Case, Record
from odebench.measure.timing import torch_threads
from odebench.methods.base import check_problem, summary_of
from odebench.tasks.base import Gradient, Problem, Task

#: A fixed-step solver's default step is at most the time span over this many steps.
FIXED_STEPS = 100
#: Significant digits of the probe values that enter a model's name.
PROBE_DIGITS = 6


class UserTask(Task):
    """One user's problem as a task of one size; `build` hands out fresh copies of it.

    Args:
        func: the vector field ``func(t, y)``; every parameter is differentiated (frozen ones too).
        y0, t: initial state and output times (strictly increasing).
        loss: maps the solution, shape ``(len(t), *y0.shape)``, to a scalar. An `nn.Module` loss
            is copied and cast with the field; a function is used as it is, so tensors it closes
            over must work on a float64 CPU solution for the automatic reference.
        reference: ``(dL/dy0, {parameter name: dL/dparameter})``, your own reference gradient.
        reference_error: its relative error (None: exact to float64 round-off).

    Raises:
        InvalidInputError: in one line, for input that cannot be measured (see `check_inputs`).
    """

    description = "your own model"
    exact_gradient_kind = "user"  # a reference passed is the user's, not a closed form
    paper = "none: your model"
    probes = "your own model, as you wrote it"
    size_knob = "none"
    default_size = 1
    sizes = (1,)

    def __init__(
        self,
        func: nn.Module,
        y0: torch.Tensor,
        t: torch.Tensor,
        loss: Callable[[torch.Tensor], torch.Tensor],
        reference: Gradient | None = None,
        reference_error: float | None = None,
    ) -> None:
        check_inputs(func, y0, t, loss)
        self.dtype_name = next(name for name, dtype in DTYPES.items() if dtype == y0.dtype)
        self.device_name = str(y0.device)
        self.name = f"model:{type(func).__name__}"
        try:
            self._func = _float64_copy(func)
            self._loss = _float64_copy(loss) if isinstance(loss, nn.Module) else loss
        except Exception as exc:  # deepcopy of an exotic module
            raise InvalidInputError(f"cannot copy the model: {describe(exc)}") from None
        for parameter in self._func.parameters():
            parameter.requires_grad_(True)
        self._y0 = y0.detach().to(dtype=torch.float64, device="cpu").clone()
        self._t = t.detach().to(dtype=torch.float64, device="cpu").clone()
        self._reference = None if reference is None else _checked_reference(reference, self._func, self._y0)
        self._reference_error = reference_error
        if self._reference is not None:
            self._exact_gradient = functools.partial(_given, self._reference)
        native = _probe(self.build(dtype=y0.dtype, device=y0.device), "your model")
        if self._reference is None:
            _probe(self.build(), "the float64 CPU copy that the automatic reference solves")
        self.name = f"model:{type(func).__name__}-{self._digest(native)[:8]}"

    def _build(self, size: int, generator: torch.Generator) -> Problem:
        loss = copy.deepcopy(self._loss) if isinstance(self._loss, nn.Module) else self._loss
        return Problem(
            func=copy.deepcopy(self._func),
            y0=self._y0.clone(),
            t=self._t.clone(),
            loss=loss,
            step_size=default_step(self._t),
            exact_gradient_error=self._reference_error,
        )

    def _digest(self, probe: str) -> str:
        digest = hashlib.sha256(f"{_qualname(self._func)}|{_qualname(self._loss)}|{probe}".encode())
        tensors = [("y0", self._y0), ("t", self._t)]
        for owner, module in (("func", self._func), ("loss", self._loss)):
            if isinstance(module, nn.Module):
                tensors += [(f"{owner}.{n}", x) for n, x in module.named_parameters()]
                tensors += [(f"{owner}.{n}", x) for n, x in module.named_buffers()]
        if self._reference is not None:
            grad_y0, grad_params = self._reference
            tensors += [("reference.y0", grad_y0), *((f"reference.{n}", g) for n, g in grad_params.items())]
            digest.update(repr(self._reference_error).encode())
        for label, x in tensors:
            x = x.detach().to(dtype=torch.float64, device="cpu").contiguous()
            digest.update(f"{label}:{tuple(x.shape)}:".encode())
            digest.update(x.numpy().tobytes())
        return digest.hexdigest()


def default_step(t: torch.Tensor) -> float:
    """The largest step of at most ``span / FIXED_STEPS`` that divides the shortest output
    interval, so that on evenly spaced times every output is a step's end (an output between
    two steps is interpolated, with an error of its own)."""
    gap = float((t[1:] - t[:-1]).min())
    return gap / math.ceil(gap / (float(t[-1] - t[0]) / FIXED_STEPS))


def check_inputs(func: Any, y0: Any, t: Any, loss: Any) -> None:
    """Refuse, in one line, what no case could measure: the checks every solve makes
    (`odebench.methods.base.check_problem`), at least two output times, a dtype odebench
    measures in, finite ``y0`` and ``t``, a callable loss."""
    if isinstance(y0, torch.Tensor) and y0.is_floating_point() and y0.dtype not in DTYPES.values():
        raise InvalidInputError(f"y0 has dtype {y0.dtype}; valid: {', '.join(DTYPES)}")
    check_problem(func, y0, t, min_times=2, times_as_y0=False)  # t is kept in float64
    for name, x in (("y0", y0), ("t", t)):
        if x.device.type != "meta" and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise InvalidInputError(
                f"{name} holds {bad} NaN or infinite value(s); every value must be finite"
            )
    if not callable(loss):
        raise InvalidInputError(f"loss must be callable on the solution, got {summary_of(loss)}")


def _float64_copy(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).to(dtype=torch.float64, device="cpu")


def _qualname(obj: Any) -> str:
    owner = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{owner.__module__}.{owner.__qualname__}"


def _given(reference: Gradient, problem: Problem) -> Gradient:
    """The task's exact-gradient hook when the user passed a reference."""
    return reference


def _checked_reference(reference: Any, func: nn.Module, y0: torch.Tensor) -> Gradient:
    """``reference`` in float64 on the CPU, parameters in ``func.named_parameters()`` order."""
    shape = "reference must be (dL/dy0, {parameter name: dL/dparameter})"
    if not (isinstance(reference, (tuple, list)) and len(reference) == 2):
        raise InvalidInputError(f"{shape}, got {summary_of(reference)}")
    grad_y0, grad_params = reference
    named = dict(func.named_parameters())
    if not isinstance(grad_params, Mapping) or set(grad_params) != set(named):
        got = sorted(grad_params) if isinstance(grad_params, Mapping) else summary_of(grad_params)
        raise InvalidInputError(f"{shape}; it names {got}, func has {list(named)}")
    for name, want, got in [("dL/dy0", y0, grad_y0), *((n, named[n], grad_params[n]) for n in named)]:
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            raise InvalidInputError(
                f"reference {name} must have shape {tuple(want.shape)}, got {summary_of(got)}"
            )
    cpu64 = dict(dtype=torch.float64, device="cpu")
    return grad_y0.detach().to(**cpu64), {n: grad_params[n].detach().to(**cpu64) for n in named}


def _probe(problem: Problem, what: str) -> str:
    """Evaluate the field and the loss once (checking their shapes); their values, rounded."""
    generator = torch.Generator().manual_seed(0)
    shape = (len(problem.t), *problem.y0.shape)
    trajectory = torch.randn(shape, generator=generator, dtype=torch.float64).to(problem.y0)
    try:
        with torch.no_grad():
            field = problem.func(problem.t[0], problem.y0)
            field_probe = problem.func(problem.t[-1], trajectory[-1])
            value = problem.loss(trajectory)
    except Exception as exc:
        raise InvalidInputError(
            f"{what} failed on a probe: {describe(exc, 300)} (tensors a loss function closes over "
            "must work there: make them buffers of an nn.Module loss, or pass reference=)"
        ) from None
    if not isinstance(field, torch.Tensor) or field.shape != problem.y0.shape:
        raise InvalidInputError(
            f"func(t, y) must return y's shape {tuple(problem.y0.shape)}, got {summary_of(field)}"
        )
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise InvalidInputError(f"loss(solution) must return a scalar tensor, got {summary_of(value)}")
    values = (field.pow(2).sum(), field_probe.pow(2).sum(), value)
    return " ".join(f"{float(v):.{PROBE_DIGITS - 1}e}" for v in values)


@contextlib.contextmanager
def registered(task: Task) -> Iterator[Task]:
    """Register `task` in `odebench.tasks` for the ``with`` block (unless it is already there)."""
    added = task.name not in tasks.registry
    if added:
        tasks.register(task.name, task)
    try:
        yield task
    finally:
        if added:
            tasks.registry.unregister(task.name)


# ------------------------------------------------------------------------------ from the shell


def from_factory(spec: str) -> UserTask:
    """The task of ``package.module:factory``, a function returning ``(func, y0, t, loss)``.

    The current directory is importable, as for ``python -m``. Every failure (no such module or
    attribute, a factory that raises or returns something else) is one `InvalidInputError` line.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidInputError(f"model {spec!r}: expected package.module:factory")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise InvalidInputError(
            f"model {spec!r}: cannot import {module_name}: {describe(exc, 200)}"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise InvalidInputError(f"model {spec!r}: {module_name} has no function {attribute}")
    try:
        made = factory()
    except Exception as exc:
        raise InvalidInputError(f"model {spec!r}: {attribute}() raised {describe(exc, 200)}") from None
    if not (isinstance(made, (tuple, list)) and len(made) == 4):
        raise InvalidInputError(
            f"model {spec!r}: {attribute}() must return (func, y0, t, loss), got {summary_of(made)}"
        )
    try:
        return UserTask(*made)
    except InvalidInputError as exc:
        raise InvalidInputError(f"model {spec!r}: {exc}") from None


# ------------------------------------------------------------------------------ one call


def compare_methods(
    func: nn.Module,
    y0: torch.Tensor,
    t: torch.Tensor,
    loss: Callable[[torch.Tensor], torch.Tensor],
    methods: str | Sequence[str] | None = None,
    solver: str = "dopri5",
    rtols: float | Sequence[float] = (1e-3, 1e-6),
    repeats: int = 3,
    *,
    atol: float | Sequence[float] | None = None,
    step_sizes: float | Sequence[float] | None = None,
    reference: Gradient | None = None,
    reference_error: float | None = None,
    isolate: bool = False,
    timeout: float | None = 300.0,
    threads: int = 1,
    plugins: Sequence[str] = (),
    cache_dir: str | os.PathLike[str] | None = None,
    max_steps: int = MAX_STEPS,
    progress: bool = True,
    ratios: bool = True,
) -> MethodComparison:
    """Measure every available gradient method (or `methods`) on your model, as `run_case` does.

    Each method at each tolerance (adaptive `solver`) or step (fixed-step: `step_sizes`, default
    `default_step`) is one case in your model's dtype and device, scored against the
    float64 dopri8 reference of a float64 copy of your model (or `reference`). Failures become
    records with their status; cases the dtype cannot run (a tolerance below its resolution) are
    left out with the reason (`MethodComparison.left_out`).

    Args:
        func, y0, t, loss: your problem (see `UserTask`); none of them is modified.
        methods: method names, or one name (None: every available torch method; diffrax's
            ``name@diffrax`` run on request, each compiling for a few seconds, on your model
            translated to JAX through ``torch.export``).
        rtols: relative tolerances of an adaptive `solver`, or one (each positive).
        atol: absolute tolerance(s) of an adaptive `solver`, crossed with `rtols` (None: each
            ``rtol * ATOL_RATIO``, 1e-2, as ``odebench run``'s ``--atol-ratio``).
        step_sizes: steps of a fixed-step `solver`, or one (None: `default_step`).
        repeats: timed runs per case after a warm-up.
        reference, reference_error: your own reference gradient and its relative error.
        isolate: run each case in a forked worker process (the model must be importable there);
            `timeout` (seconds per case) applies only then.
        threads: torch threads while measuring, as in ``odebench run`` (your process's setting
            is restored afterwards): on a shared machine two threads contending for cores
            measured torchdiffeq's adjoint 4-20x slower, and noisier, than one.
        plugins: files registering your own methods, loaded here and by the worker.
        cache_dir: where references are cached (None: a temporary folder, removed afterwards).
        max_steps: adaptive step budget per output interval.
        ratios: also time the methods of each setting interleaved in one process, round by
            round: the only source of `MethodComparison.recommend`'s speed ranking (False: skip
            it, and recommend ranks no time).

    Raises:
        InvalidInputError: (one line) for input no case could measure, or a model that cannot
            be shipped to a worker with ``isolate=True``.
    """
    from odebench.environment import collect_metadata
    from odebench.harness.executors import ExecutorOptions
    from odebench.harness.shipping import ship
    from odebench.harness.sweep import prepare, run_plan
    from odebench.plugins import load_plugins
    from odebench.suites import Grid, Settings, with_ratios

    rtols, atols, step_sizes = _setting_axes(solver, rtols, atol, step_sizes)
    settings = Settings(repeats=repeats, max_steps=max_steps)
    load_plugins(plugins)
    task = UserTask(func, y0, t, loss, reference, reference_error)
    methods = (methods,) if isinstance(methods, str) else methods
    if methods is None:
        methods = [n for n, m in method_registry.items() if m.capabilities.framework == "torch"]
    names = tuple(methods)
    for name in names:
        method_registry.get(name)
    grid = Grid(
        tasks=(task.name,),
        methods=names,
        solvers=(solver,),
        rtols=rtols,
        atols=atols,
        sizes=(1,),
        step_sizes=step_sizes,
        dtypes=(task.dtype_name,),
        devices=(task.device_name,),
    )
    adaptive = solvers.get(solver).adaptive
    axis = f"rtols={rtols}" + (f", atol={atols}" if atol is not None else "")
    axis = axis if adaptive else f"step_sizes={None if step_sizes == (None,) else step_sizes}"
    metadata = collect_metadata(
        device=task.device_name,
        command=f"odebench.compare_methods({type(func).__name__}, methods={list(names)}, "
        f"solver={solver!r}, {axis}, repeats={repeats}, isolate={isolate})",
    )
    metadata.update(suite="compare_methods", model=task.name, threads=threads)
    with (
        tempfile.TemporaryDirectory(prefix="odebench-scratch-") as scratch,
        registered(task),
        torch_threads(threads),
    ):
        expansion = grid.expand(settings, repeats)
        expansion = with_ratios(expansion) if ratios else expansion
        cases = prepare(expansion, timeout=timeout)  # refusals before anything is written
        shipped = (str(ship(task, Path(scratch))),) if isolate else ()
        options = ExecutorOptions(
            in_process=not isolate,
            plugins=(*plugins, *shipped),
            threads=threads,
            cache_dir=str(cache_dir or Path(scratch) / "references"),
        )
        folder = Path(tempfile.mkdtemp(prefix="odebench-compare-"))
        out = folder / "results.jsonl"
        with options.build() as executor:
            sweep = run_plan(
                cases, out, executor=executor, metadata=metadata, timeout=timeout, progress=progress
            )
    if sweep.interrupted and not sweep.records:
        shutil.rmtree(folder)
        raise KeyboardInterrupt
    result = MethodComparison(out, left_out=expansion.left_out, interrupted=sweep.interrupted)
    weakref.finalize(result, shutil.rmtree, folder, ignore_errors=True)
    return result


def _setting_axes(solver: str, rtols: Any, atol: Any, step_sizes: Any) -> tuple[tuple, tuple, tuple]:
    """`compare_methods`' rtols, atols and steps as grid axes (a number alone is one value),
    refused in one line where no case could mean them, as ``odebench run`` refuses them."""
    from odebench.methods.base import check_tolerances

    def values(value: Any, name: str) -> tuple:
        many = isinstance(value, (Sequence, set, frozenset)) and not isinstance(value, str)
        out = tuple(value) if many else (value,)
        if not out:
            raise InvalidInputError(f"{name} is empty; give a number or a sequence of numbers")
        return out

    def positive(value: Any, name: str) -> tuple:
        out = values(value, name)
        for v in out:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise InvalidInputError(f"{name} must be positive finite numbers, got {v!r}")
        return tuple(float(v) for v in out)

    atols: tuple = (None,)
    if atol is not None:
        if not solvers.get(solver).adaptive:
            raise InvalidInputError(
                f"atol applies to adaptive solvers; {solver} is fixed-step: give step_sizes instead"
            )
        atols = values(atol, "atol")
        for a in atols:
            check_tolerances(1.0, a)  # as ``odebench train --atol``: a finite number >= 0
        atols = tuple(float(a) for a in atols)
    steps = (None,) if step_sizes is None else positive(step_sizes, "step_sizes")
    return positive(rtols, "rtols"), atols, steps


class MethodComparison:
    """The records of one model's cases, in a results file: read, saved, drawn, recommended from.

    Attributes:
        path: the results file (temporary for `compare_methods`' own: `save` keeps it).
        table: its records as `odebench.results.load` reads them.
        task: the model's task name (``model:<Class>-<hash>``).
        left_out: ``(case, reason)`` for cases that could not run at all.
        interrupted: the run was stopped (Ctrl-C) before its last case.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        left_out: Sequence[tuple[Case, str]] = (),
        interrupted: bool = False,
    ) -> None:
        from odebench.results import load

        self.path = Path(path)
        self.table: pd.DataFrame = load(self.path)
        models = sorted(set(self.table["task"]))
        if len(models) != 1:
            raise InvalidInputError(
                f"{self.path}: expected the records of one model, found {models or 'none'}"
            )
        self.task: str = models[0]
        self.left_out = list(left_out)
        self.interrupted = interrupted

    @functools.cached_property
    def records(self) -> list[Record]:
        """The records, read once."""
        from odebench.results import load_records

        return load_records(self.path)

    @functools.cached_property
    def ratio_records(self) -> list:
        """The same-run time ratios (`odebench.jobs.ratio.RatioRecord`), read once."""
        from odebench.results import load_records

        return load_records(self.path, "ratio")

    @functools.cached_property
    def _speeds(self) -> dict:
        from odebench.report.speed import prepare_ratios, speeds
        from odebench.results import load_ratios

        return speeds(prepare_ratios(load_ratios(self.path)))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the records, and the same-run time ratios, to a new results file (read by
        ``odebench report`` and ``compare``).

        Raises:
            InvalidInputError: (one line) when `path` exists or cannot be written.
        """
        from odebench.results import ResultsWriter, read_metadata

        path = Path(path)
        if path.exists() and not path.is_dir() and path.stat().st_size:
            raise InvalidInputError(f"{path} already exists; choose another path or remove it")
        created = not path.exists()
        try:
            with ResultsWriter(path, read_metadata(self.path)[0]) as writer:
                for record in [*self.records, *self.ratio_records]:
                    writer.write(record)
        except OSError as exc:
            if created:
                with contextlib.suppress(OSError):
                    path.unlink()
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
            raise InvalidInputError(f"cannot write {path}: {exc.strerror or describe(exc)}{where}") from None
        return path

    def plot(self, path: str | os.PathLike[str] | None = None):
        """The report's accuracy-vs-cost figure (gradient error against backward work, time and
        memory) as a `matplotlib.figure.Figure`, saved to `path` when one is given (its suffix,
        such as ``.png``, ``.svg`` or ``.pdf``, picks the format).

        Raises:
            InvalidInputError: (one line) with no successful record, or a `path` that cannot be
                written.
        """
        from odebench.report.data import ok_rows, prepare
        from odebench.report.plots.cost import accuracy_vs_cost_figures
        from odebench.report.style import figure_style, method_styles

        df = prepare(self.table)
        ok = ok_rows(df)
        if ok.empty:
            raise InvalidInputError(f"no successful record of {self.task} to draw")
        (figure,) = accuracy_vs_cost_figures(ok, method_styles(df["method"])).values()
        if path is not None:
            try:
                with figure_style():
                    figure.savefig(path, dpi=110, bbox_inches="tight")
            except (OSError, ValueError) as exc:  # an unwritable path, an unknown suffix
                raise InvalidInputError(f"cannot save the figure to {path}: {describe(exc, 300)}") from None
        return figure

    def recommend(
        self, max_memory: float | None = None, max_error: float | None = None, rtol: float | None = None
    ):
        """The fastest method *and setting* within the limits, and why each other one is not.

        Every (method, tolerance or step) measured is a candidate, named ``method at tol=..``;
        `rtol` keeps only that tolerance's. The loosest setting at which some method meets the
        limits is chosen (a tighter one takes more steps for every method), and within it the
        fastest method by same-run time ratios (`odebench.report.recommend.recommend`: a tie on
        time goes to the least memory). The limits line names the settings considered.

        Args:
            max_memory: peak memory budget in MiB.
            max_error: relative gradient error target.
        """
        from odebench.report.data import prepare
        from odebench.report.recommend import Recommendation, check_limits, recommend
        from odebench.report.style import method_order

        check_limits(max_memory, max_error)
        df = prepare(self.table)
        if rtol is not None:
            df = df[(df["rtol"] - rtol).abs() <= 1e-9 * rtol]
            if df.empty:
                measured = ", ".join(f"{r:g}" for r in sorted(set(self.table["rtol"].dropna())))
                raise InvalidInputError(f"no record at rtol={rtol:g}; measured: {measured or 'none'}")
        timed = self._speeds
        loosest_first = df.assign(_key=-df["step_size"].fillna(df["rtol"])).sort_values("_key", kind="stable")
        settings = list(dict.fromkeys(loosest_first["setting"]))
        pick, chosen, limits, reasons = None, None, "", {}
        for setting in settings:
            rows = df[df["setting"] == setting]
            speed = timed.get((rows["regime"].iloc[0], setting))
            choice = recommend(rows, speed, max_memory_mib=max_memory, max_error=max_error)
            limits = limits or choice.limits
            if chosen is None:
                reasons.update({f"{m} at {setting}": why for m, why in choice.reasons.items()})
                if choice.pick is not None:
                    pick, chosen = f"{choice.pick} at {setting}", setting
                continue
            for method in method_order(rows["method"]):
                why = choice.reasons.get(method, "meets the limits")
                if why.startswith("meets the limits") or method == choice.pick:
                    why = f"meets the limits at a tighter setting than {chosen}"
                reasons[f"{method} at {setting}"] = why
        among = f"among {', '.join(settings)}: the loosest setting where a method meets them"
        return Recommendation(pick, f"{limits}; {among}", reasons)

    def __str__(self) -> str:
        from odebench.harness.summary import summary_table

        text = summary_table([*self.records, *self.ratio_records])
        left_out = [f"left out {case.label()}: {reason}" for case, reason in self.left_out]
        return "\n".join([text, *left_out])

    def __repr__(self) -> str:
        ok = int((self.table["status"] == "ok").sum())
        return f"<MethodComparison {self.task}: {len(self.table)} records, {ok} ok; print() for the table>"


__all__ = ["MethodComparison", "UserTask", "compare_methods", "from_factory", "registered"]
