"""write_report end to end on the synthetic frame: files, planted findings, gaps, captions."""

from __future__ import annotations

import re

import pytest
from report_synthetic import COMMAND, SOURCES, frame_of, synthetic_records

from odebench.jobs.gradient import Case, Record
from odebench.report import write_report

#: Figures of the synthetic report: three kinds per task (linear, spiral), one memory figure.
FIGURES = [
    f"{kind}-{task}"
    for kind in ("accuracy_vs_cost", "error_vs_tolerance", "time_split")
    for task in ("linear", "spiral")
] + ["memory_scaling"]


def test_writes_markdown_html_and_every_figure_as_png_and_svg(report_dir):
    assert (report_dir / "report.md").is_file()
    assert (report_dir / "report.html").is_file()
    assert sorted(p.stem for p in (report_dir / "figures").glob("*.png")) == sorted(FIGURES)
    for name in FIGURES:
        assert (report_dir / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in (report_dir / "figures" / f"{name}.svg").read_text()[:2000]


def _rows(md: str) -> dict[str, str]:
    return {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}


def test_findings_report_the_planted_numbers_with_n(report_dir):
    rows = _rows((report_dir / "report.md").read_text())
    seminorm = next(v for k, v in rows.items() if k.startswith("The seminorm adjoint"))
    assert "seminorm/adjoint median 0.6 (93.0% CI 0.6 to 0.6); published 0.6, n = 8: holds" in seminorm
    assert seminorm.rstrip(" |").endswith("| 8 | holds")
    aca = rows["aca has a lower gradient error than the adjoint at the same tolerance."]
    assert "aca/adjoint median 0.01 (93.0% CI 0.01 to 0.01), n = 8: holds" in aca
    assert aca.rstrip(" |").endswith("| 8 | holds")
    symplectic = rows["symplectic has a lower gradient error than the adjoint at the same tolerance."]
    assert (
        "symplectic/adjoint median 0.01 (93.0% CI 0.01 to 2), n = 8: no detectable difference" in symplectic
    )
    assert symplectic.rstrip(" |").endswith("| no detectable difference on these tasks")
    memory = next(v for k, v in rows.items() if k.startswith("At large step counts"))
    assert "peak memory, symplectic vs aca (>= 50 forward steps): symplectic/aca median" in memory
    assert memory.rstrip(" |").endswith("| 6 | holds")


def test_the_report_opens_with_winners_per_group(report_dir):
    md = (report_dir / "report.md").read_text()
    assert md.index("## Which method wins") < md.index("## Findings") < md.index("## Accuracy vs cost")
    wins = md.split("## Which method wins")[1].split("## Findings")[0]
    row = _rows(wins)["linear[8] · dopri5 · float64 · cpu"]  # the last such group: rtol 1e-6
    cells = [c.strip() for c in row.strip(" |").split("|")]
    assert cells[:6] == [
        "linear[8] · dopri5 · float64 · cpu",
        "tol=1e-06",
        "1",
        "naive (5.0e-13)",
        "symplectic (0.0289 MiB)",
        "aca, symplectic (a tie)",  # from the same-run ratios, never the cases' own times
    ]
    assert (
        "Over 8 groups (n = 8; ties count for each method): most accurate: naive 8; "
        "least memory: symplectic 8; fastest (same-run ratio): aca 8, symplectic 8" in md
    )


def test_the_report_has_a_speed_section_from_the_ratio_lines(report_dir):
    md = (report_dir / "report.md").read_text()
    speed = md.split("## Speed: same-run time ratios")[1].split("\n## ")[0]
    assert "32 method(s) timed against a baseline in 8 group(s)" in speed
    assert "8 faster, 8 slower, 16 tie" not in speed  # symplectic and aca are each faster than naive
    assert "16 faster, 8 slower, 8 tie" in speed
    adjoint = "| linear[8] · dopri5 · float64 · cpu | tol=0.0001 | adjoint | naive | 1.20x [1.18-1.22] |"
    assert adjoint + " 9 | 1 | slower |" in speed


def test_memory_slopes_and_failures_are_reported(report_dir):
    md = (report_dir / "report.md").read_text()
    failures = md.split("## Failed cases")[1].split("## Warnings")[0]
    assert failures.count("aca@torchdiffeqpack") == 2
    assert "ImportError: TorchDiffEqPack \\| not installed" in failures and "more" not in failures
    assert "timeout" in failures
    assert "No successful record, so not drawn (see the failed cases): aca@torchdiffeqpack." in md
    measured = md.split("## Measurements")[1]
    assert "| linear[8] · dopri5 · float64 · cpu | tol=1e-06 | aca@torchdiffeqpack | 0/1 | –" in measured
    assert "| spiral[32] · dopri5 · float64 · cpu | tol=1e-08 | adjoint | 0/1 | –" in measured


def test_the_command_and_sources_are_named_once_at_the_top_not_in_every_caption(report_dir):
    md = (report_dir / "report.md").read_text()
    captions = [line for line in md.splitlines() if re.match(r"\*(Figure|Table) \d+\.", line)]
    # six tables, the speed table, and the size view: a table per task (two) and the orderings
    assert len(captions) == len(FIGURES) + 7 + 3
    for caption in captions:
        assert COMMAND not in caption
    top = md.split("## ")[0]
    assert f"`{COMMAND}`" in top and f"`{SOURCES[0]}`" in top
    assert md.count(COMMAND) == 1
    html = (report_dir / "report.html").read_text()
    assert html.count(COMMAND) == 1 and html.index(COMMAND) < html.index("<h2>")


def test_html_is_self_contained(report_dir):
    html = (report_dir / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(FIGURES)
    assert "<script" not in html
    assert not re.search(r'(src|href)="https?:', html)


def test_run_metadata_table(report_dir):
    md = (report_dir / "report.md").read_text()
    meta = md.split("## Run metadata")[1]
    assert "| git_commit | abc1234 |" in meta and "| run_id | run-1 |" in meta and "| records | 43 |" in meta


def test_gaps_render_one_size_no_naive_no_symplectic(tmp_path):
    """A run missing methods and sizes still renders, saying what it cannot show."""
    records = [r for r in synthetic_records(("adjoint", "seminorm", "aca")) if r.case.size == 8]
    out = write_report(frame_of(records[:12]), tmp_path, command="cmd", sources=["a.jsonl"])
    md = (tmp_path / "report.md").read_text()
    assert out == tmp_path / "report.html"
    assert "No task was measured at several sizes" in md
    symplectic = [line for line in md.splitlines() if line.startswith("| symplectic has a lower")]
    assert symplectic[0].endswith("no successful run with method symplectic | measured on odebench's tasks "
                                  "and solvers, not on the paper's problems | 0 | cannot test |")  # fmt: skip
    assert "– (no same-run ratio)" in md and "## Speed" not in md  # no ratio lines: no speed verdict
    assert {p.name for p in (tmp_path / "figures").iterdir()} == {
        f"{name}-{task}.{ext}"
        for name in ("accuracy_vs_cost", "error_vs_tolerance", "time_split")
        for task in ("linear", "spiral")
        for ext in ("png", "svg")
    }


@pytest.mark.parametrize("n_records", [0, 3])
def test_no_successful_records_renders_a_report_saying_so(tmp_path, n_records):
    cases = [Case(task="linear", method=m) for m in ("naive", "adjoint", "aca")][:n_records]
    records = [Record.failed(c, "crashed", "worker died") for c in cases]
    out = write_report(frame_of(records), tmp_path, command="cmd", sources=[])
    md = (tmp_path / "report.md").read_text()
    assert out.is_file()
    assert ("No successful records" if n_records else "No records") in md
    assert list((tmp_path / "figures").iterdir()) == []
    if n_records:
        assert md.count("worker died") == 3
