"""Factories for ``odebench run --model tests.model_factories:<name>`` in the tests."""

from __future__ import annotations

from odebench import tasks


def linear():
    """The `linear` task's problem at dimension 2, handed over as a user's model."""
    problem = tasks.get("linear").build(2)
    return problem.func, problem.y0, problem.t, problem.loss


def lambda_loss():
    """A loss no worker can unpickle."""
    func, y0, t, _ = linear()
    return func, y0, t, lambda solution: solution.sum()


def raises():
    raise RuntimeError("no data today")


def three():
    return linear()[:3]
