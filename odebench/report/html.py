"""A report `Document` as one self-contained HTML page: no scripts, figures embedded as PNG."""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

import pandas as pd

from odebench.report.document import Document, Figure, Table

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; text-align: left; margin: .4em 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: .4em 0; font-size: .85em; }
p.none { color: #666; font-style: italic; }
.provenance { color: #444; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tbody tr:nth-child(even) { background: #fafafa; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def to_html(doc: Document, base: Path) -> str:
    """The document as HTML; the SVG links are relative to `base` (the report's folder)."""
    body = [f"<h1>{html.escape(doc.title)}</h1>", f'<p class="provenance">{inline(doc.provenance)}</p>']
    n_fig = n_tab = 0
    for section in doc.sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Figure):
                n_fig += 1
                body.append(_figure(block, n_fig, base))
            elif isinstance(block, Table):
                n_tab += 1
                body.append(_table(block, n_tab))
            else:
                body.append(f"<p>{inline(block)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{html.escape(doc.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def inline(text: str) -> str:
    """Escaped text with ```code``` and ``**bold**`` turned into tags."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _figure(fig: Figure, number: int, base: Path) -> str:
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    svg = html.escape(Path(os.path.relpath(fig.svg, base)).as_posix())
    return (
        f'<figure>\n<img src="data:image/png;base64,{data}" alt="{html.escape(fig.title)}">\n'
        f"<figcaption><strong>Figure {number}. {html.escape(fig.title)}.</strong> "
        f'{inline(fig.caption)} (<a href="{svg}">SVG</a>)</figcaption>\n</figure>'
    )


def _table(table: Table, number: int) -> str:
    """A table under its caption, both in one block as wide as the page: the caption is not a
    ``<caption>``, which a narrow (or empty) table would squeeze to its own width."""
    caption = (
        f"<figcaption><strong>Table {number}. {html.escape(table.title)}.</strong> "
        f"{inline(table.caption)}</figcaption>"
    )
    if not len(table.frame):
        return f'<figure class="table">\n{caption}\n<p class="none">(none)</p>\n</figure>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>"
        for row in table.frame.itertuples(index=False)
    )
    return (
        f'<figure class="table">\n{caption}\n<div class="table-wrap"><table><thead><tr>{head}</tr>'
        f"</thead><tbody>{rows}</tbody></table></div>\n</figure>"
    )


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
