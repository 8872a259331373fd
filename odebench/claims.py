"""Published claims as data: what a paper states, where, the figure it gives, and how it is measured.

A study (for training claims) or a gradient method (for claims about its gradients) declares the
claims of its paper as `Claim` objects; one evaluator (`odebench.report.claims`) judges them all
on a run's records, and the report names no method, study or paper in code.

A claim has one or more `Part`\\ s, each a comparison on one `Metric`: the runs (or cases) that
match ``treatment`` against those that match ``control`` and are equal in everything else (the
seed included), or, without a control, the treatment's runs against a published ``bound``.
Effects are per pair: ``treatment / control`` on the ratio scale (positive quantities: errors,
times, counts), ``treatment - control`` on the difference scale (shares). ``direction`` says
which way the paper says the effect goes, ``published`` how large it says it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOWER, HIGHER = "lower", "higher"
RATIO, DIFFERENCE = "ratio", "difference"


@dataclass(frozen=True)
class AtLeast:
    """A selection value: the column is at least ``value`` (e.g. forward steps >= 50)."""

    value: float


@dataclass(frozen=True)
class Metric:
    """What one run (or gradient case) contributes to a comparison.

    Attributes:
        column: a record field (a final metric of a training run, a measurement of a gradient
            case) or, with `window`, a column of a training run's curve.
        label: the metric in words, for the report.
        window: iterations ``[start, stop)`` of the curve whose values are averaged (``stop``
            None: to the end of the run); None reads the record's field.
        log: average the window's log10 values (a geometric mean), for losses spanning decades.
        per: a curve column the window's values are divided by, point by point (steps per solve).
        scale: `RATIO` (effects as treatment / control) or `DIFFERENCE` (treatment - control).
        resolution: a boolean column that marks a value as at the reference's resolution; pairs
            where both values are are left out (the reference cannot rank them).
    """

    column: str
    label: str
    window: tuple[int, int | None] | None = None
    log: bool = False
    per: str | None = None
    scale: str = RATIO
    resolution: str | None = None


@dataclass(frozen=True)
class Part:
    """One comparison of a claim (a claim "holds in part" when some of its parts hold).

    Attributes:
        name: the part in words ("test error vs the adjoint").
        metric: what is compared.
        treatment: field values selecting the runs the claim is about (``{"method": "aca"}``).
        control: field values selecting what they are compared with; None compares each
            treatment run with `bound`.
        direction: `LOWER` or `HIGHER`: the treatment's value relative to the control's.
        published: the published effect on the metric's scale (a ratio such as 0.5 for "half",
            a difference such as -0.1), or None where the paper gives only the direction.
        bound: the published value a treatment run is compared with when there is no control.
        negligible: effects within this band around "no effect" (a ratio within 1 +- 5 % for
            0.05) are below the measurement's resolution and count as no effect.
        where: field values every run of the part must have (``{"step_size": None}``: adaptive
            solves only; `AtLeast` for a lower bound).
        no_worse: the paper claims only that the treatment is not worse ("at equal or better
            accuracy", "does not go to 0"): the part holds when the interval lies on the
            published side of the far edge of the negligible band, which is then the margin
            of non-inferiority, and is not reproduced when it lies wholly beyond that edge.
    """

    name: str
    metric: Metric
    treatment: Mapping[str, Any]
    control: Mapping[str, Any] | None = None
    direction: str = LOWER
    published: float | None = None
    bound: float | None = None
    negligible: float = 0.0
    where: Mapping[str, Any] = field(default_factory=dict)
    no_worse: bool = False

    def __post_init__(self) -> None:
        if self.no_worse and self.negligible <= 0:
            raise ValueError(f"part {self.name!r}: a no-worse part needs its margin as negligible > 0")
        if (self.control is None) == (self.bound is None):
            raise ValueError(f"part {self.name!r}: give a control or a bound, not both or neither")
        if self.direction not in (LOWER, HIGHER):
            raise ValueError(f"part {self.name!r}: direction must be {LOWER!r} or {HIGHER!r}")
        if self.metric.scale not in (RATIO, DIFFERENCE):
            raise ValueError(f"part {self.name!r}: scale must be {RATIO!r} or {DIFFERENCE!r}")


@dataclass(frozen=True)
class Claim:
    """A published claim and how odebench tests it.

    Attributes:
        sentence: what the paper states, in our words.
        source: the paper, the figure or table, and the authors' code the setup was read from.
        published: the published figures, in words (shown beside the measured ones).
        parts: the comparisons; the claim holds when all of them hold.
        records: ``"training"`` (training runs) or ``"gradient"`` (gradient cases).
        needs: for training claims, the runs the claims suite makes for it: keyword values of
            `odebench.suites.StudyGrid` (studies, methods, atols, iterations, dtypes, ...).
        seeds: seeds the claims suite runs (pairs of runs share a seed).
        deviations: how the measured setup differs from the published one (a study's claims
            get the study's); shown beside the verdict.
        scope: how a verdict is qualified when there are deviations ("at this scale").
    """

    sentence: str
    source: str
    published: str
    parts: tuple[Part, ...]
    records: str = "training"
    needs: Mapping[str, Any] = field(default_factory=dict)
    seeds: int = 5
    deviations: tuple[str, ...] = ()
    scope: str = "at this scale"


__all__ = ["DIFFERENCE", "HIGHER", "LOWER", "RATIO", "AtLeast", "Claim", "Metric", "Part"]
