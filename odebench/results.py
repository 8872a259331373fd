"""The results store: an append-only JSON Lines file of records, and its readers.

File format (schema 2)
----------------------
UTF-8 text, one JSON object per line, each line ending in ``\\n``. Four kinds of line:

``{"type": "header", "schema": 2, "metadata": {...}}``
    Opens a session of writing. ``metadata`` is the run's metadata
    (`odebench.environment.collect_metadata`: ``run_id``, ``git_commit``, ``git_dirty``,
    ``odebench_version``, ``torch_version``, ``hostname``, ``started_at``, ...). A new file
    starts with one header; every resumed session appends another, so a file holds one or
    more headers.

``{"type": "record", "run_id": "...", "host": "...", "executor": "...", <Record.to_dict()>}``
    One gradient measurement: the `Case` fields, then the `Record` fields (``case_id``,
    ``status``, ``error``, ... ``extra``), flat. ``run_id`` is the one of the header the record
    was written under, which is always the nearest header above it. ``host`` and ``executor``
    (`PLACEMENT`) say which machine measured it and how it was run there (``local``, ``dask``,
    ``in-process``); the header's ``executor``, ``cluster_workers`` (and, on Dask,
    ``cluster_threads`` and ``scheduler``) describe the run, ``shard`` ("I/N") a sharded one.

``{"type": "ratio", "run_id": "...", <RatioRecord.to_dict()>}``
    Same-run time ratios (`odebench.jobs.ratio`): the `RatioCase` fields and, per method,
    the median over interleaved rounds of its time over the baseline's, with quartiles.

``{"type": "training", "run_id": "...", <TrainingRecord.to_dict()>}``
    One training run (`odebench.jobs.training`): the `TrainingCase` fields, its final metrics,
    and its ``curve``, a mapping of each `odebench.jobs.training.CURVE_COLUMNS` name (and each
    column its study observes) to the values per iteration.

Each job kind (`odebench.jobs.KINDS`) names its line type and the rows and columns its records
contribute to a frame; `read` is the one reader.

Records are appended one line at a time, flushed and fsync'ed, so a killed run loses at most
the line it was writing. Rules a reader follows:

- An unparsable *last* line is a write torn by a kill: it is skipped with a warning, and
  resuming truncates it before appending. An unparsable line anywhere else is an error.
- If a ``case_id`` appears more than once in a file, the last record wins (with a warning).
- Blank lines are ignored; so are objects of any other ``type`` (reserved for later versions).
  Record keys a reader does not know are kept as columns.
- Non-finite floats are written as ``NaN``, ``Infinity`` and ``-Infinity``, as Python's
  `json` module does (and reads back).
- A header whose ``schema`` is above `SCHEMA_VERSION` was written by a newer odebench and is
  refused.

`merge` combines files written separately (the shards of a job array, several machines) into
one: every header, each case's last record.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from odebench.errors import InvalidInputError
from odebench.jobs.base import SCHEMA_VERSION

try:  # advisory lock against two writers on one file; absent on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

PathLike = str | os.PathLike[str]

#: Metadata keys that `load` always turns into ``meta_<key>`` columns, present or not.
META_COLUMNS = (
    "run_id",
    "git_commit",
    "git_dirty",
    "odebench_version",
    "torch_version",
    "hostname",
    "started_at",
)

#: Keys of a record line, beside ``run_id``, that say where the record was measured.
PLACEMENT = ("host", "executor")

__all__ = [
    "LINE_TYPES",
    "META_COLUMNS",
    "SCHEMA_VERSION",
    "ResultsWarning",
    "ResultsWriter",
    "load",
    "load_curves",
    "load_ratios",
    "load_records",
    "load_training",
    "merge",
    "read",
    "read_metadata",
    "recorded_tasks",
]


class ResultsWarning(UserWarning):
    """A results file was readable but not clean (torn last line, duplicate case ids)."""


# --------------------------------------------------------------------------------------------
# Writing


class ResultsWriter:
    """Append Records to a JSON Lines results file, one durable line per record.

    Args:
        path: the results file; parent directories are created.
        metadata: the run's metadata for the header (see `collect_metadata`); None collects
            it. A missing ``run_id``, or one already used in the file, is replaced by a new one.
        resume: continue an existing file: repair a torn last line, append a new header, and
            expose the case ids already recorded in `done_ids`. Without it an existing
            non-empty file is refused, so results are never overwritten.
        retry: with `resume`, statuses whose cases count as not done (a timeout or a crash that a
            loaded machine caused): their cases run again, and the new record replaces the old
            one when the file is read; the header names them (``retried_statuses``).

    Use as a context manager; ``write(record)`` appends one record. The file is locked
    against a second writer for as long as the writer is open.
    """

    def __init__(
        self,
        path: PathLike,
        metadata: Mapping[str, Any] | None = None,
        resume: bool = False,
        retry: Sequence[str] = (),
    ):
        self.path = Path(path)
        if self.path.is_dir():
            raise InvalidInputError(f"results path {self.path} is a directory; give a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        # Unbuffered append: each record goes to the OS in one write call, at the end.
        self._file = open(self.path, "a+b", buffering=0)  # noqa: SIM115 (closed in close())
        try:
            self._lock()
            self._file.seek(0)
            data = self._file.read()
            if data and not resume:
                raise InvalidInputError(
                    f"{self.path} already holds results; pass --resume to continue it "
                    "or choose another --out path"
                )
            if data and not _opens_with_header(data):
                raise InvalidInputError(
                    f"{self.path} is not an odebench results file (its first line is not a results "
                    "header), so it cannot be resumed; choose another --out path"
                )
            scan = _scan(data, self.path)
            if scan.torn is not None:
                warnings.warn(
                    f"{self.path}:{scan.torn}: dropped a torn last line "
                    f"({len(data) - scan.end} bytes) before resuming",
                    ResultsWarning,
                    stacklevel=2,
                )
                self._file.truncate(scan.end)
                data = data[: scan.end]
            if data and not data.endswith(b"\n"):
                self._append(b"\n")
            last = {row["case_id"]: row.get("status") for rows in scan.entries.values() for row, _, _ in rows}
            self.done_ids: set[str] = {case_id for case_id, status in last.items() if status not in retry}
            self._retried = set(last) - self.done_ids
            used_run_ids = {h.get("run_id") for h in scan.headers}
            meta = dict(metadata) if metadata is not None else _collect_metadata()
            if retry:
                meta["retried_statuses"] = list(retry)
            if not meta.get("run_id") or meta["run_id"] in used_run_ids:
                meta["run_id"] = uuid.uuid4().hex
            self.metadata: dict[str, Any] = meta
            self.run_id: str = str(meta["run_id"])
            header = {"type": "header", "schema": SCHEMA_VERSION, "metadata": meta}
            self._append(_dumps(header))
            if created:
                _fsync_dir(self.path.parent)
        except BaseException:
            self._file.close()
            raise

    def write(self, record, *, host: str | None = None, executor: str | None = None) -> None:
        """Append one record (a `Record` or a `TrainingRecord`), with the host and executor that
        measured it, and make it durable (flush + fsync) before returning."""
        if self._file.closed:
            raise ValueError(f"ResultsWriter for {self.path} is closed")
        if getattr(record, "LINE", None) not in LINE_TYPES:
            raise TypeError(f"expected a Record or a TrainingRecord, got {type(record).__name__}")
        record.validate()
        if record.case_id in self.done_ids and record.case_id not in self._retried:
            warnings.warn(
                f"{self.path}: case {record.case_id} ({record.case.label()}) is already recorded; "
                "the later record replaces it when the file is read",
                ResultsWarning,
                stacklevel=2,
            )
        placement = {"host": host, "executor": executor}
        self._append(_dumps({"type": record.LINE, "run_id": self.run_id, **placement, **record.to_dict()}))
        self.done_ids.add(record.case_id)

    def close(self) -> None:
        """Release the lock and close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()  # closing the descriptor releases the flock

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _append(self, line: bytes) -> None:
        view = memoryview(line)
        try:
            while view:
                written = self._file.write(view)
                view = view[written:]
            os.fsync(self._file.fileno())
        except OSError as exc:  # a full disk: name the file (the OS does not)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInputError(
                f"{self.path} is being written by another odebench process; "
                "wait for it or choose another --out path"
            ) from None
        except OSError:  # filesystems without flock: go on unlocked
            pass


