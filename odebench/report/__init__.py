"""Reports over benchmark results: tables, figures, findings, HTML, and run-to-run comparison.

`write_report(frame, out_dir, command=..., sources=...)` writes report.md, report.html and
figures/; `compare(base, new, policy)` answers what changed between two runs, and
`render_comparison` writes that answer as Markdown.
"""

from odebench.report.build import write_report
from odebench.report.comparison import DEFAULT_POLICY, CaseRef, Comparison, Delta, Policy, compare
from odebench.report.comparison_markdown import render as render_comparison
from odebench.report.style import method_order, method_styles

__all__ = [
    "DEFAULT_POLICY",
    "CaseRef",
    "Comparison",
    "Delta",
    "Policy",
    "compare",
    "method_order",
    "method_styles",
    "render_comparison",
    "write_report",
]
