"""`write_report`: a results frame in, report.md, report.html and figures/ out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from odebench.report import plots
from odebench.report.data import ok_rows, prepare
from odebench.report.document import Block, Document, Section, Table
from odebench.report.findings import check_all, findings_table
from odebench.report.html import to_html
from odebench.report.markdown import to_markdown
from odebench.report.style import method_order, method_styles
from odebench.report.tables import failures_table, medians_table, metadata_table

#: Figure files a report may write (stale ones are removed first).
FIGURE_NAMES = ("accuracy_vs_cost", "error_vs_tolerance", "memory_scaling", "time_split")


def write_report(frame: pd.DataFrame, out_dir: Path, *, command: str, sources: list[str]) -> Path:
    """Write ``report.md``, ``report.html`` and ``figures/*.png|svg`` into `out_dir`.

    Args:
        frame: one row per Record (`odebench.record.RECORD_FIELDS` plus ``meta_*`` and
            ``source`` columns), failed records included.
        out_dir: the folder to write into (created if needed).
        command: the command that regenerates the report, printed in every caption.
        sources: the results files the frame was loaded from, printed in every caption.

    Returns:
        The path of ``report.html``.
    """
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    for name in FIGURE_NAMES:
        for suffix in (".png", ".svg"):
            (figures_dir / f"{name}{suffix}").unlink(missing_ok=True)
    doc = build_document(frame, figures_dir, command=command, sources=sources)
    (out_dir / "report.md").write_text(to_markdown(doc, out_dir), encoding="utf-8")
    html_path = out_dir / "report.html"
    html_path.write_text(to_html(doc, out_dir), encoding="utf-8")
    return html_path


def build_document(frame: pd.DataFrame, figures_dir: Path, *, command: str, sources: list[str]) -> Document:
    """The report's sections (drawing its figures into `figures_dir`)."""
    df = prepare(frame)
    ok = ok_rows(df)
    styles = method_styles(df["method"])
    sections = [Section("Summary", tuple(_summary(df, ok)))]
    if not ok.empty:
        findings = findings_table(check_all(ok))
        sections += [
            Section("Findings", (Table("Published claims checked on this run", findings, _FINDINGS_NOTE),)),
            Section("Accuracy vs cost", (plots.accuracy_vs_cost(df, ok, styles, figures_dir),)),
            Section("Memory scaling", (_memory(df, ok, styles, figures_dir),)),
            Section("Time split", (_time(df, ok, styles, figures_dir),)),
            Section("Gradient error vs tolerance", (plots.error_vs_tolerance(df, ok, styles, figures_dir),)),
            Section("Medians per task and method", (Table("Medians", medians_table(df, ok), _MEDIANS_NOTE),)),
        ]
    sections += [
        Section("Failed cases", (Table("Records whose status is not ok", failures_table(df), _FAILED_NOTE),)),
        Section("Run metadata", (Table("Runs and results files", metadata_table(df), _META_NOTE),)),
    ]
    return Document("odebench report", command, tuple(str(s) for s in sources), tuple(sections))


def _summary(df: pd.DataFrame, ok: pd.DataFrame) -> list[Block]:
    if df.empty:
        return ["**No records**: the results files hold no measurements, so there is nothing to report."]
    n_failed = int((df["status"] != "ok").sum())
    text = (
        f"{len(df)} records: {int((df['status'] == 'ok').sum())} ok, {n_failed} not ok; "
        f"{df['task'].nunique()} task(s) ({', '.join(sorted(set(df['task'])))}), "
        f"methods {', '.join(method_order(df['method']))}."
    )
    blocks: list[Block] = [text]
    if ok.empty:
        blocks.append(
            "**No successful records**: every case failed, so there are no figures, findings or "
            "medians; see the failed cases below."
        )
        return blocks
    never = method_order(set(df["method"]) - set(ok["method"]))
    if never:
        blocks.append(
            f"**No successful record** (listed under failed cases, missing from figures): {', '.join(never)}."
        )
    if len(ok) < df.loc[df["status"] == "ok", "case_id"].size:
        blocks.append("Cases recorded more than once are shown as the median of their measurements.")
    return blocks


def _memory(df, ok, styles, figures_dir) -> Block:
    figure = plots.memory_scaling(df, ok, styles, figures_dir)
    if figure is None:
        counts = ok.groupby("task")["size"].nunique(dropna=False)
        sizes = ", ".join(f"{task}: {n}" for task, n in counts.items())
        return (
            "No task was measured at several sizes, so there is no memory scaling to show "
            f"(sizes per task: {sizes})."
        )
    return figure


def _time(df, ok, styles, figures_dir) -> Block:
    figure = plots.time_split(df, ok, styles, figures_dir)
    if figure is None:
        return (
            "No successful, timed naive case to compare with, so there are no time ratios to show; "
            "the medians table below has the absolute times."
        )
    return figure


_FINDINGS_NOTE = (
    "Each claim from the literature recomputed on this run's successful records, comparing cases "
    "that differ only in method. 'cannot test' means the methods or matching cases are missing."
)
_MEDIANS_NOTE = (
    "Medians over each task's successful cases (all sizes and tolerances); 'ok' counts successful "
    "of all records. In brackets: the median over cases naive also solved in the same context of "
    "the method's value divided by naive's (for the gradient error only where naive's error is above "
    "the reference's resolution). '–': not measured or no successful case."
)
_FAILED_NOTE = (
    "Cases that did not complete, with their status and error message; they are missing from the figures."
)
_META_NOTE = "The metadata stored with the records (meta_* columns): one column per results file and run."