def _opens_with_header(data: bytes) -> bool:
    """Whether the first non-blank line of a file's bytes is a results header (or, alone in the
    file, the start of one torn by a kill), so resuming it cannot rewrite another kind of file."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return True
    obj, problem = _parse_line(lines[0])
    if problem is None:
        return obj.get("type") == "header"
    return len(lines) == 1 and lines[0].lstrip().startswith(b'{"type": "header"')


def _collect_metadata() -> dict[str, Any]:
    from odebench.environment import collect_metadata

    return collect_metadata()


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, default=_json_default, ensure_ascii=False) + "\n").encode("utf-8")


def _json_default(value: Any) -> Any:
    """Make numpy/torch scalars and arrays, paths and sets JSON-ready; str() anything else."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not possible on every platform
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------------
# Reading


#: The line types that hold records: each job kind's (`odebench.jobs.JobKind.line`).
LINE_TYPES = ("record", "training", "ratio")


@dataclass
class _Scan:
    headers: list[dict[str, Any]]  # header metadata, in file order
    #: line type -> [(row, its header's metadata, line number)]
    entries: dict[str, list[tuple[dict[str, Any], dict[str, Any], int]]]
    torn: int | None  # line number of a torn last line, or None
    end: int  # byte offset where the valid content ends
    #: What a reader is warned of (a torn last line, repeated case ids), once per reading.
    notes: list[str] = field(default_factory=list)
    warned: bool = False


