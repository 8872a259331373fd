"""Shared fixtures: devices to run on, and small fields with known gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from odebench import methods, plugins, tasks
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


#: The fault-injection plug-in: tasks and methods that fail in every way a sweep meets.
FAULTS_PLUGIN = Path(__file__).parent / "harness" / "faults_plugin.py"


@pytest.fixture(scope="module")
def faults_registered():
    """The fault plug-in's tasks and methods, registered for one test module (as in the worker),
    then removed so tests that parametrise over the registries never meet a method that hangs."""
    plugins.load_plugins([FAULTS_PLUGIN])
    yield
    for registry in (tasks.registry, methods.registry):
        for name in [n for n in registry.names() if n.startswith("fault_")]:
            registry.unregister(name)
    plugins._loaded.discard(FAULTS_PLUGIN.resolve())
