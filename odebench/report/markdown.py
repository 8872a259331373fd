"""A report `Document` as GitHub-flavoured Markdown, and Markdown tables from frames."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from odebench.report.document import Document, Figure, Table


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table of `frame`'s cells as text (pipes escaped, line breaks flattened)."""
    header = [_cell(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(doc: Document, base: Path) -> str:
    """The document as Markdown; figure links are relative to `base` (the report's folder)."""
    out = [f"# {doc.title}", "", doc.provenance, ""]
    n_fig = n_tab = 0
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Figure):
                n_fig += 1
                png, svg = (Path(os.path.relpath(p, base)).as_posix() for p in (block.png, block.svg))
                out += [
                    f"![{block.title}]({png})",
                    "",
                    f"*Figure {n_fig}. {block.title}.* {block.caption} ([SVG]({svg}))",
                    "",
                ]
            elif isinstance(block, Table):
                n_tab += 1
                out += [
                    f"*Table {n_tab}. {block.title}.* {block.caption}",
                    "",
                    markdown_table(block.frame) if len(block.frame) else "(none)",
                    "",
                ]
            else:
                out += [block, ""]
    return "\n".join(out)


def _cell(value: object) -> str:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
