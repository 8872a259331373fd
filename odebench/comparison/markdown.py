"""A `Comparison` as Markdown: a verdict line, the policy, the runs, a table per kind of change."""

from __future__ import annotations

import pandas as pd

from odebench.comparison import Comparison, Delta
from odebench.report.markdown import markdown_table
from odebench.report.text import fmt


def _deltas_table(deltas: tuple[Delta, ...]) -> str:
    rows = [
        (d.label, d.metric, fmt(d.base, "{:.4g}"), fmt(d.new, "{:.4g}"), fmt(d.ratio, "{:.4g}x"), d.case_id)
        for d in deltas
    ]
    return markdown_table(
        pd.DataFrame(rows, columns=["case", "metric", "base", "new", "new/base", "case_id"])
    )


def render(c: Comparison) -> str:
    """The comparison as Markdown."""
    verdict = "**REGRESSED**" if c.regressed else "no regression"
    out = [
        "# odebench compare",
        "",
        f"{verdict}: {c.n_common} cases in both runs; {len(c.regressions)} regressions, "
        f"{len(c.improvements)} improvements, {len(c.changes)} other changes; "
        f"{c.n_only_in_base} cases only in base (missing from new: a regression), "
        f"{c.n_only_in_new} only in new.",
        "",
        c.policy.describe(),
        "",
    ]
    runs = c.runs.fillna("–")
    hosts = runs.loc["hostname"] if "hostname" in runs.index else None
    if hosts is not None and "–" not in (hosts["base"], hosts["new"]) and hosts["base"] != hosts["new"]:
        out += [
            f"> Base and new ran on different hosts ({hosts['base']} vs {hosts['new']}): "
            "memory and time ratios may differ for that reason alone.",
            "",
        ]
    other_reference = [d for d in c.changes if d.metric == "reference_hash"]
    if other_reference:
        out += [
            f"> {len(other_reference)} case(s) were scored against a different reference gradient in "
            "the two runs (reference_hash, under other changes): their gradient errors are not "
            "comparable. The content hash proves a cached reference intact, not right.",
            "",
        ]
    out += ["## Runs", "", markdown_table(runs.rename_axis("").reset_index()), ""]
    for title, deltas in (
        ("Regressions", c.regressions),
        ("Improvements", c.improvements),
        ("Other changes", c.changes),
    ):
        out += [f"## {title} ({len(deltas)})", "", _deltas_table(deltas) if deltas else "(none)", ""]
    for title, refs in (("Only in base", c.only_in_base), ("Only in new", c.only_in_new)):
        table = pd.DataFrame([(r.label, r.case_id) for r in refs], columns=["case", "case_id"])
        out += [f"## {title} ({len(refs)})", "", markdown_table(table) if refs else "(none)", ""]
    return "\n".join(out)
