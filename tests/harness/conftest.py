"""The fault plug-in, registered in this process for every module here."""

from __future__ import annotations

from pathlib import Path

import pytest

from odebench import methods, plugins, tasks
from odebench.plugins import load_plugins
from tests.harness.faults import PLUGIN


@pytest.fixture(scope="module", autouse=True)
def faults_registered():
    """The fault plug-in's tasks and methods, registered here as in the worker, then removed so
    tests that parametrise over the registries never meet a method that hangs."""
    load_plugins([PLUGIN])
    yield
    for registry in (tasks.registry, methods.registry):
        for name in [n for n in registry.names() if n.startswith("fault_")]:
            registry.unregister(name)
    plugins._loaded.discard(Path(PLUGIN).resolve())
