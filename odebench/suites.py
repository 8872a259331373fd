"""Named suites and explicit grids: what a run measures, case by case.

A `Grid` is a product of axes over documented defaults: the five core methods, ``dopri5``, each
dtype's default tolerances (`odebench.solvers.default_tolerances`), each task's default size,
each task's own step *at each size* for fixed-step solvers, float64, CPU, seed 0. Tolerances
only multiply adaptive solvers and steps only fixed-step ones, so no case is produced twice.
A `Suite` is a named union of grids.

`plan` turns a command line into cases, with one rule: **what runs is what was asked**.

* no axis given: the named suite (``quick`` by default), exactly;
* axes given without a suite: exactly the product of those axes over the defaults above;
* a suite and selecting axes (task, method, solver, rtol, size, step size): the suite's cases
  whose values are among those given; a value the suite does not have is refused, naming the
  values it has.

The settings ``dtype``, ``device`` and ``seed`` apply to every case, in either mode. Cases that
cannot run (a method without that kind of solver, a tolerance below the dtype's resolution) are
left out and listed with the reason, never recorded as errors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from odebench import methods, solvers, studies, tasks
from odebench.errors import InvalidInputError
from odebench.jobs import KINDS
from odebench.jobs.base import ATOL_RATIO, MAX_STEPS, CaseBase
from odebench.jobs.ratio import ROUNDS as RATIO_ROUNDS
from odebench.measure.memory import CHOICES as MEMORY_BACKENDS
from odebench.methods import BASELINE, CORE, NEWER
from odebench.registry import Registry

#: Axes that select cases (of a suite) or span a grid.
SELECTION_AXES = ("tasks", "studies", "methods", "solvers", "rtols", "atols", "sizes", "step_sizes")
#: Axes that set how every case runs (iterations: training runs only).
SETTING_AXES = ("dtypes", "devices", "seeds", "iterations")


#: Each setting's command-line flag, named in its refusal.
_FLAGS = {
    "repeats": "--repeats",
    "atol_ratio": "--atol-ratio",
    "max_steps": "--max-steps",
    "eval_every": "--eval-every",
    "max_seconds": "--max-seconds",
    "memory": "--memory-backend",
}


@dataclass(frozen=True)
class Settings:
    """How every case of a run is measured: timed repeats (None: the suite's), atol as a
    multiple of rtol, and the adaptive step budget per output interval. Values that cannot be
    meant are refused in one line naming the flag."""

    repeats: int | None = None
    atol_ratio: float = ATOL_RATIO
    max_steps: int = MAX_STEPS
    #: Training runs only: checks every so many iterations (None: the study's), and a budget of
    #: training wall seconds (None: none).
    eval_every: int | None = None
    max_seconds: float | None = None
    #: Time each problem's methods interleaved too (`with_ratios`): the speed verdicts' source.
    ratios: bool = True
    #: Gradient cases: the backend that measures peak memory (None: the device's default).
    memory: str | None = None

    def __post_init__(self) -> None:
        for name in ("repeats", "max_steps", "eval_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidInputError(f"{_FLAGS[name]} must be at least 1, got {value}")
        if not (math.isfinite(self.atol_ratio) and self.atol_ratio > 0):
            raise InvalidInputError(f"--atol-ratio must be a positive finite number, got {self.atol_ratio:g}")
        if self.memory is not None and self.memory not in MEMORY_BACKENDS:
            raise InvalidInputError(
                f"{_FLAGS['memory']} must be one of {', '.join(MEMORY_BACKENDS)}, got {self.memory!r}"
            )
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise InvalidInputError(f"--max-seconds must be positive, got {self.max_seconds:g}")


@dataclass
class Expansion:
    """The cases a run measures, in order, and those left out with the reason for each."""

    cases: list[CaseBase] = field(default_factory=list)
    left_out: list[tuple[CaseBase, str]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, case: CaseBase) -> None:
        """Add a resolved case once: to `cases`, or to `left_out` when it cannot run."""
        if case.case_id in self._seen:
            return
        self._seen.add(case.case_id)
        reason = case.infeasible()
        if reason is None:
            self.cases.append(case)
        else:
            self.left_out.append((case, reason))

    def reasons(self) -> dict[str, int]:
        """How many cases were left out for each reason."""
        counts: dict[str, int] = {}
        for _, reason in self.left_out:
            counts[reason] = counts.get(reason, 0) + 1
        return counts

    def runnable(self) -> list[CaseBase]:
        """The cases, refused in one line (naming why each was left out) when there is none."""
        if not self.cases:
            reasons = "; ".join(f"{n} x {why}" for why, n in self.reasons().items()) or "no case asked for"
            raise InvalidInputError(f"no case can run: {reasons}")
        return self.cases


@dataclass(frozen=True)
class Point:
    """One point of a grid's shared axes, handed to the job's case class."""

    subject: str
    methods: tuple[str, ...]
    solver: str
    dtype: str
    device: str
    seed: int
    #: The job's own axis: a task's size (gradient, ratio) or a budget of iterations (training).
    extra: int | None
    #: ``{"rtol", "atol"}`` (adaptive solver) or ``{"step_size"}`` (fixed step).
    setting: dict

    def solve_fields(self) -> dict:
        """The point's values of the fields every case type shares (`odebench.jobs.base.CaseBase`)."""
        return dict(solver=self.solver, dtype=self.dtype, device=self.device, seed=self.seed, **self.setting)


@dataclass(frozen=True)
class Grid:
    """The product of its axes for one kind of job; see the module docstring for the defaults.

    The shared axes are walked once, in one order (subject, method, solver, dtype, device,
    seed, the job's own axis, then tolerances or step), and each point is handed to the job's
    case class (``from_point``), which makes and resolves its case. A gradient or ratio grid
    spans ``tasks`` and ``sizes`` (``(None,)``: each task's default size; ``()``: each task's
    full list); a training grid spans ``studies`` and ``iterations`` (None: the study's budget).
    ``solvers`` None is the job's default: dopri5 for tasks, each study's published solver.
    ``rtols`` and ``atols`` cross for adaptive solvers (None: the dtype's default, or ``rtol *
    atol_ratio``, or a study's published pair), ``step_sizes`` for fixed-step ones (None: the
    task's step at each size, or the study's). A ratio grid times ``methods`` against
    ``baseline`` in one case per point.
    """

    job: str = "gradient"
    tasks: tuple[str, ...] = ()
    studies: tuple[str, ...] = ()
    methods: tuple[str, ...] = CORE
    solvers: tuple[str | None, ...] | None = None
    rtols: tuple[float | None, ...] = (None,)
    atols: tuple[float | None, ...] = (None,)
    sizes: tuple[int | None, ...] = (None,)
    step_sizes: tuple[float | None, ...] = (None,)
    dtypes: tuple[str, ...] = ("float64",)
    devices: tuple[str, ...] = ("cpu",)
    seeds: tuple[int, ...] = (0,)
    iterations: tuple[int | None, ...] = (None,)
    baseline: str = BASELINE
    rounds: int = RATIO_ROUNDS

    def __post_init__(self) -> None:
        if self.job not in KINDS:
            raise InvalidInputError(f"unknown job kind {self.job!r}; valid: {', '.join(KINDS)}")

    @property
    def case_type(self):
        return KINDS[self.job].case_type

    def axis(self, name: str) -> tuple:
        """The values of an axis, its default resolved (``solvers`` None: the job's)."""
        if name == "solvers" and self.solvers is None:
            return self.case_type.DEFAULT_SOLVERS
        return getattr(self, name)

    def expand(self, settings: Settings, repeats: int, into: Expansion | None = None) -> Expansion:
        """Every resolved case of the grid, added to `into` (a new Expansion by default)."""
        out = Expansion() if into is None else into
        job = self.case_type
        subjects = getattr(self, job.SUBJECTS)
        groups = [(m,) for m in self.methods] if job.ONE_CASE_PER_METHOD else [self.methods]
        for subject, group, solver, dtype, device, seed in itertools.product(
            subjects, groups, self.axis("solvers"), self.dtypes, self.devices, self.seeds
        ):
            solver = solver or job.default_solver(subject)
            if solvers.get(solver).adaptive:
                setting_axis = [dict(rtol=r, atol=a) for r, a in itertools.product(self.rtols, self.atols)]
            else:
                setting_axis = [dict(step_size=h) for h in self.step_sizes]
            for extra in job.extra_axis(self, subject):
                for setting in setting_axis:
                    point = Point(subject, group, solver, dtype, device, seed, extra, setting)
                    out.add(job.from_point(point, self, settings, repeats))
        return out


@dataclass(frozen=True)
class Suite:
    """A named union of grids, with the duration it was measured to take."""

    name: str
    description: str
    expected_duration: str
    grids: Callable[[], Sequence[Grid]]
    repeats: int = 3
    #: Whether a run of the suite adds a ratio case per problem (`with_ratios`); a suite that
    #: declares its own ratio grids (the gate) says False.
    ratios: bool = True

    @property
    def job(self) -> str:
        """The kind of job of its first grid (what axes given without a suite make)."""
        return self.grids()[0].job

    def expand(
        self,
        settings: Settings = Settings(),
        setting_axes: Mapping[str, tuple] = (),
        narrow: Mapping[str, tuple] = {},
    ) -> Expansion:
        """Every case of the suite, with `setting_axes` (dtypes, devices, seeds) applied.

        `narrow` keeps, per named grid axis (tasks, methods, solvers), only the given values, so
        a selection does not pay for resolving cases it drops.
        """
        out = Expansion()
        repeats = self.repeats if settings.repeats is None else settings.repeats
        for grid in self.grids():
            kept = {
                axis: tuple(v for v in grid.axis(axis) if v in values)
                for axis, values in dict(narrow).items()
            }
            replace(grid, **dict(setting_axes), **kept).expand(settings, repeats, out)
        return out


def plan(
    suite: str | None,
    selection: Mapping[str, Iterable] | None = None,
    setting_axes: Mapping[str, Iterable] | None = None,
    settings: Settings = Settings(),
    *,
    default: str = "quick",
    job: str | None = None,
) -> Expansion:
    """The cases of a run: see the module docstring for the rule.

    Args:
        suite: a registered suite name, or None (`default` when no axis is given).
        selection: values per axis in `SELECTION_AXES` (missing or empty: not given); with
            ``studies`` and no suite the product is of training runs, else of gradient cases.
        setting_axes: values per axis in `SETTING_AXES` (missing or empty: not given).
        settings: repeats, atol ratio, step budget (and training checks and time budget).
        job: the kind of job the caller runs (``odebench run``: gradient, ``train``: training):
            a suite of another kind is refused, naming the command that runs it (None: any).
    """
    selection = {k: tuple(v) for k, v in (selection or {}).items() if v}
    setting_axes = {k: tuple(v) for k, v in (setting_axes or {}).items() if v}
    for name, allowed in ((selection, SELECTION_AXES), (setting_axes, SETTING_AXES)):
        unknown = set(name) - set(allowed)
        if unknown:
            raise ValueError(f"unknown axes {sorted(unknown)}; valid: {', '.join(allowed)}")
    _check_values(selection, setting_axes, settings)
    _check_kind(suite, job)
    _check_settings_apply(selection, suite, default)
    if suite is None and selection:
        if "studies" not in selection and get(default).job == "training":
            selection["studies"] = tuple(studies.names())  # `train`'s axes span every study
        expansion, timed = _product(selection, setting_axes, settings), True
    else:  # a suite that declares its own ratio cases (the gate) gets none added
        chosen = get(suite or default)
        expansion, timed = _from_suite(chosen, selection, setting_axes, settings), chosen.ratios
    return with_ratios(expansion) if settings.ratios and timed else expansion


def _from_suite(chosen: Suite, selection: dict, setting_axes: dict, settings: Settings) -> Expansion:
    """The suite's cases with the given setting axes, narrowed to the selection; a selected value
    the suite does not have is refused, naming the values it has."""
    narrow = {
        axis: selection[axis] for axis in ("tasks", "studies", "methods", "solvers") if axis in selection
    }
    for axis, wanted in narrow.items():
        have = {value for grid in chosen.grids() for value in grid.axis(axis) if value is not None}
        missing = [value for value in wanted if value not in have]
        if missing:
            raise InvalidInputError(
                f"suite {chosen.name!r} has no case with {_FIELD[axis]} {', '.join(missing)}; "
                f"its values: {', '.join(sorted(have))} (leave out --suite to run exactly the axes you give)"
            )
    expansion = chosen.expand(settings, setting_axes, narrow)
    return select(expansion, selection, chosen.name) if selection else expansion


#: The command that runs each kind of suite.
_COMMAND = {"gradient": "run", "training": "train"}


def _check_kind(suite: str | None, wanted: str | None) -> None:
    """A gradient suite runs with ``odebench run`` and a training suite with ``odebench train``:
    a suite not of the `wanted` kind is refused, naming the command that runs it and the suites
    of the wanted kind."""
    if suite is None or wanted is None:
        return
    job = get(suite).job  # an unknown name: one line, the valid ones
    if job == wanted:
        return
    valid = ", ".join(name for name in names() if get(name).job == wanted)
    raise InvalidInputError(
        f"suite {suite!r} is a {job} suite: run it with `odebench {_COMMAND[job]} --suite {suite}`; "
        f"`odebench {_COMMAND[wanted]}` takes: {valid}"
    )


def _check_settings_apply(selection: dict, suite: str | None, default: str) -> None:
    """Tolerances apply to adaptive solvers and steps to fixed-step ones: a value that none of the
    solvers asked for can use is refused rather than silently ignored."""
    given = list(selection.get("solvers", ()))
    if not given and suite is None and get(default).job == "gradient":
        given = ["dopri5"]  # the default solver of gradient cases
    if not given:
        return
    adaptive = [name for name in given if solvers.get(name).adaptive]
    fixed = [name for name in given if name not in adaptive]
    tolerances = [f"--{axis[:-1]}" for axis in ("rtols", "atols") if selection.get(axis)]
    if tolerances and not adaptive:
        raise InvalidInputError(
            f"{' and '.join(tolerances)} {'applies' if len(tolerances) == 1 else 'apply'} only to "
            f"adaptive solvers, and {', '.join(fixed)} "
            f"{'is' if len(fixed) == 1 else 'are'} fixed-step: give --step-size instead"
        )
    if selection.get("step_sizes") and not fixed:
        default_solver = "" if selection.get("solvers") else " (the default solver)"
        raise InvalidInputError(
            f"--step-size applies only to fixed-step solvers, and {', '.join(adaptive)}{default_solver} "
            f"{'is' if len(adaptive) == 1 else 'are'} adaptive: give --rtol instead, or --solver rk4"
        )


def _check_values(selection: dict, setting_axes: dict, settings: Settings) -> None:
    """Refuse axis values no case could mean, in one line naming the flag."""
    from odebench.methods.base import check_tolerances

    for rtol in selection.get("rtols", ()):
        check_tolerances(rtol, rtol * settings.atol_ratio)
    for atol in selection.get("atols", ()):
        check_tolerances(1.0, atol)
    for axis, flag in (("sizes", "--size"), ("step_sizes", "--step-size")):
        values = selection.get(axis, ())
        if any(not (v > 0 and math.isfinite(v)) for v in values):
            raise InvalidInputError(f"{flag} must be positive, got {' '.join(f'{v:g}' for v in values)}")
    for value in setting_axes.get("iterations", ()):
        if value < 1:
            raise InvalidInputError(f"--iterations must be at least 1, got {value}")


def _product(selection: dict, setting_axes: dict, settings: Settings) -> Expansion:
    """Exactly the product of the given axes over the documented defaults."""
    repeats = 3 if settings.repeats is None else settings.repeats
    if "studies" in selection:
        if "tasks" in selection or "sizes" in selection:
            raise InvalidInputError("give tasks (gradient cases) or studies (training runs), not both")
        return Grid("training", **selection, **setting_axes).expand(settings, repeats)
    if "iterations" in setting_axes:
        raise InvalidInputError("iterations apply to training runs: give --study too")
    if "atols" in selection:
        raise InvalidInputError("--atol applies to training runs; gradient cases take --atol-ratio")
    every = {"tasks": tuple(tasks.names())}
    return Grid("gradient", **{**every, **selection}, **setting_axes).expand(settings, repeats)


#: Timed seconds a ratio case that `with_ratios` adds spends at most (after its least rounds).
RATIO_BUDGET_S = 10.0


def with_ratios(expansion: Expansion) -> Expansion:
    """`expansion` and, for every problem its gradient cases solve with two methods or more (the
    same task, size, solver, setting, dtype, device, seed and step budget), one ratio case that
    times those methods interleaved in one process against naive (or the first of them when
    naive is not among them), for `RATIO_ROUNDS` rounds or `RATIO_BUDGET_S` timed seconds, unless
    the expansion times that problem already. Every speed
    verdict of a report comes from these same-run ratios, never from times of separate cases.
    """
    from odebench.jobs.ratio import RatioCase

    groups: dict[str, list] = {}
    timed = set()
    for case in expansion.cases:
        if case.KIND == "gradient":
            groups.setdefault(_problem_key(case), []).append(case)
        elif case.KIND == "ratio":
            timed.add(_problem_key(case.case_of(case.baseline)))
    for key, cases in groups.items():
        names = list(dict.fromkeys(c.method for c in cases))
        if len(names) < 2 or key in timed:
            continue
        baseline = BASELINE if BASELINE in names else names[0]
        first = cases[0]
        shared = {f.name: getattr(first, f.name) for f in fields(CaseBase)}
        contenders = tuple(m for m in names if m != baseline)
        expansion.add(
            RatioCase(
                task=first.task,
                size=first.size,
                methods=contenders,
                baseline=baseline,
                rounds=RATIO_ROUNDS,
                budget_s=RATIO_BUDGET_S,
                **shared,
            )
        )
    return expansion


def _problem_key(case) -> str:
    """What a gradient case solves, without the method: the cases one ratio case times."""
    return repr(sorted((k, v) for k, v in case.identity().items() if k != "method"))


#: Case field behind each selection axis.
_FIELD = {
    "tasks": "task",
    "studies": "study",
    "methods": "method",
    "solvers": "solver",
    "rtols": "rtol",
    "atols": "atol",
    "sizes": "size",
    "step_sizes": "step_size",
}


def select(expansion: Expansion, selection: Mapping[str, tuple], suite: str) -> Expansion:
    """The cases of `expansion` whose value on every given axis is among the given ones."""
    everything = expansion.cases + [c for c, _ in expansion.left_out]
    for axis, wanted in selection.items():
        name = _FIELD[axis]
        have = [getattr(c, name) for c in everything if getattr(c, name, None) is not None]
        missing = [w for w in wanted if not any(_same(w, h) for h in have)]
        if missing:
            valid = ", ".join(_fmt(v) for v in sorted(set(have), key=_sort_key)) or "(none)"
            raise InvalidInputError(
                f"suite {suite!r} has no case with {name} {', '.join(map(_fmt, missing))}; "
                f"its values: {valid} (leave out --suite to run exactly the axes you give)"
            )

    def keep(case) -> bool:
        return all(any(_same(getattr(case, _FIELD[a], None), w) for w in ws) for a, ws in selection.items())

    out = Expansion()
    for case in everything:
        if keep(case):
            out.add(case)
    return out


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


registry: Registry[Suite] = Registry("suite")


#: The quick suite's methods: the five core ones, a reversible solver and binomial checkpointing.
QUICK_METHODS = (*CORE, "reversible", "checkpointed")


def _quick() -> list[Grid]:
    return [
        # Accuracy against cost: three tasks, two tolerances.
        Grid(tasks=("linear", "spiral", "mlp"), methods=QUICK_METHODS, rtols=(1e-4, 1e-7)),
        # Memory scaling: fixed-step rk4 at spiral's own step over growing horizons.
        Grid(tasks=("spiral",), methods=QUICK_METHODS, solvers=("rk4",), sizes=(1, 2, 5)),
    ]


def _full() -> list[Grid]:
    every = {"tasks": tuple(tasks.names()), "methods": tuple(methods.names())}
    return [
        Grid(**every, rtols=(1e-3, 1e-5, 1e-7, 1e-9)),
        Grid(**every, solvers=("bosh3",), rtols=(1e-4, 1e-7)),
        Grid(**every, solvers=("dopri8",), rtols=(1e-6, 1e-9)),
        Grid(**every, solvers=("rk4", "midpoint", "heun2")),
        Grid(**every, sizes=()),
        Grid(**every, solvers=("rk4",), sizes=()),
        # Memory against recomputation: the checkpoint budget as an axis, every horizon.
        Grid(tasks=("spiral", "mlp"), methods=CHECKPOINT_BUDGETS, solvers=("rk4",), sizes=()),
        # Restarting the adjoint from stored states where its backward solve drifts.
        Grid(tasks=("lorenz63", "van_der_pol_stiff"), methods=RESTART_BUDGETS, sizes=()),
    ]


#: `checkpointed` with 1 to 32 stored states, and the checkpointed adjoint with 4 to 64.
CHECKPOINT_BUDGETS = tuple(f"checkpointed:{k}" for k in (1, 2, 4, 8, 16, 32))
RESTART_BUDGETS = ("adjoint", *(f"backsolve_checkpointed:{k}" for k in (4, 16, 64)))


def _scaling() -> list[Grid]:
    # A large state (digits ODE-Net: 32 images x 8 channels x 8 x 8 = 16384 entries) over 10 to
    # 80 fixed steps; each reversible scheme on its own solver, beside the methods that take it.
    steps = (0.1, 0.05, 0.025, 0.0125)
    methods_ = ("naive", "adjoint", "aca", "symplectic", "reversible", "checkpointed:2", "checkpointed:8")
    return [
        Grid(
            tasks=("digits_odenet",),
            methods=(*methods_, "mali", "reversible_heun"),
            solvers=(solver,),
            step_sizes=steps,
        )
        for solver in ("rk4", "midpoint", "heun2")
    ]


#: The sizes practitioners train at that this machine runs in minutes per case, each beside the
#: task's default (the small regime): CNF samples, MLP widths (1M parameters at 1024), image-block
#: channels (32 images of 8x8, 131,072 entries at 64 channels), latent-ODE output times.
SCALE_SIZES = {
    "cnf2d": (128, 1024, 4096),
    "mlp": (32, 256, 1024),
    "digits_odenet": (8, 32, 64),
    "latent_ode_spiral": (100, 400, 1600),
}


def _scale() -> list[Grid]:
    return [
        Grid(tasks=(task,), methods=CORE, solvers=("dopri5", "rk4"), sizes=sizes)
        for task, sizes in SCALE_SIZES.items()
    ]


def _stiff_chaotic() -> list[Grid]:
    # Where the backward pass can leave the forward trajectory: stiff van der Pol (mu = 10),
    # chaotic Lorenz-63 (T = 1) and an MLP fitted to it, adaptive and on fixed grids.
    hard = ("van_der_pol_stiff", "lorenz63", "lorenz63_fit")
    ours = (*CORE, *NEWER, "backsolve_checkpointed:32")
    return [
        Grid(tasks=hard, methods=ours, rtols=(1e-4, 1e-6, 1e-8)),
        Grid(tasks=hard, methods=ours, solvers=("rk4", "midpoint", "heun2")),
    ]


def _gate() -> list[Grid]:
    others = tuple(m for m in CORE if m != BASELINE)
    per_input = tuple(m for m in NEWER if methods.get(m).capabilities.cost_per_input)
    per_sweep = tuple(m for m in NEWER if m not in per_input)
    return [
        Grid(tasks=("linear", "spiral", "mlp"), rtols=(1e-6,)),
        Grid(tasks=("linear", "mlp"), solvers=("rk4",)),
        # The newer methods' counts and errors, each on the solvers it takes; a method paying a
        # solve per input (forward mode) where the inputs are few (mlp has 1,282).
        Grid(tasks=("linear", "spiral", "mlp"), methods=per_sweep, rtols=(1e-6,)),
        Grid(tasks=("linear", "mlp"), methods=per_sweep, solvers=("rk4", "midpoint", "heun2")),
        Grid(tasks=("linear", "spiral"), methods=per_input, rtols=(1e-6,)),
        Grid(tasks=("linear",), methods=per_input, solvers=("rk4", "midpoint", "heun2")),
        # Time ratios, interleaved: every core method against naive, the native ACA against
        # TorchDiffEqPack's where that peer is installed.
        Grid("ratio", tasks=("linear", "mlp"), methods=others, rtols=(1e-6,)),
        *(
            [Grid("ratio", tasks=("mlp",), methods=("aca",), baseline=PEER_ACA)]
            if PEER_ACA in methods.names()
            else []
        ),
    ]


PEER_ACA = "aca@torchdiffeqpack"


registry.register(
    "quick",
    Suite(
        "quick",
        "5 core methods, reversible and checkpointed x linear, spiral, mlp x dopri5 at rtol 1e-4, 1e-7; "
        "rk4 memory scaling on spiral",
        "about 2 minutes on 2 CPU cores",
        _quick,
    ),
)
registry.register(
    "full",
    Suite(
        "full",
        "every task, method and solver (dopri5, bosh3, dopri8, rk4, midpoint) at several tolerances, "
        "and every size of every task",
        "about 3 hours on 2 CPU cores: 1213 cases; its 102-case shard 1/12 took 850 s under load",
        _full,
        repeats=5,
    ),
)
registry.register(
    "scaling",
    Suite(
        "scaling",
        "memory and time against the number of steps on a large state (digits ODE-Net, 16384 entries): "
        "naive, adjoint, aca, symplectic, reversible, checkpointed:2 and :8 on rk4, midpoint and heun2, "
        "mali on midpoint, reversible_heun on heun2, 10 to 80 steps",
        "about 4 minutes on 2 CPU cores (measured 249 s with --workers 2)",
        _scaling,
    ),
)
registry.register(
    "scale",
    Suite(
        "scale",
        "the sizes people train at: cnf2d 128-4096 samples, mlp width 32-1024, digits ODE-Net 8-64 "
        "channels, latent ODE 100-1600 output times x the 5 core methods x dopri5 (default tolerances) "
        "and rk4 (each task's step); --device cuda runs it on a GPU",
        "about 17 minutes with --workers 2 on 2 CPU cores (measured 1,016 s, its references computed in the "
        "same run: 192 s of it)",
        _scale,
    ),
)
registry.register(
    "stiff-chaotic",
    Suite(
        "stiff-chaotic",
        "every method odebench implements on stiff van der Pol and chaotic Lorenz-63 (and an MLP fitted "
        "to it): dopri5 at rtol 1e-4, 1e-6, 1e-8 and rk4, midpoint, heun2 at each task's step",
        "about 30 minutes on 2 CPU cores (measured 1,767 s beside another run; 20 of 195 cases fail)",
        _stiff_chaotic,
    ),
)
registry.register(
    "gate",
    Suite(
        "gate",
        "the CI gate: linear, spiral, mlp x 5 core methods x dopri5 at rtol 1e-6; rk4 on linear, mlp; "
        "the newer methods on the same tasks and on rk4, midpoint, heun2; interleaved time ratios to "
        "naive (and of aca to its TorchDiffEqPack peer)",
        "about 40 seconds on 2 CPU cores",
        _gate,
        ratios=False,
    ),
)


def claim_grids(iterations: Callable[[int], int] = lambda budget: budget) -> list[Grid]:
    """The runs every registered study's claims need (`odebench.claims.Claim.needs`), at the
    claim's seeds; `iterations` maps each run's budget to the one run (the quick suite scales it)."""
    grids = []
    for name in studies.names():
        for claim in studies.get(name).claims:
            needs = dict(claim.needs)
            budgets = needs.pop("iterations", (None,))
            for study in needs.pop("studies"):
                for budget in budgets:
                    full = studies.get(study).iterations if budget is None else budget
                    grids.append(
                        Grid(
                            "training",
                            studies=(study,),
                            seeds=tuple(range(claim.seeds)),
                            iterations=(iterations(full),),
                            **needs,
                        )
                    )
    return grids


def _train_quick() -> list[Grid]:
    # Every claim's runs, seed 0, at a 25th of their budgets (at least 3 iterations).
    return [replace(grid, seeds=(0,)) for grid in claim_grids(lambda budget: max(3, budget // 25))]


def _train_full() -> list[Grid]:
    return [
        Grid(
            "training",
            studies=(name,),
            methods=CORE,
            atols=tuple(dict.fromkeys(atol for _, atol in studies.get(name).published_tolerances)),
            seeds=(0, 1, 2),
        )
        for name in studies.names()
    ]


registry.register(
    "train-quick",
    Suite(
        "train-quick",
        "every claim's runs (see the claims suite) with seed 0 at a 25th of their iterations",
        "about 5 minutes on 2 CPU cores (37 runs, measured 280 s with one worker; the ResNet sweep's "
        "deepest rough runs take 44 s and 21 s)",
        _train_quick,
    ),
)
registry.register(
    "train-full",
    Suite(
        "train-full",
        "every training study at its budget and published tolerances, the five core methods, seeds 0, 1, 2",
        "about 20 hours on one core (354 runs; estimated from the claims suite's runs: the oscillators' "
        "adjoint runs at 1000 iterations (NODE, ANODE, SONODE, NesterovNODE), the three-body adjoint "
        "runs and the 135 TA-BN depth runs take most)",
        _train_full,
    ),
)
registry.register(
    "claims",
    Suite(
        "claims",
        "exactly the runs every published training claim needs, at its published settings and seeds "
        "(at least 5): odebench report on it gives the claims table",
        "about 2.5 hours with --workers 2 on 2 CPU cores (205 runs: the 85 of the ACA, SONODE, Lorenz and "
        "seminorm claims 83 minutes, 99 run-minutes of them the three-body study's published setup; the "
        "ResNet depth sweep's 70 runs 20 minutes; the Nesterov and TA-BN runs' 50 about 95 run-minutes)",
        claim_grids,
    ),
)

names = registry.names
get = registry.get

__all__ = [
    "SELECTION_AXES",
    "SETTING_AXES",
    "Expansion",
    "Grid",
    "Point",
    "Settings",
    "Suite",
    "claim_grids",
    "get",
    "names",
    "plan",
    "with_ratios",
]
