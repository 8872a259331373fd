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
from dataclasses import dataclass, field, replace

from odebench import methods, solvers, studies, tasks
from odebench.cases import infeasible, resolve
from odebench.errors import InvalidInputError
from odebench.harness.ratios import ROUNDS as RATIO_ROUNDS
from odebench.harness.ratios import RatioCase
from odebench.harness.ratios import resolve as resolve_ratios
from odebench.methods import CORE
from odebench.record import ATOL_RATIO, MAX_STEPS, Case
from odebench.registry import Registry
from odebench.training.case import TrainingCase
from odebench.training.case import resolve as resolve_training

#: Axes that select cases (of a suite) or span a grid.
SELECTION_AXES = ("tasks", "studies", "methods", "solvers", "rtols", "atols", "sizes", "step_sizes")
#: Axes that set how every case runs (iterations: training runs only).
SETTING_AXES = ("dtypes", "devices", "seeds", "iterations")


@dataclass(frozen=True)
class Settings:
    """How every case of a run is measured: timed repeats (None: the suite's), atol as a
    multiple of rtol, and the adaptive step budget per output interval."""

    repeats: int | None = None
    atol_ratio: float = ATOL_RATIO
    max_steps: int = MAX_STEPS
    #: Training runs only: checks every so many iterations (None: the study's), and a budget of
    #: training wall seconds (None: none).
    eval_every: int | None = None
    max_seconds: float | None = None


@dataclass
class Expansion:
    """The cases a run measures, in order, and those left out with the reason for each."""

    cases: list[Case] = field(default_factory=list)
    left_out: list[tuple[Case, str]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, case: Case) -> None:
        """Add a resolved case once: to `cases`, or to `left_out` when it cannot run."""
        if case.case_id in self._seen:
            return
        self._seen.add(case.case_id)
        reason = infeasible(case)
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


@dataclass(frozen=True)
class Grid:
    """The product of its axes; see the module docstring for the defaults.

    ``sizes=(None,)`` is each task's default size and ``sizes=()`` each task's full list;
    ``rtols=(None,)`` the dtype's default tolerance; ``step_sizes=(None,)`` the task's step.
    """

    tasks: tuple[str, ...]
    methods: tuple[str, ...] = CORE
    solvers: tuple[str, ...] = ("dopri5",)
    rtols: tuple[float | None, ...] = (None,)
    sizes: tuple[int | None, ...] = (None,)
    step_sizes: tuple[float | None, ...] = (None,)
    dtypes: tuple[str, ...] = ("float64",)
    devices: tuple[str, ...] = ("cpu",)
    seeds: tuple[int, ...] = (0,)

    def expand(self, settings: Settings, repeats: int, into: Expansion | None = None) -> Expansion:
        """Every resolved case of the grid, added to `into` (a new Expansion by default)."""
        out = Expansion() if into is None else into
        for task, method, solver, dtype, device, seed in itertools.product(
            self.tasks, self.methods, self.solvers, self.dtypes, self.devices, self.seeds
        ):
            adaptive = solvers.get(solver).adaptive
            settings_axis = self.rtols if adaptive else self.step_sizes
            for size in self.sizes or tasks.get(task).sizes:
                for value in settings_axis:
                    tolerance = dict(rtol=value) if adaptive else dict(step_size=value)
                    case = Case(
                        task=task,
                        method=method,
                        solver=solver,
                        size=size,
                        dtype=dtype,
                        device=device,
                        seed=seed,
                        max_steps=settings.max_steps,
                        repeats=repeats,
                        **tolerance,
                    )
                    out.add(resolve(case, atol_ratio=settings.atol_ratio))
        return out


@dataclass(frozen=True)
class StudyGrid:
    """Training runs: the product of its axes over each study's published setup (``None``: the
    study's solver, tolerances or step and budget), the five core methods, float64, CPU, seed 0.

    ``rtols`` and ``atols`` cross; a value left None is taken from the study's published pair
    that has the other (`odebench.training.case.resolve`), so ``atols=(0.1, 0.05)`` alone runs
    the published pairs with those absolute tolerances.
    """

    studies: tuple[str, ...]
    methods: tuple[str, ...] = CORE
    solvers: tuple[str | None, ...] = (None,)
    rtols: tuple[float | None, ...] = (None,)
    atols: tuple[float | None, ...] = (None,)
    step_sizes: tuple[float | None, ...] = (None,)
    dtypes: tuple[str, ...] = ("float64",)
    devices: tuple[str, ...] = ("cpu",)
    seeds: tuple[int, ...] = (0,)
    iterations: tuple[int | None, ...] = (None,)

    def expand(self, settings: Settings, repeats: int, into: Expansion | None = None) -> Expansion:
        """Every resolved training run of the grid, added to `into` (a new Expansion by default)."""
        out = Expansion() if into is None else into
        for study, method, solver, dtype, device, seed, iterations in itertools.product(
            self.studies, self.methods, self.solvers, self.dtypes, self.devices, self.seeds, self.iterations
        ):
            adaptive = solvers.get(solver or studies.get(study).solver).adaptive
            settings_axis = itertools.product(self.rtols, self.atols) if adaptive else self.step_sizes
            for value in settings_axis:
                case = TrainingCase(
                    study=study,
                    method=method,
                    solver=solver,
                    dtype=dtype,
                    device=device,
                    seed=seed,
                    iterations=iterations,
                    max_steps=settings.max_steps,
                    eval_every=settings.eval_every,
                    max_seconds=settings.max_seconds,
                    **(dict(zip(("rtol", "atol"), value)) if adaptive else dict(step_size=value)),
                )
                out.add(resolve_training(case))
        return out