def _scan(data: bytes, path: Path) -> _Scan:
    """Parse a results file's bytes; see the module docstring for the rules."""
    headers: list[dict[str, Any]] = []
    entries: dict[str, list] = {line_type: [] for line_type in LINE_TYPES}
    by_run_id: dict[Any, dict[str, Any]] = {}
    torn: int | None = None
    end = 0
    notes: list[str] = []
    lines = data.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    offset = 0
    for i, raw in enumerate(lines):
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        lineno = i + 1
        obj, problem = _parse_line(raw)
        if problem is not None:
            if i == last:
                torn, end = lineno, start
                notes.append(
                    f"{path}:{lineno}: skipped an unparsable last line ({problem}); "
                    "a run was probably killed while writing it"
                )
                break
            raise InvalidInputError(f"{path}:{lineno}: corrupt results line ({problem})")
        end = min(offset, len(data))
        kind = obj.get("type")
        if kind == "header":
            schema = obj.get("schema")
            if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
                raise InvalidInputError(
                    f"{path}:{lineno}: results schema {schema!r} is not a version (1 and up)"
                )
            if schema > SCHEMA_VERSION:
                raise InvalidInputError(
                    f"{path}:{lineno}: results schema {schema!r} is not readable by this odebench "
                    f"(reads up to {SCHEMA_VERSION}); upgrade odebench"
                )
            meta = obj.get("metadata")
            meta = dict(meta) if isinstance(meta, dict) else {}
            headers.append(meta)
            by_run_id.setdefault(meta.get("run_id"), meta)
        elif kind in entries:
            if not headers:
                raise InvalidInputError(f"{path}:{lineno}: record before any header line")
            if not isinstance(obj.get("case_id"), str):
                raise InvalidInputError(f"{path}:{lineno}: record without a case_id")
            row = {k: v for k, v in obj.items() if k != "type"}
            _check_line(kind, row, path, lineno)
            entries[kind].append((row, by_run_id.get(row.get("run_id"), headers[-1]), lineno))
    return _Scan(headers, entries, torn, end, notes)


