"""Sweeps: run many cases, record each as it finishes, survive every failure, resume."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odebench.errors import OdebenchError
from odebench.harness.executors import Executor, Local
from odebench.jobs import kind_of
from odebench.jobs.base import CaseBase, RecordBase
from odebench.plugins import load_plugins
from odebench.results import ResultsWriter

if TYPE_CHECKING:
    from odebench.suites import Expansion


@dataclass
class SweepResult:
    """What a sweep did: the records it wrote this time and the cases it skipped (resume)."""

    path: Path
    records: list[RecordBase] = field(default_factory=list)
    skipped: int = 0
    wall_time_s: float = 0.0
    interrupted: bool = False

    @property
    def failures(self) -> list[RecordBase]:
        return [r for r in self.records if r.status != "ok"]


def run_sweep(
    cases: Sequence[CaseBase],
    out: str | Path,
    *,
    metadata: dict[str, Any],
    executor: Executor | None = None,
    resume: bool = False,
    retry: Sequence[str] = (),
    timeout: float | None = 300.0,
    progress: bool = True,
    on_record: Callable[[RecordBase], None] | None = None,
) -> SweepResult:
    """Run `cases` into the JSONL file `out`; every case ends as a Record, whatever happens.

    `executor` says where the cases run (default: one isolated `Local` worker, serially); its
    plug-ins are loaded here too. This function alone writes the file: each record as its case
    completes, with the host that measured it and the executor's name, under a header that adds
    the executor's description to `metadata`. Ctrl-C stops after the records already written
    (each is fsynced as it is written), and a later run with ``resume=True`` skips exactly those,
    whatever executor wrote them, except the cases whose status is in `retry`, which run again.
    Cases are resolved first (their kind's `resolve`), so a case
    given with its defaults left open is recognised as the resolved case it was recorded as.
    """
    executor = executor or Local()
    load_plugins(executor.spec.plugins)  # the cases' tasks and methods must resolve here too
    cases = [_resolved(case) for case in cases]
    result = SweepResult(path=Path(out))
    started = time.perf_counter()
    with ResultsWriter(out, {**metadata, **executor.describe()}, resume=resume, retry=retry) as writer:
        todo = [c for c in cases if c.case_id not in writer.done_ids]
        result.skipped = len(cases) - len(todo)
        bar = _progress_bar(len(todo), progress, _noun(todo))
        done = executor.run(todo, timeout)
        try:
            for outcome in done:
                record = outcome.record
                writer.write(record, host=outcome.host, executor=executor.name)
                result.records.append(record)
                if on_record is not None:
                    on_record(record)
                if bar is not None:
                    bar.finished(record, len(result.failures))
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            done.close()  # stops what is still running
            if bar is not None:
                bar.close()
    result.wall_time_s = time.perf_counter() - started
    return result


def prepare(
    expansion: Expansion,
    *,
    shard_of: tuple[int, int] | None = None,
    resume: bool = False,
    retry: Sequence[str] = (),
    timeout: float | None = 300.0,
) -> list:
    """The cases a run measures, before anything starts: the plan's (`odebench.suites.Expansion`,
    refused in one line when none can run), the `shard_of` them asked for; and the run's own
    settings refused in one line where no run could mean them."""
    from odebench.errors import InvalidInputError

    if timeout is not None and not timeout > 0:
        raise InvalidInputError(f"--timeout must be positive, got {timeout:g}")
    if retry and not resume:
        raise InvalidInputError("--retry-failed continues a results file: give --resume --out FILE too")
    cases = expansion.runnable()
    return cases if shard_of is None else shard(cases, *shard_of)


def run_plan(
    cases: Sequence[CaseBase],
    out: str | Path,
    *,
    executor: Executor,
    metadata: dict[str, Any],
    shard_of: tuple[int, int] | None = None,
    resume: bool = False,
    retry: Sequence[str] = (),
    timeout: float | None = 300.0,
    progress: bool = True,
) -> SweepResult:
    """The one orchestrator of `odebench run`, `odebench train` and `compare_methods`: the cases
    `prepare` gave, run by `executor` into `out` (`run_sweep`; `retry` with `resume` runs again
    the recorded cases whose status it names), the shard named in the metadata."""
    if shard_of is not None:
        metadata = {**metadata, "shard": "/".join(map(str, shard_of))}
    return run_sweep(
        cases,
        out,
        metadata=metadata,
        executor=executor,
        resume=resume,
        retry=retry,
        timeout=timeout,
        progress=progress,
    )


def shard(cases: Sequence, index: int, count: int) -> list:
    """The `index`-th (1-based) of `count` disjoint shards of `cases`, in their order.

    The shards take every `count`-th case in order of case id, so they depend only on the set of
    (resolved) cases: together they hold every case once, whatever runs each shard and in which
    order the cases were given.
    """
    cases = [_resolved(case) for case in cases]
    ids = sorted({case.case_id for case in cases})
    chosen = set(ids[index - 1 :: count])
    return [case for case in cases if case.case_id in chosen]


def _resolved(case):
    try:
        return kind_of(case).resolve(case)
    except OdebenchError:  # the runner records it as an error
        return case


def _noun(cases: Sequence[CaseBase]) -> str:
    """What the cases are called in messages: training ``run``s, else ``case``s."""
    return "run" if cases and all(case.KIND == "training" for case in cases) else "case"


def _progress_bar(total: int, enabled: bool, noun: str = "case", stream=None):
    """How a sweep reports progress on `stream` (stderr): a bar on a terminal; elsewhere (a log
    file, a pipe, CI) one line per finished case, since a bar would write hundreds of updates."""
    if not enabled or total == 0:
        return None
    stream = stream if stream is not None else sys.stderr
    if not _is_terminal(stream):
        return LineProgress(total, stream)
    return _Bar(total, noun, stream)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class LineProgress:
    """One line per finished case: ``[3/15] ok: <the case's whole label> (12.3 s)``."""

    def __init__(self, total: int, stream) -> None:
        self.total, self.done, self.stream = total, 0, stream

    def finished(self, record: RecordBase, failed: int) -> None:
        self.done += 1
        wall = getattr(record, "wall_time_s", None)
        took = f" ({wall:.1f} s)" if isinstance(wall, (int, float)) and wall > 0 else ""
        so_far = f"; {failed} failed so far" if failed else ""
        print(
            f"[{self.done}/{self.total}] {record.status}: {record.case.label()}{took}{so_far}",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        pass


class _Bar:
    """tqdm's bar on a terminal, named after the last finished case."""

    def __init__(self, total: int, noun: str, stream) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit=noun, file=stream, dynamic_ncols=True, leave=True)

    def finished(self, record: RecordBase, failed: int) -> None:
        self.bar.set_description_str(record.case.label()[:60])
        self.bar.set_postfix_str(f"failed={failed}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
