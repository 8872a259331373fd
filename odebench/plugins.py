"""Load users' own tasks and methods from a Python file (``--plugin FILE.py``).

A plug-in is a plain module that registers through the same registries as the built-ins
(``odebench.tasks.register``, ``odebench.methods.register``); loading it runs it once. A plug-in
that cannot be loaded (no such file, not a ``.py`` file, a syntax error, an exception while it
runs, a name that is already registered) is refused with one line naming the file and the cause.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from odebench.errors import InvalidInputError, OdebenchError, describe

_loaded: set[Path] = set()


def load_plugin(path: str | Path) -> None:
    """Import `path` once; any failure becomes a one-line `InvalidInputError`."""
    given = str(path)
    path = Path(path).resolve()
    if path in _loaded:
        return
    if not path.exists():
        raise InvalidInputError(f"plugin {given!r}: no such file")
    if not path.is_file() or path.suffix != ".py":
        raise InvalidInputError(f"plugin {given!r} is not a Python file (*.py)")
    name = "odebench_plugin_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise InvalidInputError(f"plugin {given!r} line {exc.lineno}: SyntaxError: {exc.msg}") from None
    except (Exception, SystemExit) as exc:  # whatever the user's file raises, it is one line here
        del sys.modules[name]
        what = str(exc) if isinstance(exc, OdebenchError) else describe(exc, 300)
        raise InvalidInputError(f"plugin {given!r} failed to load: {what}") from None
    _loaded.add(path)


def load_plugins(paths: Iterable[str | Path]) -> None:
    for path in paths:
        load_plugin(path)
