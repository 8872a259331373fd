"""Run metadata: which code, which libraries, which machine, when.

`collect_metadata` is called once per run; the results store writes its dict as the header of
the results file, so every record can be traced to a commit, a torch version and a host.
Nothing here may fail a run: every probe that can go wrong answers None instead.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import uuid
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

#: Distribution names whose installed versions are recorded (key: ``<name>_version``).
_DISTRIBUTIONS = {
    "torchdiffeq": "torchdiffeq",
    "torchdiffeqpack": "TorchDiffEqPack",
    "numpy": "numpy",
    "pandas": "pandas",
}

#: /proc/cpuinfo keys that name the CPU (x86, then ARM and others).
_CPUINFO_KEYS = ("model name", "Hardware", "Processor", "cpu model")

_GIT_TIMEOUT_S = 2.0


def collect_metadata(device: str = "cpu", command: str | None = None) -> dict[str, Any]:
    """Describe this run: code version, library versions, hardware, start time.

    Args:
        device: the torch device the run measures on ("cpu", "cuda", "cuda:1"); the GPU model
            is recorded only for a CUDA device that is available.
        command: the command line that started the run, recorded as given.

    Returns:
        A flat JSON-ready dict. Keys: ``run_id`` (uuid4 hex), ``started_at`` (UTC, ISO 8601),
        ``command``, ``odebench_version``, ``git_commit`` (short sha of the checkout the
        package was imported from, None outside one), ``git_dirty`` (tracked files modified),
        ``python_version``, ``platform``, ``hostname``, ``cpu_model``, ``cpu_count``,
        ``device``, ``gpu_model``, ``torch_version``, ``torch_cuda_version``,
        ``torch_num_threads``, and ``<name>_version`` for torchdiffeq, torchdiffeqpack,
        numpy and pandas (None when not installed).
    """
    import torch

    commit, dirty = git_info(Path(__file__).resolve().parent)
    meta: dict[str, Any] = {
        "run_id": uuid.uuid4().hex,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "odebench_version": _odebench_version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "gpu_model": _gpu_model(torch, device),
        "torch_version": str(torch.__version__),
        "torch_cuda_version": torch.version.cuda,
        "torch_num_threads": torch.get_num_threads(),
    }
    for key, dist in _DISTRIBUTIONS.items():
        meta[f"{key}_version"] = _dist_version(dist)
    return meta


def git_info(directory: Path) -> tuple[str | None, bool | None]:
    """Short commit sha and dirty flag of the git checkout that tracks `directory`.

    Returns ``(None, None)`` when git is missing, `directory` is not inside a checkout, or
    `directory` is inside one without being tracked by it (a virtualenv inside a repository).
    The dirty flag ignores untracked files, as ``git describe --dirty`` does.
    """
    git = shutil.which("git")
    if git is None:
        return None, None
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take the index lock of a repository that
    # someone else is committing to at the same time.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def run(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(
                [git, "-C", str(directory), *args],
                capture_output=True,
                text=True,
                timeout=_GIT_TIMEOUT_S,
                env=env,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None

    tracked = run("ls-files", "--error-unmatch", "--", ".")
    if tracked is None or tracked.returncode != 0:
        return None, None
    head = run("rev-parse", "--short", "HEAD")
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return None, None
    status = run("status", "--porcelain", "--untracked-files=no")
    dirty = None if status is None or status.returncode != 0 else bool(status.stdout.strip())
    return head.stdout.strip(), dirty


def cpu_model() -> str | None:
    """The CPU's marketing name: /proc/cpuinfo on Linux, sysctl on macOS, else `platform`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in _CPUINFO_KEYS and value.strip():
                    return value.strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=_GIT_TIMEOUT_S,
                check=False,
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or None


def _gpu_model(torch: Any, device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    try:
        if not torch.cuda.is_available():
            return None
        return str(torch.cuda.get_device_name(torch.device(device)))
    except Exception:  # a broken driver must not fail the run
        return None


def _odebench_version() -> str | None:
    import odebench  # lazy: this module is imported while the package initialises

    version = getattr(odebench, "__version__", None)
    return str(version) if version is not None else _dist_version("odebench")


def _dist_version(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None
    except Exception:  # a malformed installation must not fail the run
        return None
