"""Run metadata: keys, types, git commit inside the repository, speed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch

import odebench
from odebench.environment import collect_metadata, cpu_model, git_info

REPO = Path(__file__).resolve().parents[1]

KEYS = {
    "run_id",
    "started_at",
    "command",
    "odebench_version",
    "git_commit",
    "git_dirty",
    "python_version",
    "platform",
    "hostname",
    "cpu_model",
    "cpu_count",
    "device",
    "gpu_model",
    "torch_version",
    "torch_cuda_version",
    "torch_num_threads",
    "torchdiffeq_version",
    "torchdiffeqpack_version",
    "numpy_version",
    "pandas_version",
}


def test_metadata_keys_and_values() -> None:
    meta = collect_metadata(command="odebench run --quick")
    assert set(meta) == KEYS
    json.dumps(meta)  # JSON-ready
    assert len(meta["run_id"]) == 32 and int(meta["run_id"], 16) >= 0
    assert meta["run_id"] != collect_metadata()["run_id"]
    started = datetime.fromisoformat(meta["started_at"])
    assert started.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - started) < timedelta(minutes=1)
    assert meta["command"] == "odebench run --quick"
    assert meta["odebench_version"] == odebench.__version__
    assert meta["torch_version"] == torch.__version__
    assert meta["torch_num_threads"] == torch.get_num_threads()
    assert meta["device"] == "cpu" and meta["gpu_model"] is None
    assert meta["numpy_version"] and meta["pandas_version"]
    assert meta["hostname"] and meta["python_version"] and meta["platform"]
    assert meta["cpu_model"] == cpu_model() and meta["cpu_model"]


def test_git_commit_inside_the_repository() -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    head = subprocess.run(
        [git, "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    if head.returncode != 0 or not (REPO / "odebench" / "__init__.py").samefile(odebench.__file__):
        pytest.skip("not running from a git checkout of odebench")
    meta = collect_metadata()
    assert meta["git_commit"] == head.stdout.strip()
    assert isinstance(meta["git_dirty"], bool)


def test_git_info_outside_a_checkout_is_none(tmp_path: Path) -> None:
    assert git_info(tmp_path) == (None, None)
    assert git_info(tmp_path / "does-not-exist") == (None, None)


def test_cuda_device_without_cuda_is_not_an_error() -> None:
    meta = collect_metadata(device="cuda:0")
    if torch.cuda.is_available():
        assert meta["gpu_model"] == torch.cuda.get_device_name(0)
    else:
        assert meta["gpu_model"] is None


def test_collect_metadata_is_fast() -> None:
    collect_metadata()  # warm caches (importlib.metadata, git)
    start = time.perf_counter()
    collect_metadata()
    assert time.perf_counter() - start < 0.5
