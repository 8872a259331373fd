"""Fixtures: the synthetic frame (see `report_synthetic`) and one report written from it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from report_synthetic import COMMAND, SOURCES, frame_of, ratio_frame_of, synthetic_ratios, synthetic_records

from odebench.report import write_report


@pytest.fixture(scope="session")
def synthetic_frame() -> pd.DataFrame:
    return frame_of(synthetic_records())


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory, synthetic_frame) -> Path:
    out = tmp_path_factory.mktemp("report")
    ratios = ratio_frame_of(synthetic_ratios())
    write_report(synthetic_frame, out, command=COMMAND, sources=SOURCES, ratios=ratios)
    return out
