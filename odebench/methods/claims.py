"""The claims gradient-method papers make about their gradients, as data for the evaluator.

Each method declares its paper's claims (`GradientMethod.claims`); these builders give the shapes
several papers share. They are measured on odebench's tasks, not on the papers' problems, so
every verdict is qualified "on these tasks".
"""

from __future__ import annotations

from odebench.claims import AtLeast, Claim, Metric, Part

#: The problems differ from every paper's: the deviation every gradient claim carries.
ON_OUR_TASKS = ("measured on odebench's tasks and solvers, not on the paper's problems",)
SCOPE = "on these tasks"
#: The discrete-exact methods must match autograd through the forward grid to this.
DISCRETE_EXACT = 1e-10
#: Forward steps from which a case counts as having "large step counts" (memory claims).
LARGE_STEPS = 50
#: Memory differences below 5 % are within the measurement's spread: no order.
MEMORY_NOISE = 0.05


def gradient_claim(sentence: str, source: str, published: str, *parts: Part) -> Claim:
    """A claim read on gradient cases, qualified as measured on odebench's tasks."""
    return Claim(sentence, source, published, parts, records="gradient", deviations=ON_OUR_TASKS, scope=SCOPE)


def lower_error_than_adjoint(method: str, source: str) -> Claim:
    """`method`'s gradient error is below the continuous adjoint's at the same tolerance."""
    return gradient_claim(
        f"{method} has a lower gradient error than the adjoint at the same tolerance.",
        source,
        "lower error than the adjoint on the paper's problems (figures, no common number)",
        Part(
            f"gradient error, {method} vs adjoint (adaptive solvers)",
            Metric("grad_rel_error", "gradient error", resolution="at_reference_resolution"),
            treatment={"method": method},
            control={"method": "adjoint"},
            where={"step_size": None},
        ),
    )


def discrete_exact(method: str, source: str) -> Claim:
    """`method` reproduces autograd through the forward solve's own steps."""
    return gradient_claim(
        f"{method} gives the exact gradient of the discrete forward solve (to {DISCRETE_EXACT:g}).",
        source,
        "the gradient of the discretised forward pass, exactly",
        Part(
            f"{method}'s distance to autograd through the forward grid",
            Metric("grad_rel_error_discrete", "discrete-exact error"),
            treatment={"method": method},
            bound=DISCRETE_EXACT,
        ),
    )


def less_memory(method: str, than: str) -> Part:
    """`method`'s peak memory below `than`'s on cases with at least `LARGE_STEPS` forward steps."""
    return Part(
        f"peak memory, {method} vs {than} (>= {LARGE_STEPS} forward steps)",
        Metric("peak_memory_bytes", "peak memory"),
        treatment={"method": method},
        control={"method": than},
        negligible=MEMORY_NOISE,
        where={"steps_accepted": AtLeast(LARGE_STEPS)},
    )
