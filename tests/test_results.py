"""The JSONL results store: round trip, headers, refusal, resume, torn lines, a real kill."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

import odebench
from odebench.errors import InvalidInputError
from odebench.jobs.base import SCHEMA_VERSION
from odebench.jobs.gradient import RECORD_FIELDS, Case, Record
from odebench.results import (
    META_COLUMNS,
    ResultsWarning,
    ResultsWriter,
    load,
    load_curves,
    load_ratios,
    load_records,
    load_training,
    merge,
    read_metadata,
)


def meta(run_id: str = "run-a", **extra: object) -> dict[str, object]:
    base = {
        "run_id": run_id,
        "git_commit": "abc1234",
        "git_dirty": False,
        "odebench_version": "0.1.0",
        "torch_version": "2.13.0",
        "hostname": "testhost",
        "started_at": "2024-01-01T00:00:00+00:00",
    }
    return {**base, **extra}


def ok_record(seed: int, **measured: object) -> Record:
    case = Case(task="linear", method="naive", size=4, seed=seed)
    values = {
        "method_backend": "odebench",
        "exact_discrete_gradient": True,
        "n_params": 20,
        "state_size": 4,
        "grad_rel_error": 1.5e-7 * (seed + 1),
        "grad_cosine": 0.999999,
        "at_reference_resolution": False,
        "nfe_forward": 26 + seed,
        "nfe_backward": 52,
        "peak_memory_bytes": 2**40 + seed,
        "time_forward_s": 0.00125,
        "extra": {"note": "hand-made", "steps": [1, 2, 3]},
    }
    values.update(measured)
    return Record(case=case, case_id=case.case_id, status="ok", **values)


def error_record(seed: int) -> Record:
    case = Case(task="spiral", method="adjoint", rtol=1e-3, atol=1e-5, seed=seed, dtype="float32")
    return Record.failed(case, "error", "RuntimeError: boom")


def write(path: Path, records: list[Record], resume: bool = False, run_id: str = "run-a") -> ResultsWriter:
    with ResultsWriter(path, meta(run_id), resume=resume) as writer:
        for record in records:
            writer.write(record)
    return writer


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def seeds(path: Path) -> list[int]:
    return [r.case.seed for r in load_records(path)]


def test_round_trip_keeps_every_field_and_dtype(tmp_path: Path) -> None:
    records = [ok_record(0), error_record(1), ok_record(2, grad_rel_error=0.25)]
    path = tmp_path / "r.jsonl"
    write(path, records)

    assert load_records(path) == records
    frame = load(path)
    assert list(frame.columns[: len(RECORD_FIELDS)]) == list(RECORD_FIELDS)
    assert len(frame) == 3
    for (_, row), record in zip(frame.iterrows(), records):
        for name, value in record.to_dict().items():
            got = row[name]
            if value is None:
                assert got is None or pd.isna(got), name
            else:
                assert got == value, name
    assert frame["nfe_forward"].dtype == "Int64"
    assert frame["peak_memory_bytes"].iloc[0] == 2**40
    assert frame["seed"].dtype == "Int64"
    assert frame["size"].dtype == "Int64"
    assert frame["grad_rel_error"].dtype == "float64"
    assert frame["rtol"].dtype == "float64"
    assert frame["at_reference_resolution"].dtype == "boolean"
    assert frame["status"].tolist() == ["ok", "error", "ok"]
    assert frame["error"].iloc[1] == "RuntimeError: boom"
    assert frame["extra"].iloc[0] == {"note": "hand-made", "steps": [1, 2, 3]}
    assert frame["source"].tolist() == [str(path)] * 3
    assert frame["run_id"].tolist() == ["run-a"] * 3


def test_non_finite_floats_survive(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [ok_record(0, grad_rel_error=math.nan, reference_error=math.inf)])
    (record,) = load_records(path)
    assert math.isnan(record.grad_rel_error) and record.reference_error == math.inf
    frame = load(path)
    assert math.isnan(frame["grad_rel_error"].iloc[0])


def test_header_line_and_metadata_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [ok_record(0)])
    header, record = lines(path)
    assert header == {"type": "header", "schema": SCHEMA_VERSION, "metadata": meta()}
    assert record["type"] == "record" and record["run_id"] == "run-a"
    assert read_metadata(path) == [meta()]
    frame = load(path)
    for key in META_COLUMNS:
        assert frame[f"meta_{key}"].iloc[0] == meta()[key]


def test_empty_file_gives_empty_frame_with_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [])
    frame = load(path)
    assert len(frame) == 0
    assert list(frame.columns[: len(RECORD_FIELDS)]) == list(RECORD_FIELDS)
    for column in ("run_id", "source", *(f"meta_{k}" for k in META_COLUMNS)):
        assert column in frame.columns
    assert frame["nfe_forward"].dtype == "Int64"
    assert load_records(path) == []


def test_metadata_defaults_and_fresh_run_id(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "r.jsonl"  # parent directories are created
    with ResultsWriter(path, None) as writer:
        writer.write(ok_record(0))
    (header,) = read_metadata(path)
    assert header["run_id"] == writer.run_id and len(writer.run_id) == 32
    assert "git_commit" in header and "torch_version" in header


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [ok_record(0)])
    before = path.read_bytes()
    with pytest.raises(InvalidInputError, match="--resume") as info:
        ResultsWriter(path, meta("run-b"))
    message = str(info.value)
    assert "\n" not in message and "--out" in message and str(path) in message
    assert path.read_bytes() == before


def test_resume_appends_header_and_knows_done_ids(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    first = [ok_record(0), error_record(1)]
    write(path, first)
    with ResultsWriter(path, meta("run-b"), resume=True) as writer:
        assert writer.done_ids == {r.case_id for r in first}
        writer.write(ok_record(2))
        assert ok_record(2).case_id in writer.done_ids

    assert [h["run_id"] for h in read_metadata(path)] == ["run-a", "run-b"]
    assert [line["type"] for line in lines(path)] == ["header", "record", "record", "header", "record"]
    frame = load(path)
    assert frame["meta_run_id"].tolist() == ["run-a", "run-a", "run-b"]
    assert frame["run_id"].tolist() == ["run-a", "run-a", "run-b"]


def test_resume_of_missing_file_starts_it(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    with ResultsWriter(path, meta(), resume=True) as writer:
        assert writer.done_ids == set()
        writer.write(ok_record(0))
    assert len(read_metadata(path)) == 1 and seeds(path) == [0]


def test_resume_with_a_reused_run_id_gets_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [ok_record(0)])
    writer = write(path, [ok_record(1)], resume=True)  # same "run-a" metadata again
    assert writer.run_id != "run-a"
    assert load(path)["meta_run_id"].tolist() == ["run-a", writer.run_id]


def test_torn_last_line_tolerated_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [ok_record(0), ok_record(1)])
    with path.open("ab") as f:
        f.write(b'{"type": "record", "run_id": "run-a", "task": "lin')

    with pytest.warns(ResultsWarning, match=":4: skipped an unparsable last line"):
        assert len(load(path)) == 2
    with pytest.warns(ResultsWarning, match="dropped a torn last line"):
        writer = ResultsWriter(path, meta("run-b"), resume=True)
    with writer:
        assert writer.done_ids == {ok_record(0).case_id, ok_record(1).case_id}
        writer.write(ok_record(2))

    assert [line["type"] for line in lines(path)] == ["header", "record", "record", "header", "record"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seeds(path) == [0, 1, 2]


def test_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [ok_record(0), ok_record(1)])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert seeds(path) == [0, 1]
    write(path, [ok_record(2)], resume=True, run_id="run-b")
    assert seeds(path) == [0, 1, 2]
    assert len(lines(path)) == 5


def test_corrupt_middle_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [ok_record(0), ok_record(1), ok_record(2)])
    text = path.read_text().splitlines()
    text[2] = text[2][:40]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(InvalidInputError, match=f"{path}:3: corrupt results line"):
        load(path)
    with pytest.raises(InvalidInputError, match=f"{path}:3"):
        ResultsWriter(path, meta("run-b"), resume=True)


def test_duplicate_case_id_keeps_the_last(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [ok_record(0), ok_record(1)])
    with pytest.warns(ResultsWarning, match="already recorded"):
        write(path, [ok_record(0, nfe_forward=999)], resume=True, run_id="run-b")
    with pytest.warns(ResultsWarning, match="1 record"):
        frame = load(path)
    assert frame["seed"].tolist() == [1, 0]
    assert frame["nfe_forward"].tolist() == [27, 999]
    assert frame["meta_run_id"].tolist() == ["run-a", "run-b"]


def test_load_many_files_and_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write(a, [ok_record(0)])
    write(b, [ok_record(0), ok_record(1)], run_id="run-b")  # same case in two files: two rows
    assert load([a, str(b)])["source"].tolist() == [str(a), str(b), str(b)]
    assert len(load(tmp_path)) == 3
    with pytest.raises(InvalidInputError, match="no results file"):
        load(tmp_path / "missing.jsonl")


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"type": "header", "schema": SCHEMA_VERSION + 1, "metadata": {}}) + "\n")
    with pytest.raises(InvalidInputError, match="schema"):
        load(path)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="flock is POSIX")
def test_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsWriter(path, meta()) as writer:
        with pytest.raises(InvalidInputError, match="another odebench process"):
            ResultsWriter(path, meta("run-b"), resume=True)
        writer.write(ok_record(0))
    assert seeds(path) == [0]


# The child loads odebench.record and odebench.results without the package's __init__, which
# imports torch: seconds of start-up that this test does not need on a 2-core machine.
CHILD = """
import sys, types
package = types.ModuleType("odebench")
package.__path__ = [sys.argv[2]]
sys.modules["odebench"] = package
from odebench.jobs.gradient import Case, Record
from odebench.results import ResultsWriter

