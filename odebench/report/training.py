"""The report's view of training runs: like-for-like groups and their final metrics.

A *group* is one study solved one way (solver and tolerance or step, dtype, device, iterations);
inside it the runs differ in the method and the seed, and seeds are replicates. The published
claims about training are judged by `odebench.report.claims` on pairs of runs that differ in
the compared field alone, the seed included.

Times of training runs come from different processes, where the same work's time moves by up
to 1.7x on this machine class: time ratios are reported over seed pairs with their interval.
"""

from __future__ import annotations

import pandas as pd

from odebench.jobs.base import setting_label
from odebench.methods import BASELINE
from odebench.report.style import method_order
from odebench.report.text import COUNT, ERROR, RATIO, fmt_column

#: What must match for two runs to be compared (the method or the study varies on top).
PAIR_KEYS = ("solver", "rtol", "atol", "step_size", "dtype", "device", "seed", "iterations", "max_seconds")


def prepare_training(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a `load_training` frame with ``setting``, ``group`` and ``pair`` columns."""
    df = frame.copy().reset_index(drop=True)
    for col in ("rtol", "atol", "step_size", "max_seconds"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["setting"] = [
        setting_label(None if pd.isna(h) else h, None if pd.isna(r) else r, None if pd.isna(a) else a)
        for h, r, a in zip(df["step_size"], df["rtol"], df["atol"])
    ]
    df["group"] = [
        f"{study} · {solver} · {setting} · {dtype} · {device} · it={iterations}"
        for study, solver, setting, dtype, device, iterations in zip(
            df["study"], df["solver"], df["setting"], df["dtype"], df["device"], df["iterations"]
        )
    ]
    df["pair"] = ["|".join(repr(v) for v in row) for row in df[list(PAIR_KEYS)].itertuples(index=False)]
    return df


#: Columns of the final-metrics table: field, heading, format (None: one format for the whole
#: column, `column_pattern`).
FINAL = (
    ("heldout", "held-out", None),
    ("parameter_error", "parameter error", ERROR),
    ("final_loss", "final loss", None),
    ("train_time_s", "train time [s]", None),
    ("time_to_target_s", "time to target [s]", None),
    ("nfe_backward_total", "backward NFE", COUNT),
    ("grad_rel_error_median", "gradient error", ERROR),
)


def final_metrics_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per group and method: finished/all runs, medians over seeds, and in brackets the median
    over seeds of the ratio to naive's run with the same seed. Each column reads in one format."""
    rows, medians, suffixes = [], {h: [] for _, h, _ in FINAL}, {h: [] for _, h, _ in FINAL}
    for group, runs in df.groupby("group", sort=False):
        naive = runs[(runs["method"] == BASELINE) & (runs["status"] == "ok")].set_index("pair")
        for method in method_order(runs["method"]):
            mine = runs[runs["method"] == method]
            ok = mine[mine["status"] == "ok"]
            rows.append({"group": group, "method": method, "ok": f"{len(ok)}/{len(mine)}"})
            for column, head, _ in FINAL:
                values = pd.to_numeric(ok[column], errors="coerce").dropna()
                medians[head].append(values.median() if len(values) else None)
                suffix = ""
                if method != BASELINE and len(values) and column in naive.columns:
                    ratios = _ratios(ok.set_index("pair")[column], naive[column])
                    if len(ratios):
                        suffix = " (" + RATIO.format(ratios.median()) + ")"
                suffixes[head].append(suffix)
    table = pd.DataFrame(rows, columns=["group", "method", "ok"])
    for _, head, pattern in FINAL:
        texts = fmt_column(medians[head], pattern)
        table[head] = [text + suffix for text, suffix in zip(texts, suffixes[head])]
    return table


def _ratios(mine: pd.Series, base: pd.Series) -> pd.Series:
    mine, base = pd.to_numeric(mine, errors="coerce"), pd.to_numeric(base, errors="coerce")
    joined = pd.concat([mine.rename("a"), base.rename("b")], axis=1, join="inner").dropna()
    joined = joined[joined["b"] > 0]
    return joined["a"] / joined["b"]


__all__ = ["final_metrics_table", "prepare_training"]
