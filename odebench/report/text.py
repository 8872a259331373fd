"""How numbers read in tables: one formatter, one mark for a missing value, one format per column.

A column of a table reads in one format: every gradient error as ``8.8e-09`` (`ERROR`), every
count as a whole number (`COUNT`), and any other quantity in the format `column_pattern` picks
for the whole column (fixed decimals where the column fits them, else scientific), so ``4.0``
stands beside ``12.3`` and never ``4`` beside ``12.3``, nor ``2.405e+04`` beside ``20506``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

#: What a table shows where nothing was measured.
MISSING = "–"

#: Gradient errors, everywhere: two significant digits, scientific.
ERROR = "{:.1e}"

#: Counts (evaluations, VJPs, steps), everywhere: a whole number, never an exponent.
COUNT = "{:.0f}"

#: Ratios to naive in brackets: two significant digits.
RATIO = "{:.2g}x"


def fmt(value: Any, pattern: str = "{:.3g}", scale: float = 1.0) -> str:
    """A number (times `scale`) formatted with `pattern`; `MISSING` for None, NaN or pd.NA; any
    other value as its text."""
    if _missing(value):
        return MISSING
    if not _number(value):
        return str(value)
    return pattern.format(value * scale if scale != 1.0 else value)


def column_pattern(values: Iterable[Any], digits: int = 3, scale: float = 1.0) -> str:
    """One format for a whole column of numbers (times `scale`), missing values ignored.

    Fixed decimals where every value lies in [0.001, 100000) and the largest is less than 1000x
    the smallest: as many as give the largest `digits` significant digits and the smallest two.
    Else scientific with `digits` significant digits.
    """
    sizes = [
        abs(float(v) * scale)
        for v in values
        if not _missing(v) and _number(v) and math.isfinite(v) and v != 0
    ]
    if not sizes:
        return f"{{:.{digits - 1}f}}"
    low, high = min(sizes), max(sizes)
    if low >= 1e-3 and high < 1e5 and high < 1000 * low:
        decimals = max(digits - 1 - math.floor(math.log10(high)), 1 - math.floor(math.log10(low)), 0)
        return f"{{:.{decimals}f}}"
    return f"{{:.{digits - 1}e}}"


def fmt_column(values: Iterable[Any], pattern: str | None = None, scale: float = 1.0) -> list[str]:
    """Each value (times `scale`) as text in one format for the whole column: `pattern`, or the
    one `column_pattern` picks; `MISSING` where a value is missing."""
    values = list(values)
    pattern = pattern or column_pattern(values, scale=scale)
    return [fmt(v, pattern, scale) for v in values]


def plural(count: int, noun: str) -> str:
    """``1 case``, ``2 cases``, ``0 runs``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "<NA>"


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
