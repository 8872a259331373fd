"""Reports over benchmark results: tables, figures, findings, HTML, and run-to-run comparison.

`write_report(frame, out_dir, command=..., sources=...)` writes report.md, report.html and
figures/; `compare(base, new)` answers what changed between two runs.
"""

from odebench.report.build import write_report
from odebench.report.comparison import CaseRef, Comparison, Delta, compare
from odebench.report.style import method_order, method_styles

__all__ = ["CaseRef", "Comparison", "Delta", "compare", "method_order", "method_styles", "write_report"]