with ResultsWriter(sys.argv[1], {"run_id": "child"}) as writer:
    seed = 0
    while True:
        case = Case(task="linear", method="naive", seed=seed)
        writer.write(Record(case=case, case_id=case.case_id, status="ok", extra={"pad": "x" * 3000}))
        seed += 1
"""


def test_sigkill_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "killed.jsonl"
    package = Path(odebench.__file__).parent  # the checkout under test
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(package)], cwd=tmp_path, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not path.exists() or path.read_bytes().count(b"\n") < 1 + 20:
            if child.poll() is not None:
                pytest.fail(f"writer exited early: {child.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("writer wrote too slowly")
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    complete = path.read_bytes().count(b"\n") - 1  # record lines that were fully on disk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResultsWarning)  # the kill may have torn the last line
        done = seeds(path)
        with ResultsWriter(path, meta("resumed"), resume=True) as writer:
            assert writer.done_ids == {r.case_id for r in load_records(path)}
            total = len(done) + 5
            for seed in range(total):
                case = Case(task="linear", method="naive", seed=seed)
                if case.case_id not in writer.done_ids:
                    writer.write(Record(case=case, case_id=case.case_id, status="ok"))
    assert done == list(range(complete)) and complete >= 20

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the repaired file is clean
        assert seeds(path) == list(range(total))
        frame = load(path)
    assert frame["case_id"].is_unique
    assert frame["meta_run_id"].value_counts().to_dict() == {"child": complete, "resumed": 5}
    assert [h["run_id"] for h in read_metadata(path)] == ["child", "resumed"]


def test_records_name_the_host_and_executor_that_measured_them(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsWriter(path, meta()) as writer:
        writer.write(ok_record(0), host="node-7", executor="dask")
        writer.write(ok_record(1))
    assert lines(path)[1]["host"] == "node-7" and lines(path)[1]["executor"] == "dask"
    frame = load(path)
    assert frame.host.tolist() == ["node-7", None] and frame.executor.tolist() == ["dask", None]


def shard_file(path: Path, run_id: str, records: list[Record], **extra: object) -> Path:
    with ResultsWriter(path, meta(run_id, **{"suite": "quick", **extra})) as writer:
        for record in records:
            writer.write(record, host=run_id, executor="local")
    return path


def test_merge_keeps_every_header_and_each_cases_record_of_the_last_file(tmp_path: Path) -> None:
    a = shard_file(tmp_path / "a.jsonl", "a", [ok_record(0), ok_record(1)], shard="1/3")
    b = shard_file(tmp_path / "b.jsonl", "b", [ok_record(2), ok_record(1, nfe_forward=99)], shard="2/3")
    out = tmp_path / "all.jsonl"
    result = merge([a, b], out)
    assert (result.records, result.replaced, result.headers) == (3, 1, 2)
    assert result.missing_shards == ["3/3"]
    assert [m["run_id"] for m in read_metadata(out)] == ["a", "b"]
    frame = load(out).set_index("seed")
    assert sorted(frame.index) == [0, 1, 2]
    assert frame.loc[1, "nfe_forward"] == 99 and frame.loc[1, "meta_run_id"] == "b"
    assert frame.loc[0, "host"] == "a" and frame.loc[2, "host"] == "b"
    # each record stays under the header it was written under
    assert [line["type"] for line in lines(out)] == ["header", "record", "header", "record", "record"]


@pytest.mark.parametrize(
    "other, fragment",
    [
        ({"odebench_version": "0.2.0"}, "different odebench versions (0.1.0@abc1234"),
        ({"git_commit": "fff0000"}, "different odebench versions"),
        ({"suite": "full"}, "different suites (quick"),
    ],
)
def test_merge_refuses_different_versions_or_suites_unless_forced(tmp_path, other, fragment) -> None:
    a = shard_file(tmp_path / "a.jsonl", "a", [ok_record(0)])
    b = shard_file(tmp_path / "b.jsonl", "b", [ok_record(1)], **other)
    with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(")):
        merge([a, b], tmp_path / "all.jsonl")
    assert not (tmp_path / "all.jsonl").exists()
    assert merge([a, b], tmp_path / "all.jsonl", force=True).records == 2


def test_merge_never_overwrites(tmp_path: Path) -> None:
    a = shard_file(tmp_path / "a.jsonl", "a", [ok_record(0)])
    with pytest.raises(InvalidInputError, match="already exists"):
        merge([a], a)
    with pytest.raises(InvalidInputError, match="given twice"):
        merge([a, a], tmp_path / "all.jsonl")


def _valid_line(**changes: object) -> str:
    row = {"type": "record", "run_id": "run-a", **ok_record(0).to_dict()}
    row.update(changes)
    return json.dumps(row)


CRAFTED = [
    ('{"type": "header", "schema": 0, "metadata": {}}', "results schema 0 is not a version"),
    ('{"type": "header", "schema": -7, "metadata": {}}', "results schema -7 is not a version"),
    ('{"type": "header", "schema": true, "metadata": {}}', "results schema True is not a version"),
    ('{"type": "record", "case_id": "zzz", "status": "ok"}', "not a valid record line: "),
    (_valid_line(status="great"), "unknown status 'great'"),
    (_valid_line(grad_rel_error=-1e-3), "grad_rel_error is -0.001, below 0"),
    (_valid_line(peak_memory_bytes=-5), "peak_memory_bytes is -5, below 0"),
    (_valid_line(case_id="0123456789abcdef"), "case_id '0123456789abcdef' is not its fields'"),
    (_valid_line(nfe_forward=1e999), "nfe_forward is inf, not int | None"),
    (_valid_line(nfe_forward=10**30), "nfe_forward is 1000000000000000000000000000000, not int | None"),
    (_valid_line(task=7), "task is 7, not str"),
    (
        '{"type": "record", "case_id": "x", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "nested too deeply",
    ),
]


@pytest.mark.parametrize("line, fragment", CRAFTED, ids=[f for _, f in CRAFTED])
def test_a_line_outside_the_schema_is_refused_with_its_line_number(tmp_path: Path, line, fragment) -> None:
    path = tmp_path / "r.jsonl"
    header = json.dumps({"type": "header", "schema": SCHEMA_VERSION, "metadata": {"run_id": "run-a"}})
    good = _valid_line()
    path.write_text("\n".join([header, line, good]) + "\n")
    for read in (load, lambda p: merge([p], tmp_path / "merged.jsonl")):
        with pytest.raises(InvalidInputError) as refusal:
            read(path)
        assert str(refusal.value).startswith(f"{path}:2: ") and fragment in str(refusal.value)
    assert not (tmp_path / "merged.jsonl").exists()


def test_many_files_are_read_once_per_command_and_each_warns_once(tmp_path: Path, monkeypatch) -> None:
    import odebench.results as results

    paths = []
    for i in range(6):  # more files than one report reads at a time used to keep
        path = tmp_path / f"shard{i}.jsonl"
        write(path, [ok_record(i)])
        with path.open("ab") as f:
            f.write(b'{"type": "rec')
        paths.append(path)
    scanned = []
    real = results._scan
    monkeypatch.setattr(results, "_scan", lambda data, path: scanned.append(path) or real(data, path))
    for path in paths:
        read_metadata(path)  # reads without warning first
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(paths), load_training(paths), load_ratios(paths), load_curves(paths)
    assert scanned == paths  # one reading of each, shared by every reader
    assert sorted(str(w.message).split(":")[0] for w in caught) == sorted(str(p) for p in paths)
