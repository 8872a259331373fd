"""Gradient methods: the registry and the five core methods.

``names()`` lists the available methods, ``get(name)`` returns one, ``register(name, method)``
adds one (or ``@register(name)`` on a class), ``unavailable()`` maps known-but-unusable peers
to the reason. Peers from other packages are registered as ``method@backend``.
"""

from __future__ import annotations

from odebench.methods.aca import ACA
from odebench.methods.adjoint import Adjoint
from odebench.methods.base import Capabilities, GradientMethod
from odebench.methods.naive import Naive
from odebench.methods.symplectic import Symplectic
from odebench.registry import Registry

registry: Registry[GradientMethod] = Registry("method")
registry.register("naive", Naive())
registry.register("adjoint", Adjoint())
registry.register("seminorm", Adjoint(seminorm=True))
registry.register("aca", ACA())
registry.register("symplectic", Symplectic())

CORE = ("naive", "adjoint", "seminorm", "aca", "symplectic")
#: The method that time and memory ratios are taken against: plain backpropagation.
BASELINE = "naive"

from odebench.methods import peers as _peers  # noqa: E402  (registers the installed peers)

_peers.register_all(registry)

names = registry.names
get = registry.get
register = registry.register
unavailable = registry.unavailable

__all__ = [
    "BASELINE",
    "CORE",
    "Capabilities",
    "GradientMethod",
    "get",
    "names",
    "register",
    "registry",
    "unavailable",
]
