"""What a sweep prints: the summary table's units, formats and notes, counts, progress lines."""

from __future__ import annotations

import io

from odebench.harness.summary import STAR_NOTE, counted, summary_table
from odebench.harness.sweep import LineProgress, _progress_bar
from odebench.jobs.gradient import Case, Record


def _record(method="naive", *, star=False, **measured) -> Record:
    case = Case(task="linear", method=method, size=2, rtol=1e-5, atol=1e-7, repeats=1)
    values = {
        "grad_rel_error": 8.79e-9,
        "at_reference_resolution": star,
        "nfe_forward": 24050,
        "nfe_backward": 0,
        "vjp_backward": 20506,
        "time_forward_s": 0.01,
        "time_backward_s": 0.02,
        "wall_time_s": 0.45,
        "peak_memory_bytes": 3 * 2**20,
    }
    return Record(case, case.case_id, "ok", **(values | measured))


def test_memory_is_in_mib_and_counts_are_whole_numbers():
    text = summary_table([_record(), _record("aca", peak_memory_bytes=2**19, nfe_backward=20506)])
    header, naive, aca = text.splitlines()[:3]
    assert "mem_MiB" in header and "KiB" not in text
    assert naive.split()[-1] == "3.00" and aca.split()[-1] == "0.50"
    assert "24050" in naive and "20506" in naive and "e+04" not in text
    assert "8.8e-09" in naive


def test_the_star_footnote_only_when_a_row_has_a_star():
    assert STAR_NOTE not in summary_table([_record()])
    starred = summary_table([_record(), _record("aca", star=True)])
    assert STAR_NOTE in starred and "8.8e-09*" in starred


def test_the_cost_of_measuring_is_said_plainly():
    text = summary_table([_record()])
    assert "harness cost" not in text
    assert "each case took a median 15x the time of one forward+backward" in text  # 0.45 / 0.03
    assert (
        "the counted run (which measures peak memory and warms up), the exactness check and the timed" in text
    )


def test_counts_are_plural_only_above_one_and_training_calls_its_jobs_runs():
    assert counted(1, "run") == "1 case" and counted(2, "run") == "2 cases"
    assert counted(1, "run", done=True) == "1 case run" and counted(0, "run", done=True) == "0 cases run"
    assert counted(1, "train") == "1 run" and counted(15, "train", done=True) == "15 runs done"


def test_off_a_terminal_progress_is_one_whole_line_per_finished_case():
    stream = io.StringIO()  # not a terminal: a log file, a pipe, CI
    progress = _progress_bar(2, True, stream=stream)
    assert isinstance(progress, LineProgress)
    long = _record(method="symplectic")
    progress.finished(_record(), 0)
    progress.finished(Record.failed(long.case, "timeout", "timed out"), 1)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        f"[1/2] ok: {_record().case.label()} (0.5 s)",
        f"[2/2] timeout: {long.case.label()}; 1 failed so far",
    ]
    assert _progress_bar(2, False, stream=stream) is None


def test_on_a_terminal_progress_is_a_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    progress = _progress_bar(3, True, "run", stream=Terminal())
    assert not isinstance(progress, LineProgress)
    progress.finished(_record(), 0)
    progress.close()
