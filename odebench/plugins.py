"""Load users' own tasks and methods from a Python file (``--plugin FILE.py``).

A plug-in is a plain module that registers through the same registries as the built-ins
(``odebench.tasks.register``, ``odebench.methods.register``); loading it runs it once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from odebench.errors import InvalidInputError

_loaded: set[Path] = set()


def load_plugin(path: str | Path) -> None:
    """Import `path` once; a missing file or a non-Python file is refused in one line."""
    path = Path(path).resolve()
    if path in _loaded:
        return
    if not path.is_file() or path.suffix != ".py":
        raise InvalidInputError(f"plugin {str(path)!r} is not a Python file")
    name = "odebench_plugin_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _loaded.add(path)


def load_plugins(paths: Iterable[str | Path]) -> None:
    for path in paths:
        load_plugin(path)
