"""Sweeps: run many cases, record each as it finishes, survive every failure, resume."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odebench.errors import OdebenchError
from odebench.harness.jobs import kind_of
from odebench.harness.worker import Worker
from odebench.plugins import load_plugins
from odebench.record import Case, Record
from odebench.results import ResultsWriter


@dataclass
class SweepResult:
    """What a sweep did: the records it wrote this time and the cases it skipped (resume)."""

    path: Path
    records: list[Record] = field(default_factory=list)
    skipped: int = 0
    wall_time_s: float = 0.0
    interrupted: bool = False

    @property
    def failures(self) -> list[Record]:
        return [r for r in self.records if r.status != "ok"]


class _InProcess:
    """Runs cases in this process (no isolation: for debugging and benchmarks)."""

    def __init__(self, cache_dir=None) -> None:
        self.cache_dir = cache_dir

    def run(self, case, timeout: float | None):
        return kind_of(case).run(case, cache_dir=self.cache_dir)

    def close(self) -> None:
        pass


def run_sweep(
    cases: Sequence[Case],
    out: str | Path,
    *,
    metadata: dict[str, Any],
    resume: bool = False,
    isolate: bool = True,
    timeout: float | None = 300.0,
    threads: int = 1,
    plugins: Sequence[str] = (),
    cache_dir: str | None = None,
    progress: bool = True,
    on_record: Callable[[Record], None] | None = None,
) -> SweepResult:
    """Run `cases` into the JSONL file `out`; every case ends as a Record, whatever happens.

    Ctrl-C stops after the records already written (each is fsynced as it is written), and a
    later run with ``resume=True`` skips exactly those. Cases are resolved first
    (`odebench.cases.resolve`), so a case given with its defaults left open is recognised as the
    resolved case it was recorded as.
    """
    load_plugins(plugins)  # the cases' tasks and methods must resolve here as in the worker
    cases = [_resolved(case) for case in cases]
    result = SweepResult(path=Path(out))
    started = time.perf_counter()
    with ResultsWriter(out, metadata, resume=resume) as writer:
        todo = [c for c in cases if c.case_id not in writer.done_ids]
        result.skipped = len(cases) - len(todo)
        runner = (
            Worker(plugins=plugins, threads=threads, cache_dir=cache_dir)
            if isolate
            else _InProcess(cache_dir)
        )
        bar = _progress_bar(len(todo), progress)
        try:
            for case in todo:
                if bar is not None:
                    bar.set_description_str(case.label()[:60])
                record = runner.run(case, timeout)
                writer.write(record)
                result.records.append(record)
                if on_record is not None:
                    on_record(record)
                if bar is not None:
                    bar.set_postfix_str(f"failed={len(result.failures)}")
                    bar.update(1)
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            runner.close()
            if bar is not None:
                bar.close()
    result.wall_time_s = time.perf_counter() - started
    return result


def _resolved(case):
    try:
        return kind_of(case).resolve(case)
    except OdebenchError:  # the runner records it as an error
        return case


def _progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="case", file=sys.stderr, dynamic_ncols=True, leave=True)
