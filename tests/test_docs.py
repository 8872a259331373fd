"""The documentation's code runs: its ```python blocks, in order, as cells of one notebook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import odebench
from odebench import suites, usermodel
from odebench.methods import CORE

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end > 0 else None]


def run_blocks(blocks: list[str], name: str) -> dict:
    """Execute `blocks` in one namespace named ``__main__``, as a notebook runs its cells."""
    namespace: dict = {"__name__": "__main__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{name}, python block {i + 1}", "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in a fresh folder; compare_methods defaults to the core methods and one timed repeat
    (the peers have tests of their own): every line of the page still runs as written."""
    monkeypatch.chdir(tmp_path)
    measure = usermodel.compare_methods
    quick = {"methods": CORE, "repeats": 1}
    monkeypatch.setattr(odebench, "compare_methods", lambda *a, **kw: measure(*a, **{**quick, **kw}))
    return tmp_path


@pytest.fixture
def quick_ratios(monkeypatch):
    """Ratio cases at their least rounds: the pages' speed verdicts are not what is tested."""
    monkeypatch.setattr(suites, "RATIO_BUDGET_S", 0.0)


def test_your_model_page_runs(in_tmp, quick_ratios):
    blocks = python_blocks((ROOT / "docs" / "your_model.md").read_text())
    assert len(blocks) == 8
    namespace = run_blocks(blocks, "docs/your_model.md")
    table = namespace["result"].table
    assert set(table["status"]) == {"ok"}
    assert set(table["rtol"]) == {1e-3, 1e-6} and set(table["dtype"]) == {"float32"}
    assert namespace["choice"].pick is not None
    assert (in_tmp / "my_model_report" / "report.html").is_file()
    (checked,) = namespace["checked"].records
    assert (checked.reference_kind, checked.reference_error) == ("user", 1e-10)


def test_readme_worked_example_runs(in_tmp, quick_ratios):
    blocks = python_blocks(section((ROOT / "README.md").read_text(), "Your model, in one call"))
    assert len(blocks) == 1
    namespace = run_blocks(blocks, "README.md")
    assert set(namespace["result"].table["status"]) == {"ok"}
    assert (in_tmp / "my_model.jsonl").is_file()
