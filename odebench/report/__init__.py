"""Reports over benchmark results: tables, figures, findings and HTML.

`write_report(frame, out_dir, command=..., sources=...)` writes report.md, report.html and
figures/. What changed between two runs (the regression gate) is `odebench.comparison`.
"""

from odebench.report.build import write_report
from odebench.report.style import method_order, method_styles

__all__ = ["method_order", "method_styles", "write_report"]
