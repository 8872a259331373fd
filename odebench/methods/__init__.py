"""Gradient methods: the registry, the five core methods and the newer ones.

``names()`` lists the available methods, ``get(name)`` returns one, ``register(name, method)``
adds one (or ``@register(name)`` on a class), ``unavailable()`` maps known-but-unusable peers
to the reason. Peers from other packages are registered as ``method@backend``. A method with an
option (`GradientMethod.option`) is also named with its value, ``checkpointed:8``.
"""

from __future__ import annotations

from functools import cache

from odebench.errors import InvalidInputError
from odebench.methods.aca import ACA
from odebench.methods.adjoint import Adjoint
from odebench.methods.backsolve_checkpointed import BacksolveCheckpointed
from odebench.methods.base import Capabilities, GradientMethod, MethodOption
from odebench.methods.checkpointed import Checkpointed
from odebench.methods.compiled_step import CompiledStep
from odebench.methods.forward_mode import ForwardMode
from odebench.methods.mali import MALI
from odebench.methods.naive import Naive
from odebench.methods.reversible import Reversible
from odebench.methods.reversible_heun import ReversibleHeun
from odebench.methods.symplectic import Symplectic
from odebench.registry import Registry

registry: Registry[GradientMethod] = Registry("method")
registry.register("naive", Naive())
registry.register("adjoint", Adjoint())
registry.register("seminorm", Adjoint(seminorm=True))
registry.register("aca", ACA())
registry.register("symplectic", Symplectic())
registry.register("reversible", Reversible())
registry.register("reversible_heun", ReversibleHeun())
registry.register("mali", MALI())
registry.register("checkpointed", Checkpointed())
registry.register("backsolve_checkpointed", BacksolveCheckpointed())
registry.register("forward", ForwardMode())
registry.register("compiled_step", CompiledStep())

CORE = ("naive", "adjoint", "seminorm", "aca", "symplectic")
#: The methods of 2021-2024 beside them (reversible schemes, checkpointing, forward mode).
NEWER = ("reversible", "reversible_heun", "mali", "checkpointed", "backsolve_checkpointed", "forward")
#: The method that time and memory ratios are taken against: plain backpropagation.
BASELINE = "naive"

from odebench.methods import diffrax_peer, peers, torchode_peer, torchsde_peer  # noqa: E402

for _peer_module in (peers, torchsde_peer, torchode_peer, diffrax_peer):  # installed or not, with the reason
    _peer_module.register_all(registry)

names = registry.names
register = registry.register
unavailable = registry.unavailable


def get(name: str) -> GradientMethod:
    """The method registered as `name`, or, for ``base:value``, `base` with its option set."""
    base, sep, value = name.partition(":")
    method = registry.get(base)
    if not sep:
        return method
    option = method.option
    if option is None:
        raise InvalidInputError(f"method {base!r} takes no option; {_with_options()}")
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < option.minimum:
        raise InvalidInputError(
            f"{base}:{value}: the {option.name} must be an integer >= {option.minimum}, "
            f"e.g. {base}:{option.default}"
        )
    return _configured(method, number)


@cache
def _configured(method: GradientMethod, value: int) -> GradientMethod:
    """One instance per method and option value (a ratio case's rounds reuse it)."""
    return method.with_option(value)


def base_name(name: str) -> str:
    """The registered name of `name` (``checkpointed:8`` -> ``checkpointed``)."""
    return name.partition(":")[0]


def order_key(name: str) -> tuple[int, str, int]:
    """Registration order, then option value: how tables and legends order method names."""
    base, _, value = name.partition(":")
    listed = names()
    rank = listed.index(base) if base in listed else len(listed)
    return rank, base, int(value) if value.isdigit() else -1


def _with_options() -> str:
    taking = [f"{n}:<{m.option.name}>" for n, m in registry.items() if m.option is not None]
    return f"methods with an option: {', '.join(taking)}" if taking else "no method takes an option"


__all__ = [
    "BASELINE",
    "CORE",
    "NEWER",
    "Capabilities",
    "GradientMethod",
    "MethodOption",
    "base_name",
    "get",
    "names",
    "order_key",
    "register",
    "registry",
    "unavailable",
]
