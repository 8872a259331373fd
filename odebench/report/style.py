"""One colour and one marker per method, the same in every figure, and the figures' look.

Core methods take the first palette slots in their canonical order whether or not a frame has
them, so ``adjoint`` is the same colour in every report; other methods (peers such as
``aca@torchdiffeqpack``) follow, sorted by name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from odebench.methods import names as registry_names
from odebench.methods import order_key

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")
#: Line dashes, so that lines which lie on top of each other still tell their methods apart.
_LINESTYLES = ("-", "--", ":", "-.", (0, (6, 2, 1, 2, 1, 2)), (0, (1, 1)), (0, (8, 3)))

#: Axis labels, with units, of every quantity the report plots.
LABELS = {
    "grad_rel_error": "relative gradient error",
    "nfe_backward": "backward NFE [evaluations]",
    "backward_evals": "backward NFE + VJPs [passes through f]",
    "time_total_s": "time forward + backward [s]",
    "peak_memory_mib": "peak memory [MiB]",
    "rtol": "relative tolerance rtol",
    "size": "size knob",
}


@dataclass(frozen=True)
class MethodStyle:
    """How one method is drawn: a colour (hex), a marker and a line style."""

    colour: str
    marker: str
    linestyle: str | tuple = "-"


def method_order(methods: Iterable[str]) -> list[str]:
    """Registration order (the core methods first), a method's option values ascending after
    it, names no registry knows last (`odebench.methods.order_key`)."""
    return sorted(set(methods), key=order_key)


def method_styles(methods: Iterable[str]) -> dict[str, MethodStyle]:
    """A fixed style per method: every registered method keeps its slot in registration order,
    so a method looks the same in every report; other names (options, plug-ins) follow."""
    registered = registry_names()
    others = method_order(set(methods) - set(registered))
    names = [*registered, *others]
    import seaborn as sns  # here, not at import: tables and comparisons order methods without plotting
    from matplotlib.colors import to_hex

    # Registered methods: the colour-blind palette, then hues fixed by the registry's size; the
    # other names: a darker palette, so their count never moves a registered method's colour.
    colours = list(sns.color_palette("colorblind", 10))[: len(registered)]
    colours += list(sns.color_palette("husl", max(len(registered) - 10, 0)))
    extra = list(sns.color_palette("dark", 10))
    colours += (extra + list(sns.husl_palette(max(len(others) - 10, 0), l=0.4)))[: len(others)]
    return {
        name: MethodStyle(to_hex(colours[i]), _MARKERS[i % len(_MARKERS)], _LINESTYLES[i % len(_LINESTYLES)])
        for i, name in enumerate(names)
    }


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Seaborn's whitegrid look for the figures made inside, leaving global settings alone."""
    import matplotlib as mpl
    import seaborn as sns

    with (
        mpl.rc_context({"svg.fonttype": "path", "figure.dpi": 100}),
        sns.axes_style("whitegrid"),
        sns.plotting_context("notebook", font_scale=0.9),
    ):
        yield
