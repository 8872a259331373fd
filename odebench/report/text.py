"""How numbers read in tables: one formatter, one mark for a missing value."""

from __future__ import annotations

import math
from typing import Any

#: What a table shows where nothing was measured.
MISSING = "–"


def fmt(value: Any, pattern: str = "{:.3g}", scale: float = 1.0) -> str:
    """A number (times `scale`) formatted with `pattern`; `MISSING` for None, NaN or pd.NA; any
    other value as its text."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "<NA>":
        return MISSING
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    return pattern.format(value * scale if scale != 1.0 else value)
