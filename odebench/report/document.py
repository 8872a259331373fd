"""What a report is made of, independent of how it is written out (Markdown or HTML).

Paragraphs are strings with a little inline Markdown (``**bold**`` and ```code```); tables are
frames of already formatted strings; figures are files on disk. The document's provenance (the
command and the results files) is said once, under its title; captions do not repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Figure:
    """A figure written as PNG and SVG, with its caption."""

    title: str
    caption: str
    png: Path
    svg: Path

    def _repr_png_(self) -> bytes:
        """The PNG, so that a notebook cell returning a figure shows it."""
        return self.png.read_bytes()


@dataclass(frozen=True)
class Table:
    """A table of formatted cells, with its caption."""

    title: str
    frame: pd.DataFrame
    caption: str


Block = str | Figure | Table


@dataclass(frozen=True)
class Section:
    """A titled run of paragraphs, figures and tables, in order."""

    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    """A whole report and where its numbers came from."""

    title: str
    command: str
    sources: tuple[str, ...]
    sections: tuple[Section, ...]

    @property
    def provenance(self) -> str:
        """One sentence, printed once under the title, naming the command and the results files
        behind every number of the document."""
        files = ", ".join(f"`{s}`" for s in self.sources) or "(no results files named)"
        return f"Every table and figure below was produced by `{self.command}` from {files}."