@dataclass(frozen=True)
class RatioGrid:
    """Same-run time ratios: per problem and setting, `methods` timed against `baseline`
    interleaved round by round (`odebench.harness.ratios`); defaults as for `Grid`."""

    tasks: tuple[str, ...]
    methods: tuple[str, ...] = ("adjoint", "seminorm", "aca", "symplectic")
    baseline: str = "naive"
    solvers: tuple[str, ...] = ("dopri5",)
    rtols: tuple[float | None, ...] = (None,)
    sizes: tuple[int | None, ...] = (None,)
    step_sizes: tuple[float | None, ...] = (None,)
    dtypes: tuple[str, ...] = ("float64",)
    devices: tuple[str, ...] = ("cpu",)
    seeds: tuple[int, ...] = (0,)
    rounds: int = RATIO_ROUNDS

    def expand(self, settings: Settings, repeats: int, into: Expansion | None = None) -> Expansion:
        """One ratio case per problem and setting, with the methods that support the solver."""
        out = Expansion() if into is None else into
        for task, solver, dtype, device, seed in itertools.product(
            self.tasks, self.solvers, self.dtypes, self.devices, self.seeds
        ):
            adaptive = solvers.get(solver).adaptive
            contenders = tuple(m for m in self.methods if methods.get(m).supports(solver))
            for size in self.sizes or tasks.get(task).sizes:
                for value in self.rtols if adaptive else self.step_sizes:
                    case = RatioCase(
                        task=task,
                        methods=contenders,
                        baseline=self.baseline,
                        solver=solver,
                        size=size,
                        dtype=dtype,
                        device=device,
                        seed=seed,
                        max_steps=settings.max_steps,
                        rounds=self.rounds,
                        **(dict(rtol=value) if adaptive else dict(step_size=value)),
                    )
                    out.add(resolve_ratios(case))
        return out


@dataclass(frozen=True)
class Suite:
    """A named union of grids, with the duration it was measured to take."""

    name: str
    description: str
    expected_duration: str
    grids: Callable[[], Sequence[Grid]]
    repeats: int = 3

    def expand(
        self,
        settings: Settings = Settings(),
        setting_axes: Mapping[str, tuple] = (),
        narrow: Mapping[str, tuple] = (),
    ) -> Expansion:
        """Every case of the suite, with `setting_axes` (dtypes, devices, seeds) applied.

        `narrow` keeps, per named grid axis (tasks, methods, solvers), only the given values, so
        a selection does not pay for resolving cases it drops.
        """
        out = Expansion()
        repeats = self.repeats if settings.repeats is None else settings.repeats
        for grid in self.grids():
            kept = {
                axis: tuple(v for v in getattr(grid, axis) if v in values)
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
) -> Expansion:
    """The cases of a run: see the module docstring for the rule.

    Args:
        suite: a registered suite name, or None (`default` when no axis is given).
        selection: values per axis in `SELECTION_AXES` (missing or empty: not given); with
            ``studies`` and no suite the product is of training runs, else of gradient cases.
        setting_axes: values per axis in `SETTING_AXES` (missing or empty: not given).
        settings: repeats, atol ratio, step budget (and training checks and time budget).
    """
    selection = {k: tuple(v) for k, v in (selection or {}).items() if v}
    setting_axes = {k: tuple(v) for k, v in (setting_axes or {}).items() if v}
    for name, allowed in ((selection, SELECTION_AXES), (setting_axes, SETTING_AXES)):
        unknown = set(name) - set(allowed)
        if unknown:
            raise ValueError(f"unknown axes {sorted(unknown)}; valid: {', '.join(allowed)}")
    if suite is None and selection:
        return _product(selection, setting_axes, settings)
    chosen = get(suite or default)
    narrow = {
        axis: selection[axis] for axis in ("tasks", "studies", "methods", "solvers") if axis in selection
    }
    for axis, wanted in narrow.items():
        have = {value for grid in chosen.grids() for value in getattr(grid, axis, ()) if value is not None}
        missing = [value for value in wanted if value not in have]
        if missing:
            raise InvalidInputError(
                f"suite {chosen.name!r} has no case with {_FIELD[axis]} {', '.join(missing)}; "
                f"its values: {', '.join(sorted(have))} (leave out --suite to run exactly the axes you give)"
            )
    expansion = chosen.expand(settings, setting_axes, narrow)
    return select(expansion, selection, chosen.name) if selection else expansion


