"""Backpropagation with at most K stored states, recomputed on a binomial (revolve) schedule."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from functools import cache

import torch

from odebench.methods.aca import ACA
from odebench.methods.base import MethodOption
from odebench.methods.claims import discrete_exact
from odebench.methods.stepwise import stepwise_capabilities
from odebench.solvers.runge_kutta import Step, Trajectory, call_field, take_step

PAPER = (
    "Griewank & Walther, Algorithm 799: revolve, ACM TOMS 2000; Stumm & Walther, New algorithms for "
    "optimal online checkpointing, SIAM J. Sci. Comput. 2010"
)


class Checkpointed(ACA):
    """Discretise-then-optimise under a memory budget: at most K states stored at once.

    Forward: solve without a graph, keeping the accepted step grid (two scalars a step) and no
    state. Backward: reverse the N steps from ``y0`` with K checkpoint slots by the binomial
    schedule of revolve, which recomputes the fewest steps any K-slot schedule can,
    ``T(N, K) = r N - C(K + r + 1, r - 1)`` with ``r`` the least integer such that
    ``C(K + 1 + r, r) >= N`` (Griewank & Walther 2000, counting ``y0`` as a slot), and hand each
    step to ACA's step VJP (its stages rebuilt with autograd). A checkpoint of an adaptive solve
    is the state and the first stage it carries into the next step, two state-sized tensors.
    Memory: K checkpoints plus one step's graph, flat in N; the gradient is that of the discrete
    forward solve, bitwise the forward's states.

    Deviation from the online schedule of Stumm & Walther (which places checkpoints while the
    number of steps is still unknown): the forward pass keeps no state, and the backward pass
    runs the offline schedule over the recorded grid, so it repeats the first forward sweep's
    steps up to the first checkpoint. The design follows diffrax's RecursiveCheckpointAdjoint,
    which likewise runs a binomial (treeverse) schedule offline.
    """

    description = "binomial checkpointing: backprop with K stored states (native revolve)"
    capabilities = replace(stepwise_capabilities(PAPER), memory_in_steps="flat")
    option = MethodOption("checkpoints", default=8, minimum=0)
    keeps_states = False
    claims = (discrete_exact("checkpointed", "Griewank & Walther 2000 (revolve), the reverse sweep"),)

    def __init__(self, checkpoints: int = option.default) -> None:
        self.checkpoints = checkpoints

    def with_option(self, value: int) -> Checkpointed:
        return type(self)(value)

    def steps_in_reverse(self, func, trajectory: Trajectory, y0: torch.Tensor) -> Iterator[tuple[int, Step]]:
        solver = trajectory.solver
        tab = solver.tableau.tensors(y0.dtype, y0.device)
        steps = trajectory.steps
        first = None
        if solver.adaptive:  # the first stage a solve starts with, f(t0, y0)
            with torch.no_grad():
                first = call_field(func, steps[0].t0, y0)

        def state_step(n: int, y: torch.Tensor, carried: torch.Tensor | None) -> Step:
            """Step n as the VJP needs it: its start state, and its first stage where stored."""
            keep_first = solver.adaptive and not solver.tableau.fsal
            return replace(steps[n], y0=y, f0=carried if keep_first else None)

        @torch.no_grad()
        def advance(n: int, y, carried, count: int):
            for m in range(n, n + count):
                K, y = take_step(func, tab, solver, state_step(m, y, carried), carried)
                carried = K[..., -1].clone() if solver.adaptive else None
            return y, carried

        def reverse(start: int, y, carried, stop: int, slots: int):
            while stop - start > 1:
                offset = split(stop - start, slots)
                mid = advance(start, y, carried, offset)
                yield from reverse(start + offset, *mid, stop, max(slots - 1, 0))
                del mid
                stop = start + offset
            yield start, state_step(start, y, carried)

        if steps:
            yield from reverse(0, y0, first, len(steps), self.checkpoints)


def binomial(slots: int, reps: int) -> int:
    """``C(slots + reps, slots)``: the most steps `slots` checkpoints reverse with each step
    advanced at most `reps` times (Griewank & Walther's beta; 0 for negative `reps`)."""
    return math.comb(slots + reps, slots) if reps >= 0 else 0


@cache
def recomputations(steps: int, slots: int) -> int:
    """The fewest step advances that reverse `steps` steps from a stored start with `slots`
    further checkpoints (closed form of Griewank & Walther 2000, the start counted as a slot)."""
    if steps <= 1:
        return 0
    if slots == 0:
        return steps * (steps - 1) // 2
    held = slots + 1
    reps = 0
    while binomial(held, reps) < steps:
        reps += 1
    return reps * steps - binomial(held + 1, reps - 1)


@cache
def split(steps: int, slots: int) -> int:
    """How far the first advance of an optimal schedule goes (the least such offset)."""
    if slots == 0:
        return steps - 1
    return min(
        range(1, steps),
        key=lambda m: m + recomputations(steps - m, slots - 1) + recomputations(m, slots),
    )
