"""A `Comparison` as JSON-ready data (``odebench compare --json``): the verdict, the counts, the
policy and every delta and case behind them; non-finite numbers as strings, so it stays strict JSON."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from odebench.comparison import Comparison


def as_json(c: Comparison, exit_code: int) -> dict[str, Any]:
    """The comparison as plain data, with the exit code the command returns."""

    def value(v: Any) -> Any:  # non-finite numbers as strings: the output stays strict JSON
        return str(v) if isinstance(v, float) and not math.isfinite(v) else v

    def deltas(items) -> list[dict[str, Any]]:
        keys = ("case_id", "label", "metric", "base", "new")
        return [{**{k: value(getattr(d, k)) for k in keys}, "ratio": value(d.ratio)} for d in items]

    def cases(refs) -> list[dict[str, str]]:
        return [{"case_id": r.case_id, "label": r.label} for r in refs]

    return {
        "verdict": "regressed" if c.regressed else "no regression",
        "exit_code": exit_code,
        "counts": {
            "in_both": c.n_common,
            "regressions": len(c.regressions),
            "improvements": len(c.improvements),
            "changes": len(c.changes),
            "only_in_base": c.n_only_in_base,
            "only_in_new": c.n_only_in_new,
        },
        "policy": {k: value(v) for k, v in asdict(c.policy).items()},
        "regressions": deltas(c.regressions),
        "improvements": deltas(c.improvements),
        "changes": deltas(c.changes),
        "only_in_base": cases(c.only_in_base),
        "only_in_new": cases(c.only_in_new),
    }


__all__ = ["as_json"]
