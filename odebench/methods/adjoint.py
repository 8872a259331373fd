"""The continuous adjoint ("optimise-then-discretise") and its seminorm variant."""

from __future__ import annotations

from dataclasses import replace

import torchdiffeq

from odebench.claims import Metric, Part
from odebench.methods.base import GradientMethod, quiet_fixed_step_callbacks
from odebench.methods.claims import gradient_claim
from odebench.methods.naive import Naive


class Adjoint(GradientMethod):
    """torchdiffeq's `odeint_adjoint`: solve the adjoint ODE backwards in time.

    Memory is constant in the number of steps; the gradient carries the error of the backward
    solve as well as the forward one. With ``seminorm=True`` the backward step-size control
    ignores the parameter-adjoint components, which cannot affect the trajectory, so the
    backward solve takes fewer steps.

    References: Chen et al., "Neural Ordinary Differential Equations", NeurIPS 2018;
    seminorm: Kidger, Chen & Lyons, "'Hey, that's not an ODE': Faster ODE Adjoints via
    Seminorms", ICML 2021 (arXiv 2020).
    """

    description = "continuous adjoint (torchdiffeq.odeint_adjoint)"
    # torchdiffeq's forward solve, as naive; the backward solve is a second discretisation.
    capabilities = replace(Naive.capabilities, exact_discrete_gradient=False, memory_in_steps="flat")

    def __init__(self, seminorm: bool = False) -> None:
        self.seminorm = seminorm
        if seminorm:
            self.description = "continuous adjoint with seminorm step control"
            # A seminorm only changes adaptive step-size control: on a fixed grid it is the
            # plain adjoint, so that pairing is refused rather than measured twice.
            self.capabilities = replace(
                Adjoint.capabilities,
                fixed_step=False,
                paper="Kidger, Chen & Lyons, Faster ODE Adjoints via Seminorms, ICML 2021",
            )
            self.claims = (
                gradient_claim(
                    "The seminorm adjoint needs fewer backward function evaluations than the plain "
                    "adjoint at the same tolerance.",
                    "Kidger, Chen & Lyons 2021 (seminorm adjoint, ICML), abstract",
                    "median 40 % (up to 62 %) fewer backward evaluations on their problems",
                    Part(
                        "backward NFE, seminorm vs adjoint",
                        Metric("nfe_backward", "backward NFE"),
                        treatment={"method": "seminorm"},
                        control={"method": "adjoint"},
                        published=0.6,
                    ),
                ),
            )

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        adjoint_options = {k: v for k, v in (options or {}).items() if k != "norm"}
        if self.seminorm:
            adjoint_options["norm"] = "seminorm"
        with quiet_fixed_step_callbacks():
            return torchdiffeq.odeint_adjoint(
                func,
                y0,
                t,
                rtol=rtol,
                atol=atol,
                method=solver,
                options=options,
                adjoint_options=adjoint_options,
                adjoint_params=tuple(func.parameters()),
            )
