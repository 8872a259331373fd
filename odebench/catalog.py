"""What is registered, as plain entries: the one source of ``odebench list`` and ``list --json``.

Each section (`SECTIONS`) lists its registry's names with their fields (`entries`), and each
entry has one line of text (`line`); methods that cannot be used here are entries too, with the
reason.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

SECTIONS = ("tasks", "studies", "methods", "solvers", "suites")


def entries(section: str) -> list[dict[str, Any]]:
    """One entry per registered name of `section` (one of `SECTIONS`), with its fields."""
    from odebench import methods, solvers, studies, suites, tasks

    if section == "tasks":
        return [
            {
                "name": name,
                "description": task.description,
                "paper": task.paper,
                "size_knob": task.size_knob,
                "default_size": task.default_size,
                "sizes": list(task.sizes),
                "exact_gradient": task._exact_gradient is not None,
            }
            for name, task in tasks.registry.items()
        ]
    if section == "studies":
        names = ("description", "paper", "solver", "rtol", "atol", "step_size", "dtype", "iterations")
        return [
            {"name": name, **{f: getattr(study, f) for f in names}, "claims": len(study.claims)}
            for name, study in studies.registry.items()
        ]
    if section == "methods":
        available = [
            {
                "name": name,
                "available": True,
                "description": method.description,
                "backend_version": method.backend_version,
                "option": None if method.option is None else asdict(method.option),
                **asdict(method.capabilities),
            }
            for name, method in methods.registry.items()
        ]
        missing = [
            {"name": name, "available": False, "reason": reason}
            for name, reason in methods.unavailable().items()
        ]
        return available + missing
    if section == "solvers":
        return [
            {
                "name": name,
                "description": solver.description,
                "adaptive": solver.adaptive,
                "order": solver.order,
            }
            for name, solver in solvers.registry.items()
        ]
    if section == "suites":
        return [
            {
                "name": name,
                "description": suite.description,
                "expected_duration": suite.expected_duration,
                "job": suite.job,
                "repeats": suite.repeats,
            }
            for name, suite in suites.registry.items()
        ]
    raise ValueError(f"unknown section {section!r}; valid: {', '.join(SECTIONS)}")


def line(section: str, entry: dict[str, Any]) -> str:
    """The entry's line in ``odebench list``: its name, description and what matters most."""
    head = f"{entry['name']:26s} "
    if section == "methods" and not entry["available"]:
        return head + f"unavailable: {entry['reason']}"
    detail = {
        "tasks": lambda e: f" [{e['size_knob']}, default {e['default_size']}]",
        "studies": lambda e: f" [{e['paper'].split(',')[0]}]",
        "methods": lambda e: f" ({e['backend']} {e['backend_version']})" + _option(e["option"], e["name"]),
        "solvers": lambda e: "",
        "suites": lambda e: f" ({e['expected_duration']})",
    }[section]
    return head + entry["description"] + detail(entry)


def _option(option: dict[str, Any] | None, name: str) -> str:
    if option is None:
        return ""
    return f"; {name}:<{option['name']}>, default {option['default']}"


__all__ = ["SECTIONS", "entries", "line"]