def _product(selection: dict, setting_axes: dict, settings: Settings) -> Expansion:
    """Exactly the product of the given axes over the documented defaults."""
    repeats = 3 if settings.repeats is None else settings.repeats
    if "studies" in selection:
        if "tasks" in selection or "sizes" in selection:
            raise InvalidInputError("give tasks (gradient cases) or studies (training runs), not both")
        return StudyGrid(**selection, **setting_axes).expand(settings, repeats)
    if "iterations" in setting_axes:
        raise InvalidInputError("iterations apply to training runs: give --study too")
    return Grid(tasks=selection.pop("tasks", tuple(tasks.names())), **selection, **setting_axes).expand(
        settings, repeats
    )


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


def _quick() -> list[Grid]:
    return [
        # Accuracy against cost: five core methods, three tasks, two tolerances.
        Grid(tasks=("linear", "spiral", "mlp"), rtols=(1e-4, 1e-7)),
        # Memory scaling: fixed-step rk4 at spiral's own step over growing horizons.
        Grid(tasks=("spiral",), solvers=("rk4",), sizes=(1, 2, 5)),
    ]


def _full() -> list[Grid]:
    every_task, every_method = tuple(tasks.names()), tuple(methods.names())
    return [
        Grid(every_task, every_method, rtols=(1e-3, 1e-5, 1e-7, 1e-9)),
        Grid(every_task, every_method, solvers=("bosh3",), rtols=(1e-4, 1e-7)),
        Grid(every_task, every_method, solvers=("dopri8",), rtols=(1e-6, 1e-9)),
        Grid(every_task, every_method, solvers=("rk4", "midpoint")),
        Grid(every_task, every_method, sizes=()),
        Grid(every_task, every_method, solvers=("rk4",), sizes=()),
    ]


def _gate() -> list[Grid | RatioGrid]:
    return [
        Grid(tasks=("linear", "spiral", "mlp"), rtols=(1e-6,)),
        Grid(tasks=("linear", "mlp"), solvers=("rk4",)),
        # Time ratios, interleaved: every core method against naive, the native ACA against
        # TorchDiffEqPack's where that peer is installed.
        RatioGrid(tasks=("linear", "mlp"), rtols=(1e-6,)),
        *(
            [RatioGrid(tasks=("mlp",), methods=("aca",), baseline=PEER_ACA)]
            if PEER_ACA in methods.names()
            else []
        ),
    ]


PEER_ACA = "aca@torchdiffeqpack"


registry.register(
    "quick",
    Suite(
        "quick",
        "5 core methods x linear, spiral, mlp x dopri5 at rtol 1e-4, 1e-7; rk4 memory scaling on spiral",
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
    "gate",
    Suite(
        "gate",
        "the CI gate: linear, spiral, mlp x 5 core methods x dopri5 at rtol 1e-6; rk4 on linear, mlp; "
        "interleaved time ratios to naive (and of aca to its TorchDiffEqPack peer)",
        "about 40 seconds on 2 CPU cores",
        _gate,
    ),
)


def claim_grids(iterations: Callable[[int], int] = lambda budget: budget) -> list[StudyGrid]:
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
                        StudyGrid(
                            studies=(study,),
                            seeds=tuple(range(claim.seeds)),
                            iterations=(iterations(full),),
                            **needs,
                        )
                    )
    return grids


def _train_quick() -> list[StudyGrid]:
    # Every claim's runs, seed 0, at a 25th of their budgets (at least 3 iterations).
    return [replace(grid, seeds=(0,)) for grid in claim_grids(lambda budget: max(3, budget // 25))]


def _train_full() -> list[StudyGrid]:
    return [
        StudyGrid(
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
        "about 2 minutes on 2 CPU cores",
        _train_quick,
    ),
)
registry.register(
    "train-full",
    Suite(
        "train-full",
        "every training study at its budget and published tolerances, the five core methods, seeds 0, 1, 2",
        "about 5 hours on 2 CPU cores",
        _train_full,
    ),
)
registry.register(
    "claims",
    Suite(
        "claims",
        "exactly the runs every published training claim needs, at its published settings and seeds "
        "(at least 5): odebench report on it gives the claims table",
        "about 2 hours on 2 CPU cores",
        claim_grids,
    ),
)

names = registry.names
get = registry.get

__all__ = ["SELECTION_AXES", "SETTING_AXES", "Expansion", "Grid", "Settings", "Suite", "get", "names", "plan"]