def _check_line(line_type: str, row: dict[str, Any], path: Path, lineno: int) -> None:
    """The one schema (`odebench.jobs.base.RecordBase.validate`) of a record line, or a one-line
    refusal with its line number."""
    from odebench.jobs import BY_LINE

    try:
        BY_LINE[line_type].record(row)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{path}:{lineno}: not a valid {line_type} line: {exc}") from None


def _parse_line(raw: bytes) -> tuple[dict[str, Any], None] | tuple[None, str]:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except RecursionError:
        return None, "not valid JSON: nested too deeply"
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return None, 'not a JSON object with a "type"'
    return obj, None


def _read(path: Path, warn: bool = True) -> _Scan:
    """The parsed, validated and deduplicated file, its notes warned of once (with `warn`).

    The readers of one report or comparison (records, training runs, curves, ratios, each over
    every file) share one reading of an unchanged file: readings are kept, least recently used
    first out, up to `_KEEP_BYTES` of files.
    """
    if not path.exists():
        raise InvalidInputError(f"no results file at {path}")
    if path.is_dir():
        raise InvalidInputError(f"{path} is a directory, not a results file")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    scan = _SCANS.pop(key, None)
    if scan is None:
        scan = _scan(path.read_bytes(), path)
        _dedupe(scan, path)
    _SCANS[key] = scan  # the most recently used last
    while len(_SCANS) > 1 and sum(size for _, _, size in _SCANS) > _KEEP_BYTES:
        _SCANS.pop(next(iter(_SCANS)))
    if warn and not scan.warned:
        scan.warned = True
        for note in scan.notes:
            warnings.warn(note, ResultsWarning, stacklevel=3)
    return scan


#: Readings kept, by (path, mtime, size), in the order of their last use.
_SCANS: dict[tuple, _Scan] = {}
#: How many bytes of results files their kept readings may stand for (one is always kept).
_KEEP_BYTES = 256 * 2**20


def _dedupe(scan: _Scan, path: Path) -> None:
    """Keep the last record of each case_id, in the position of that last record."""
    for line_type, rows in scan.entries.items():
        last = {row["case_id"]: index for index, (row, _, _) in enumerate(rows)}
        if len(last) == len(rows):
            continue
        repeats = len(rows) - len(last)
        scan.notes.append(
            f"{path}: {repeats} {line_type} line(s) repeat an earlier case_id; kept the last of each"
        )
        scan.entries[line_type] = [rows[i] for i in sorted(last.values())]


def recorded_tasks(path: PathLike) -> set[str]:
    """The task names that a results file's records (of every line type) name."""
    scan = _read(Path(path), warn=False)
    return {
        row["task"]
        for rows in scan.entries.values()
        for row, _, _ in rows
        if isinstance(row.get("task"), str)
    }


def read_metadata(path: PathLike) -> list[dict[str, Any]]:
    """The metadata of every header in a results file, in file order (one per session)."""
    return _read(Path(path), warn=False).headers


def load_records(path: PathLike, kind: str = "gradient") -> list:
    """The records of one job kind (`odebench.jobs.KINDS`: gradient Records by default) of one
    results file, duplicates resolved (the last of a case_id wins)."""
    from odebench.jobs import KINDS

    kind = KINDS[kind]
    return [kind.record(row) for row, _, _ in _read(Path(path)).entries[kind.line]]  # validated rows


