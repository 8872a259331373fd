"""The report a person reads: captions, tick labels, number formats, naive's backward cost."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from odebench.report.document import Document, Section, Table
from odebench.report.html import to_html
from odebench.report.plots import common
from odebench.report.plots.common import backward_evals
from odebench.report.style import figure_style, method_styles
from odebench.report.text import column_pattern, fmt_column
from odebench.report.training import final_metrics_table


def test_an_empty_tables_caption_is_a_page_wide_block_not_a_caption_squeezed_to_the_table(tmp_path):
    empty = Table("Records whose status is not ok", pd.DataFrame(columns=["case", "error"]), "Cases " * 30)
    narrow = Table("Runs", pd.DataFrame({"key": ["records"], "value": ["3"]}), "The metadata " * 20)
    doc = Document("r", "odebench report x.jsonl", ("x.jsonl",), (Section("S", (empty, narrow)),))
    html = to_html(doc, tmp_path)
    assert "<caption" not in html  # a <caption> is as wide as its table: one word per line
    block = re.search(
        r'<figure class="table">\n<figcaption>.*?</figcaption>\n<p class="none">\(none\)</p>', html
    )
    assert block and "Table 1. Records whose status is not ok." in block.group(0)
    assert "<figcaption><strong>Table 2. Runs.</strong> The metadata" in html
    assert html.index("<figcaption><strong>Table 2") < html.index("<table>")


@pytest.mark.parametrize(
    "lo, hi",
    [(0.055, 0.065), (2.735e-7, 2.76e-7), (0.09, 13.0), (40, 1500), (1e-13, 1e-3), (0.5, 0.5000001), (3, 33)],
)
def test_log_axes_label_two_to_six_round_ticks_without_offset_or_overlap(lo, hi):
    with figure_style():
        fig, axes = common.grid(1, 1)
        ax = axes[0, 0]
        ax.plot([lo, hi], [lo, hi])
        common.log_axes(ax)
        fig.canvas.draw()
        for axis, (low, high), most in ((ax.xaxis, ax.get_xlim(), 5), (ax.yaxis, ax.get_ylim(), 6)):
            assert high / low >= common.MIN_LOG_SPAN * (1 - 1e-9)  # a near-constant axis gets room
            labels = [
                t
                for t in axis.get_ticklabels()
                if t.get_text() and low <= t.get_position()[0 if axis is ax.xaxis else 1] <= high
            ]
            assert 2 <= len(labels) <= most, [t.get_text() for t in labels]
            assert axis.get_offset_text().get_text() == ""
            boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: (b.x0, b.y0))
            for a, b in itertools.pairwise(boxes):
                assert not a.overlaps(b), [t.get_text() for t in labels]
        texts = [t.get_text() for t in ax.xaxis.get_ticklabels()]
        assert len(set(texts)) == len(texts)


def test_log_ticks_are_round_and_cover_two_decades_with_more_than_their_ends():
    assert common.log_ticks(0.09, 13.0, 6) == [0.1, 0.3, 1.0, 3.0, 10.0]
    assert common.log_ticks(0.03, 0.12, 5) == [0.03, 0.05, 0.07, 0.1]
    assert len(common.log_ticks(1e-14, 1e-2, 6)) <= 6
    assert common.tick_labels([0.05, 0.1, 0.2]) == ["0.05", "0.1", "0.2"]
    assert common.tick_labels([2e-7, 3e-7]) == ["$2\\times10^{-7}$", "$3\\times10^{-7}$"]


def test_count_axes_get_whole_number_ticks_even_on_a_narrow_range():
    with figure_style():
        fig, axes = common.grid(1, 1)
        ax = axes[0, 0]
        ax.plot([0, 1, 2], [33.2, 33.5, 33.8])
        common.integer_ticks(ax)
        fig.canvas.draw()
        low, high = ax.get_ylim()
        ticks = [t for t in ax.get_yticks() if low <= t <= high]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


def test_naive_has_a_positive_backward_cost_its_vjps():
    frame = pd.DataFrame(
        {"nfe_backward": [0, 78, None, None], "vjp_backward": [43, 78, 5, None]}, dtype="Float64"
    )
    assert backward_evals(frame).tolist()[:3] == [43.0, 156.0, 5.0]
    assert np.isnan(backward_evals(frame).iloc[3])


def test_naive_is_drawn_on_every_backward_cost_panel(report_dir):
    md = (report_dir / "report.md").read_text()
    assert "error vs backward NFE" not in md  # the panel is error vs backward NFE + VJPs
    assert "naive (backward" not in md  # not dropped from a log axis for a zero backward NFE
    assert "Naive solves nothing backwards (backward NFE 0)" in md


def test_every_method_has_its_own_colour_and_dash():
    styles = method_styles(["naive", "adjoint", "seminorm", "aca", "symplectic", "peer@x", "peer@y"])
    assert len({s.colour for s in styles.values()}) == len(styles)
    core = [styles[m].linestyle for m in ("naive", "adjoint", "seminorm", "aca", "symplectic")]
    assert len({str(s) for s in core}) == len(core)


def test_a_column_reads_in_one_format():
    assert fmt_column([4.0]) == ["4.00"]  # a final loss is never "4"
    assert fmt_column([4.0, 12.3, None]) == ["4.0", "12.3", "–"]
    assert fmt_column([20506, 24050]) == ["20506", "24050"]  # never "2.405e+04" beside 20506
    assert fmt_column([8.79e-9, 1.2e-3]) == ["8.79e-09", "1.20e-03"]
    assert column_pattern([0.0166, 56.9]) == "{:.2e}"  # too wide for fixed decimals
    assert fmt_column([1536 * 1024, 3 * 2**20], scale=1 / 2**20) == ["1.50", "3.00"]


def test_final_metrics_columns_read_in_one_format():
    runs = pd.DataFrame(
        [
            {"group": "g", "method": m, "status": "ok", "pair": str(seed), "heldout": h, "parameter_error": p,
             "final_loss": loss, "train_time_s": t, "time_to_target_s": None, "nfe_backward_total": n,
             "grad_rel_error_median": e}
            for seed, (m, h, p, loss, t, n, e) in enumerate([
                ("naive", 0.0166, 8.79e-9, 4.0, 3.5, 0, 1.5e-4),
                ("adjoint", 0.0166, 8.8e-9, 12.3, 26.93, 36204, 3.4e-4),
            ])
        ]
    )  # fmt: skip
    table = final_metrics_table(runs.assign(pair="0"))
    assert list(table["final loss"]) == ["4.0", "12.3 (3.1x)"]
    assert list(table["parameter error"]) == ["8.8e-09", "8.8e-09 (1x)"]
    assert list(table["backward NFE"]) == ["0", "36204"]
    assert list(table["train time [s]"]) == ["3.5", "26.9 (7.7x)"]
