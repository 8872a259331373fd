"""Shared fixtures: devices to run on, and small fields with known gradients."""

from __future__ import annotations

import pytest
import torch

from odebench.references import Reference, reference_gradient
from tests.gradients import smallest

torch.set_num_threads(1)

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ],
    ),
]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One reference cache for the whole run, so each reference is computed once."""
    return tmp_path_factory.mktemp("references")


class _References(dict):
    """Each task's reference at its smallest size, seed 0, computed on first use."""

    def __init__(self, cache_dir) -> None:
        super().__init__()
        self.cache_dir = cache_dir

    def __missing__(self, name: str) -> Reference:
        self[name] = reference_gradient(name, smallest(name), 0, cache_dir=self.cache_dir)
        return self[name]


@pytest.fixture(scope="session")
def refs(cache_dir) -> dict[str, Reference]:
    return _References(cache_dir)