def read(paths: PathLike | Iterable[PathLike], kind: str) -> pd.DataFrame:
    """The records of one job kind (`odebench.jobs.KINDS`) in one or more results files as a
    DataFrame, in the rows and columns the kind contributes (`odebench.jobs.JobKind.frame_rows`,
    ``columns``).

    Args:
        paths: a file, a directory (its ``*.jsonl`` files, sorted), or a list of those.
        kind: ``gradient``, ``training`` or ``ratio``.

    Returns:
        Columns: the kind's columns (nullable dtypes from its case and record fields: ``Int64``,
        ``float64``, ``boolean``; strings and mappings as objects), then record keys this
        version does not know, then ``run_id``, ``host`` and ``executor`` (None in files
        written before they were recorded), then the record's header metadata as
        ``meta_<key>`` (always at least ``meta_`` + each of `META_COLUMNS`), then ``source``
        (the file). Duplicate case ids are resolved per file; the same case in two files
        gives two rows.
    """
    from odebench.jobs import KINDS

    job = KINDS[kind]
    rows: list[dict[str, Any]] = []
    unknown: dict[str, None] = {}
    meta_keys: dict[str, None] = dict.fromkeys(META_COLUMNS)
    known = frozenset(job.columns) | {"run_id", *PLACEMENT, *job.folded}
    for path in _expand(paths):
        for line, meta, _ in _read(path).entries[job.line]:
            for row in job.frame_rows(line):
                for key in row:
                    if key not in known:
                        unknown.setdefault(key)
                meta_keys.update(dict.fromkeys(meta))
                row.update({f"meta_{k}": v for k, v in meta.items()})
                row["source"] = str(path)
                rows.append(row)
    columns = [*job.columns, *unknown, "run_id", *PLACEMENT, *(f"meta_{k}" for k in meta_keys), "source"]
    frame = pd.DataFrame(rows, columns=columns)
    for name, dtype in {**job.dtypes(), **dict.fromkeys(PLACEMENT, "object")}.items():
        frame[name] = _as_dtype(frame[name], dtype)
    return frame


