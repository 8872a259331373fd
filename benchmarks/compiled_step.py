"""What ``torch.compile`` recovers of the per-step overhead that JAX compiles away.

Run ``python -m benchmarks.compiled_step [--task linear spiral mlp cnf2d] [--rounds 15]``: for
each task at its default size, fixed-step ``rk4`` at the task's own step, the gradient by plain
autograd through odebench's native steps on torchdiffeq's grid (`odebench.solvers.runge_kutta.replay`,
the discrete-exact solve) three ways:

- ``replay``: as odebench runs it uncompiled (`replay`, the discrete-exact solve);
- ``compiled step``: the ``compiled_step`` method (`odebench.methods.compiled_step`): one step,
  its stages and its end state, compiled by ``torch.compile``, one graph reused at every step;
- ``compiled loop``: the whole loop over the grid compiled as one graph (forward and backward).

It prints, per task and variant, the compile time (the first call less a replay call), the
relative difference of the gradient from replay's (the grid is the same, so only round-off may
differ), and the time over replay's, interleaved round by round in one process
(`odebench.measure.interleaved`). Not a test: a measurement to run on purpose (the first
compile of a process also starts inductor, about 30 s here).
"""

from __future__ import annotations

import argparse
import time

import torch

from odebench import methods, solvers, tasks
from odebench.jobs.gradient import flat_gradient
from odebench.measure.interleaved import interleaved_ratios
from odebench.measure.timing import torch_threads
from odebench.methods.compiled_step import rk_step
from odebench.solvers.runge_kutta import integrate, replay


def unrolled(step, trajectory):
    """The fixed-step loop over `trajectory`'s grid as one function of ``y0`` (what ``compiled
    loop`` hands to ``torch.compile``): outputs inside a step by torchdiffeq's linear interpolation,
    in tensors throughout, so no value leaves the graph."""
    slots = trajectory.outputs_by_step()

    def solve(y0):
        solution = [y0] + [None] * (len(trajectory.t) - 1)
        y = y0
        for n, grid_step in enumerate(trajectory.steps):
            y_next = step(y, grid_step.t0, grid_step.dt)
            for slot in slots.get(n, ()):
                solution[slot.index] = y + slot.weights.sum() * (y_next - y)  # weights: fraction * b
            y = y_next
        return torch.stack(solution)

    return solve


def variants(problem, solver_name: str):
    """name -> a call computing the flattened gradient of the problem's loss."""
    solver = solvers.get(solver_name)
    with torch.no_grad():
        _, trajectory = integrate(
            problem.func, problem.y0, problem.t, solver, None, None, {"step_size": problem.step_size}
        )
    compiled_loop = torch.compile(unrolled(rk_step(problem.func, solver), trajectory), dynamic=False)
    method = methods.get("compiled_step")

    def gradient(solve):
        def run():
            y0 = problem.y0.detach().clone().requires_grad_(True)
            return flat_gradient(problem.func, y0, problem.loss(solve(y0)))

        return run

    return {
        "replay": gradient(lambda y0: replay(problem.func, y0, trajectory)),
        "compiled step": gradient(
            lambda y0: method.odeint(
                problem.func, y0, problem.t, solver=solver_name, options={"step_size": problem.step_size}
            )
        ),
        "compiled loop": gradient(compiled_loop),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compiled_step")
    parser.add_argument("--task", nargs="+", default=["linear", "spiral", "mlp", "cnf2d"])
    parser.add_argument("--solver", default="rk4")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    with torch_threads(1):
        for name in args.task:
            problem = tasks.get(name).build()
            runs = variants(problem, args.solver)
            started = time.perf_counter()
            replayed = runs["replay"]()
            replay_s = time.perf_counter() - started
            rows = []
            for variant, run in runs.items():
                started = time.perf_counter()
                gradient = run()
                first = time.perf_counter() - started
                difference = ((gradient - replayed).norm() / replayed.norm()).item()
                rows.append((variant, max(first - replay_s, 0.0), difference))
            ratios, replay_median = interleaved_ratios(
                {k: (lambda r=r: r()) for k, r in runs.items()}, "replay", rounds=args.rounds
            )
            size = tasks.get(name).default_size
            print(f"{name}[{size}] {args.solver} h={problem.step_size:g}: replay {1e3 * replay_median:.1f}ms")
            for variant, compile_s, difference in rows:
                stats = ratios[variant]
                print(
                    f"  {variant:14s} compile {compile_s:5.1f} s  gradient vs replay {difference:.1e}  "
                    f"time x replay {stats.median:.2f} [{stats.q25:.2f}-{stats.q75:.2f}], {stats.rounds} rds"
                )


if __name__ == "__main__":
    main()
