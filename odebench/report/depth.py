"""The report's depth view of ResNet studies: what each check measured against the depth N.

A study whose model has one layer per fixed step (`odebench.studies.base.Study.layer_per_step`)
is a ResNet of depth N = 1/step. Its runs at several steps make a depth sweep: this table gives,
per study, method and N, the median over seeds of every value the study inspects at its checks
(`odebench.studies.base.Setup.inspect`) and of the gradient's error against the ODE reference, at
the first iteration (initialisation) and at the last, and under each study the least-squares
slope of log10(median) against log10(N) with the number of depths it is fitted on: -1 is rate 1/N,
0 a distance that does not fall. Nothing is pooled across studies, methods or iterations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from odebench import studies
from odebench.jobs.training import CURVE_COLUMNS

#: Curve columns a depth table shows besides the study's own: the gradient check's error.
CHECKED = ("grad_rel_error",)
#: Study columns that only serve claims (``layer_step`` = 1/N, to read a distance in units of it).
HELPERS = ("layer_step",)


def depth_table(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame | None:
    """Per ResNet study, method and depth: runs and the median of each checked value at the
    first and the last iteration, then a slope row per study and method; None without such runs."""
    if curves is None or curves.empty or "study" not in curves.columns:
        return None
    ok = set(runs.loc[runs["status"] == "ok", "case_id"])
    resnets = [s for s in curves["study"].unique() if s in studies.names() and studies.get(s).layer_per_step]
    points = curves[curves["study"].isin(resnets) & curves["case_id"].isin(ok)]
    if points.empty:
        return None
    # The study's own columns: neither the loop's curve columns nor the run's identity.
    own = [c for c in points.columns if c not in (*CURVE_COLUMNS, *HELPERS, *runs.columns, "source")]
    values = [*CHECKED, *(c for c in own if points[c].notna().any())]
    points = points.assign(depth=(1 / pd.to_numeric(points["step_size"])).round().astype(int))
    last = points.groupby("case_id")["iteration"].transform("max")
    rows = []
    for (study, method), mine in points.groupby(["study", "method"], sort=False):
        medians = {}
        for when, at in (("start", mine["iteration"] == 0), ("end", mine["iteration"] == last[mine.index])):
            by_depth = mine[at].groupby("depth")
            for column in values:
                medians[f"{column} ({when})"] = by_depth[column].median()
        counts = mine.groupby("depth")["case_id"].nunique()
        table = pd.DataFrame(medians)
        for depth, row in table.iterrows():
            shown = {k: "–" if pd.isna(v) else f"{v:.3g}" for k, v in row.items()}
            rows.append(
                {"study": study, "method": method, "N": str(depth), "runs": str(counts[depth]), **shown}
            )
        rows.append({"study": study, "method": method, "N": "slope", "runs": "", **_slopes(table)})
    return pd.DataFrame(rows)


def _slopes(table: pd.DataFrame) -> dict[str, str]:
    """Least-squares slope of log10 value against log10 N per column, with its number of depths."""
    out = {}
    for column in table.columns:
        series = table[column].dropna()
        series = series[series > 0]
        if len(series) < 3:
            out[column] = f"n = {len(series)}: too few depths"
            continue
        slope = np.polyfit(np.log10(series.index.to_numpy(float)), np.log10(series.to_numpy()), 1)[0]
        out[column] = f"{slope:+.2f} (n = {len(series)})"
    return out


__all__ = ["depth_table"]