def load(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """The gradient records of one or more results files, one row per record (`read`): the
    columns are every Record field (`odebench.jobs.gradient.RECORD_FIELDS` order) first."""
    return read(paths, "gradient")


def load_training(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """The training runs of one or more results files, one row per run without its curve
    (`read`; the curve is `load_curves`)."""
    return read(paths, "training")


def load_ratios(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """Same-run time ratios (`odebench.jobs.ratio`), one row per case and method (`read`): the
    `RatioCase` fields (``methods`` joined by ``+``), ``case_id``, ``status``, ``error``,
    ``baseline_time_s``, ``method``, ``ratio``, ``ratio_q25``, ``ratio_q75``. A failed case
    gives a row per method of its case, with no ratio, so a comparison meets it on its key."""
    return read(paths, "ratio")


def load_curves(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """The training curves of one or more results files as one long frame, one row per point.

    Columns: the run's case fields (but ``eval_every``), ``case_id``, ``status``, ``source``,
    then every `odebench.jobs.training.CURVE_COLUMNS` name (``iteration``, ``train_loss``,
    ``elapsed_s``, ``nfe_forward``, ``nfe_backward``, ...) and every column a study observes of
    its solver (``accepted_share``, ...); None (NaN) where a point was not measured.
    """
    from odebench.jobs.training import CURVE_COLUMNS, TRAINING_CASE_FIELDS

    keys = [k for k in TRAINING_CASE_FIELDS if k != "eval_every"]
    rows, names = [], dict.fromkeys(CURVE_COLUMNS)
    for path in _expand(paths):
        for row, _, _ in _read(path).entries["training"]:
            curve = row.get("curve") or {}
            names.update(dict.fromkeys(curve))
            n = max((len(v) for v in curve.values()), default=0)
            head = {k: row.get(k) for k in (*keys, "case_id", "status")}
            for i in range(n):
                point = {name: (curve.get(name) or [None] * n)[i] for name in curve}
                rows.append({**head, "source": str(path), **point})
    columns = [*keys, "case_id", "status", "source", *names]
    frame = pd.DataFrame(rows, columns=columns)
    numeric = [c for c in names if c != "iteration"]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce").astype("float64")
    frame["iteration"] = frame["iteration"].astype("Int64")
    return frame


@dataclass
class MergeResult:
    """What `merge` wrote: records kept, records dropped as repeats, headers, missing shards."""

    records: int
    replaced: int
    headers: int
    missing_shards: list[str]


def merge(paths: Iterable[PathLike], out: PathLike, *, force: bool = False) -> MergeResult:
    """Combine results files into a new one: every header, and each case's last record.

    Files are read in the order given, each with the rules of a single file (a torn last line
    skipped, a case's last record kept); a case recorded in several files keeps the record of
    the last file given (earlier ones are counted in ``replaced``). Every header is kept, each
    followed by the kept records written under it, so each record keeps its run metadata.
    Files of different odebench versions (version and git commit) or suites are refused unless
    `force`, as is an existing `out`. ``missing_shards`` names the shards ("I/N") of a sharded
    run whose files were not given. The file is written under a temporary name, fsynced and
    then renamed, so `out` is never left half-written.
    """
    paths = [Path(p) for p in paths]
    out = Path(out)
    if out.exists() and out.stat().st_size:
        raise InvalidInputError(f"{out} already exists; choose another --out path")
    if len({p.resolve() for p in paths}) < len(paths):
        raise InvalidInputError("a results file is given twice")
    scans = [_read(path) for path in paths]
    if not force:
        for key, what in ((_version, "odebench versions"), (_suite, "suites")):
            seen = {key(meta): path for path, scan in zip(paths, scans) for meta in scan.headers}
            if len(seen) > 1:
                found = ", ".join(f"{value} ({path})" for value, path in seen.items())
                raise InvalidInputError(
                    f"results of different {what} ({found}); pass --force to merge them anyway"
                )
    last = {}  # case_id -> (file index, line number) of the record kept
    for index, scan in enumerate(scans):
        for rows in scan.entries.values():
            for row, _, lineno in rows:
                last[row["case_id"]] = (index, lineno)
    total = sum(len(rows) for scan in scans for rows in scan.entries.values())
    lines = []
    for index, scan in enumerate(scans):
        kept = sorted(
            (lineno, line_type, row, meta)
            for line_type, rows in scan.entries.items()
            for row, meta, lineno in rows
            if last[row["case_id"]] == (index, lineno)
        )
        for header in scan.headers:
            lines.append({"type": "header", "schema": SCHEMA_VERSION, "metadata": header})
            lines += [{"type": t, **row} for _, t, row, meta in kept if meta is header]
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines(_dumps(line) for line in lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(out.parent)
    headers = [meta for scan in scans for meta in scan.headers]
    return MergeResult(len(last), total - len(last), len(headers), _missing_shards(headers))


def _version(meta: Mapping[str, Any]) -> str:
    return f"{meta.get('odebench_version')}@{meta.get('git_commit')}"


def _suite(meta: Mapping[str, Any]) -> str:
    return str(meta.get("suite"))


def _missing_shards(headers: list[dict[str, Any]]) -> list[str]:
    """The shards "I/N" of each N seen in `headers` that none of them ran."""
    seen = {tuple(int(x) for x in str(meta["shard"]).split("/")) for meta in headers if meta.get("shard")}
    counts = {count for _, count in seen}
    return [f"{i}/{n}" for n in sorted(counts) for i in range(1, n + 1) if (i, n) not in seen]


def _expand(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            if not found:
                raise InvalidInputError(f"no *.jsonl results files in directory {path}")
            out.extend(found)
        else:
            out.append(path)
    return out


def _as_dtype(column: pd.Series, dtype: str) -> pd.Series:
    if dtype == "object":
        return column.astype(object).where(column.notna(), None)
    if dtype == "float64":
        return pd.to_numeric(column, errors="coerce").astype("float64")
    try:
        return column.astype(dtype)
    except (TypeError, ValueError):  # a value of another type: keep the column as it is
        return column
