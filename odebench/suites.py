"""Named suites: unions of grids over tasks, methods, solvers, tolerances and sizes.

A `Grid` is a product of axes; pairs a method does not support (seminorm on a fixed-step
solver, a peer without that scheme) are left out. The command line can override any axis of
every grid of a suite, so ``odebench run --suite quick --task spiral`` runs the quick grids on
spiral alone (at spiral's default size unless ``--size`` is given too).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

from odebench import methods, solvers, tasks
from odebench.methods import CORE
from odebench.record import Case
from odebench.registry import Registry


@functools.cache
def default_step(task: str, size: int | None) -> float:
    """The task's own step for fixed-step solvers at this size."""
    return tasks.get(task).build(size).step_size


@dataclass(frozen=True)
class Grid:
    """The product of its axes. ``sizes=(None,)`` means each task's default size and
    ``sizes=()`` each task's full list of sizes; ``step_sizes=(None,)`` the task's default step."""

    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    solvers: tuple[str, ...] = ("dopri5",)
    rtols: tuple[float, ...] = (1e-6,)
    sizes: tuple[int | None, ...] = (None,)
    step_sizes: tuple[float | None, ...] = (None,)
    dtypes: tuple[str, ...] = ("float64",)
    devices: tuple[str, ...] = ("cpu",)
    seeds: tuple[int, ...] = (0,)

    def cases(self, *, repeats: int, atol_ratio: float, max_steps: int) -> list[Case]:
        out = []
        axes = itertools.product(
            self.tasks,
            self.methods,
            self.solvers,
            self.rtols,
            self.step_sizes,
            self.dtypes,
            self.devices,
            self.seeds,
        )
        for task, method, solver, rtol, step, dtype, device, seed in axes:
            if not methods.get(method).supports(solver):
                continue
            adaptive = solvers.get(solver).adaptive
            sizes = self.sizes or tasks.get(task).sizes
            for size in sizes:
                if not adaptive and step is None:
                    step = default_step(task, size)
                out.append(
                    Case(
                        task=task,
                        method=method,
                        solver=solver,
                        rtol=rtol,
                        atol=rtol * atol_ratio,
                        size=size,
                        step_size=None if adaptive else step,
                        dtype=dtype,
                        device=device,
                        seed=seed,
                        repeats=repeats,
                        max_steps=max_steps,
                    )
                )
        return out


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    expected_duration: str
    grids: Callable[[], Sequence[Grid]]
    repeats: int = 3

    def cases(
        self,
        overrides: dict[str, tuple] | None = None,
        *,
        repeats: int | None = None,
        atol_ratio: float = 1e-2,
        max_steps: int = 20_000,
    ) -> list[Case]:
        """Every case of the suite, axes overridden where given, duplicates dropped."""
        overrides = {k: tuple(v) for k, v in (overrides or {}).items() if v}
        if "tasks" in overrides and "sizes" not in overrides:
            # A grid's sizes belong to its own tasks (a horizon is not a width): other tasks
            # run at their defaults unless sizes are given too.
            overrides["sizes"] = (None,)
        unknown = set(overrides) - {f.name for f in fields(Grid)}
        if unknown:
            raise ValueError(f"unknown grid axes: {sorted(unknown)}")
        seen: dict[str, Case] = {}
        for grid in self.grids():
            grid = replace(grid, **overrides)
            for case in grid.cases(
                repeats=self.repeats if repeats is None else repeats,
                atol_ratio=atol_ratio,
                max_steps=max_steps,
            ):
                seen.setdefault(case.case_id, case)
        return list(seen.values())


registry: Registry[Suite] = Registry("suite")


def _quick() -> list[Grid]:
    return [
        # Accuracy against cost: five core methods, three tasks, two tolerances.
        Grid(tasks=("linear", "spiral", "mlp"), methods=CORE, rtols=(1e-4, 1e-7)),
        # Memory scaling: fixed-step rk4 over growing horizons, so steps grow with the size knob.
        Grid(tasks=("spiral",), methods=CORE, solvers=("rk4",), sizes=(1, 2, 5)),
    ]


def _full() -> list[Grid]:
    every_task, every_method = tuple(tasks.names()), tuple(methods.names())
    return [
        Grid(tasks=every_task, methods=every_method, rtols=(1e-3, 1e-5, 1e-7, 1e-9)),
        Grid(tasks=every_task, methods=every_method, solvers=("bosh3",), rtols=(1e-4, 1e-7)),
        Grid(tasks=every_task, methods=every_method, solvers=("dopri8",), rtols=(1e-6, 1e-9)),
        Grid(tasks=every_task, methods=every_method, solvers=("rk4", "midpoint")),
        Grid(tasks=every_task, methods=every_method, sizes=()),
        Grid(tasks=every_task, methods=every_method, solvers=("rk4",), sizes=()),
    ]


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
        "about 3.5 hours on 2 CPU cores (1265 cases; a 1-in-40 sample took 9.7 s per case)",
        _full,
        repeats=5,
    ),
)

names = registry.names
get = registry.get

__all__ = ["Grid", "Suite", "get", "names", "registry"]
