"""Case ids are what committed baselines and --resume join on: every id a suite produced when this
file was written (tests/data/suite_case_ids.json) is still produced, left-out cases included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odebench import suites

RECORDED = json.loads((Path(__file__).parent / "data" / "suite_case_ids.json").read_text())


@pytest.mark.parametrize("suite", sorted(RECORDED))
def test_every_recorded_case_id_is_still_produced(suite):
    expansion = suites.plan(suite)
    ids = {c.case_id for c in expansion.cases} | {c.case_id for c, _ in expansion.left_out}
    missing = sorted(set(RECORDED[suite]) - ids)
    assert not missing, f"{len(missing)} of {len(RECORDED[suite])} ids of suite {suite} changed"
