"""Where a sweep's cases run: in this process, in local workers, or on a Dask cluster.

An executor takes cases and yields each one's `Done` (its record and the host that measured it)
as it completes, in any order; `odebench.harness.sweep.run_sweep` alone writes them to the
results file. Every executor but `InProcess` runs a case through a `Worker` (a template
subprocess that forks a child per case and enforces its timeout), so a segfault, ``os._exit`` or
an out-of-memory kill ends one case as a ``crashed`` record wherever it runs:

* `Local`: N `Worker` templates on this machine, each driven by a thread of this process that
  blocks on its template's pipe (one worker: today's serial sweep);
* `Dask`: each thread of each Dask worker process keeps its own `Worker` (started on its first
  case, closed when the sweep ends), and a Dask task runs one case in it. A Dask worker lost
  anyway (its machine gone, the process killed: ``KilledWorker``) costs its case an attempt: the
  case is submitted again, up to `RETRIES` times, and then recorded as ``crashed`` with that
  reason, so a case that kills its worker every time is not retried forever.

An executor is a context manager: `Dask` starts its cluster (or connects to one) when built and
stops it on `close`; `Local` starts its workers for each `run` and closes them when it ends.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from odebench.errors import InvalidInputError, OdebenchError, describe
from odebench.harness.worker import HOST, Worker, WorkerSpec
from odebench.jobs import kind_of

#: How many times a case whose Dask worker died is submitted again before it is recorded crashed.
RETRIES = 2
#: Scheduler settings of the cluster `Dask` starts itself. odebench counts lost attempts itself
#: (`RETRIES`), so the scheduler gives up on a task at the first worker that dies running it; and
#: a worker holds only the case it runs, so a worker that dies loses only that case.
CLUSTER_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
}
INSTALL_HINT = "pip install 'odebench[distributed]'"
#: Seconds a Dask scheduler has to answer before `Dask` gives up on it (one line, no traceback).
CONNECT_TIMEOUT_S = 20.0


class ExecutorError(OdebenchError):
    """The executor could not run the sweep (a cluster lost, a worker without odebench)."""


@dataclass(frozen=True)
class Done:
    """One finished case: its record and the host that measured it."""

    record: Any
    host: str


class Executor:
    """Runs cases somewhere; `run` yields a `Done` per case as it completes."""

    name = "executor"

    def __init__(
        self,
        *,
        plugins: Sequence[str] = (),
        threads: int = 1,
        cache_dir: str | None = None,
        memory_limit: int | None = None,
    ):
        self.spec = WorkerSpec(
            tuple(str(Path(p).resolve()) for p in plugins), threads, cache_dir, memory_limit
        )

    def describe(self) -> dict[str, Any]:
        """What the results file's header records about where the cases ran."""
        return {"executor": self.name, "cluster_workers": 1}

    def run(self, cases: Sequence, timeout: float | None) -> Iterator[Done]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor holds (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class InProcess(Executor):
    """Runs cases in this process, one after the other: no isolation, no timeout (debugging)."""

    name = "in-process"

    def run(self, cases, timeout):
        for case in cases:
            yield Done(kind_of(case).run(case, cache_dir=self.spec.cache_dir), HOST)


class Local(Executor):
    """`workers` isolated workers on this machine, each running one case at a time."""

    name = "local"

    def __init__(self, workers: int = 1, **spec: Any):
        super().__init__(**spec)
        self.workers = workers

    def describe(self):
        return {"executor": self.name, "cluster_workers": self.workers}

    def run(self, cases, timeout):
        todo: queue.SimpleQueue = queue.SimpleQueue()
        for case in cases:
            todo.put(case)
        done: queue.SimpleQueue = queue.SimpleQueue()
        stopping = threading.Event()

        def serve(worker: Worker) -> None:
            try:
                while not stopping.is_set():
                    try:
                        case = todo.get_nowait()
                    except queue.Empty:
                        return
                    done.put(Done(worker.run(case, timeout), HOST))
            except BaseException as exc:  # handed to the sweep's thread, which raises it
                done.put(exc)

        workers = [self.spec.worker() for _ in range(min(self.workers, len(cases)))]
        threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        try:
            for _ in cases:
                item = done.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:  # also when the sweep stops early: end the cases still running
            stopping.set()
            for worker in workers:
                worker.stop()
            for thread in threads:
                thread.join()
            for worker in workers:
                worker.close()


class Dask(Executor):
    """Cases as tasks on a Dask cluster: the one at `scheduler`, or a `LocalCluster` of
    `workers` single-threaded worker processes started here (and stopped by `close`).

    Args:
        retries: how many times a case whose Dask worker died is submitted again.
        one_per_host: CPU cases run one at a time per host (a cluster-wide semaphore per host
            name), so their times are not disturbed by neighbours; counts, errors and memory do
            not need it.
    """

    name = "dask"

    def __init__(
        self,
        *,
        scheduler: str | None = None,
        workers: int | None = None,
        retries: int = RETRIES,
        one_per_host: bool = False,
        **spec: Any,
    ):
        super().__init__(**spec)
        dask, distributed = _import_dask()
        self.retries = retries
        self.one_per_host = one_per_host
        self._cluster = None
        if scheduler is None:
            with dask.config.set(CLUSTER_CONFIG):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
            scheduler = self._cluster.scheduler_address
        else:
            _check_address(scheduler)
        try:
            self.client = _connect(distributed, self._cluster or scheduler)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ExecutorError(
                f"no answer from the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S:g} s "
                f"({type(exc).__name__}); is it running, and is that its address?"
            ) from None
        self.scheduler = scheduler

    def describe(self):
        nthreads = self.client.nthreads()
        return {
            "executor": self.name,
            "cluster_workers": len(nthreads),
            "cluster_threads": sum(nthreads.values()),
            "scheduler": self.scheduler,
        }

    def run(self, cases, timeout):
        from distributed import KilledWorker, as_completed

        from odebench.harness.dask_worker import Templates, run_task

        self._check_workers(cases)
        token = uuid.uuid4().hex[:12]
        plugin = f"odebench-{token}"
        self.client.register_plugin(Templates(self.spec), name=plugin)
        attempts: dict[str, int] = {}

        def submit(case):
            attempt = attempts[case.case_id] = attempts.get(case.case_id, 0) + 1
            gpu = case.device.startswith("cuda")
            return self.client.submit(
                run_task,
                plugin,
                kind_of(case).name,
                asdict(case),
                timeout,
                self.one_per_host and not gpu,
                key=f"odebench-{case.case_id}-{attempt}-{token}",
                resources={"GPU": 1} if gpu else None,
                pure=False,
            )

        futures = {submit(case): case for case in cases}
        pending = as_completed(futures, loop=self.client.loop)
        try:
            for future in pending:
                case = futures.pop(future)
                kind = kind_of(case)
                try:
                    answer = future.result()
                except KilledWorker as exc:
                    if attempts[case.case_id] <= self.retries:
                        retry = submit(case)
                        futures[retry] = case
                        pending.add(retry)
                        continue
                    worker = exc.last_worker.address
                    message = (
                        f"KilledWorker: the Dask worker running it died, {attempts[case.case_id]} times "
                        f"(retries: {self.retries}); the last was {worker}"
                    )
                    yield Done(kind.failed(case, "crashed", message), _host(worker))
                    continue
                except Exception as exc:
                    raise ExecutorError(
                        f"Dask could not run {case.label()}: {describe(exc)}; rerun with --resume"
                    ) from exc
                finally:
                    future.release()
                yield Done(kind.record(answer["record"]), answer["host"])
        finally:  # also when the sweep stops early: drop what is queued, close the templates
            self.client.cancel(list(futures))
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(plugin)

    def _check_workers(self, cases) -> None:
        """Refuse a sweep that some case could never finish: plug-in files missing on a worker,
        CUDA cases and no worker that declares a GPU resource."""
        missing = self.client.run(_missing, self.spec.plugins)
        for address, paths in missing.items():
            if paths:
                raise ExecutorError(f"Dask worker {address} has no plug-in file {paths[0]}")
        if any(case.device.startswith("cuda") for case in cases):
            info = self.client.scheduler_info(n_workers=-1)["workers"].values()
            if not any(w.get("resources", {}).get("GPU") for w in info):
                raise ExecutorError(
                    "CUDA cases need Dask workers that declare a GPU resource "
                    "(dask worker ADDRESS --resources GPU=1); none does"
                )

    def close(self):
        for resource in ("client", "_cluster"):
            item = getattr(self, resource, None)
            if item is not None:
                item.close()
                setattr(self, resource, None)


@dataclass(frozen=True)
class ExecutorOptions:
    """Where a sweep's cases run, as the command line or the Python API asks for it.

    Made before anything runs: combinations that do not belong together are refused in one line
    (naming the command-line flags); `build` then starts the executor.

    Attributes:
        in_process: run cases in this process (no isolation, no timeout; debugging).
        executor: ``local`` (isolated workers on this machine) or ``dask``.
        workers: local workers (default 1), or the size of a local Dask cluster.
        scheduler: the address of a running Dask cluster's scheduler.
        retries: Dask: submissions of a case whose worker died (default `RETRIES`).
        one_per_host: Dask: one CPU case at a time per host.
        plugins, threads, cache_dir: what every worker loads (`WorkerSpec`).
        memory_limit_mib: what a case may add to its memory before it ends as ``memory``; None
            is, for local workers, 90 % of this machine's memory over the workers (a Dask
            cluster's machines are not this one: no limit there unless given); 0 is no limit.
    """

    in_process: bool = False
    executor: str = "local"
    workers: int | None = None
    scheduler: str | None = None
    retries: int | None = None
    one_per_host: bool = False
    plugins: tuple[str, ...] = ()
    threads: int = 1
    cache_dir: str | None = None
    memory_limit_mib: float | None = None

    def __post_init__(self) -> None:
        if self.memory_limit_mib is not None:
            if not self.memory_limit_mib >= 0:
                raise InvalidInputError(
                    f"--memory-limit must be at least 0 (MiB; 0: none), got {self.memory_limit_mib:g}"
                )
            if self.in_process and self.memory_limit_mib:
                raise InvalidInputError(
                    "--memory-limit needs isolated workers: it cannot limit this process (--in-process)"
                )
        for flag, value, least in (("--threads", self.threads, 1), ("--workers", self.workers, 1)):
            if value is not None and value < least:
                raise InvalidInputError(f"{flag} must be at least {least}, got {value}")
        if self.retries is not None and self.retries < 0:
            raise InvalidInputError(f"--retries must be at least 0, got {self.retries}")
        if self.executor not in ("local", "dask"):
            raise InvalidInputError(f"unknown executor {self.executor!r}; valid: local, dask")
        if self.in_process and (self.executor == "dask" or self.workers is not None):
            raise InvalidInputError(
                "--in-process runs cases in this process: no --executor dask, no --workers"
            )
        if self.executor == "dask":
            if (self.scheduler is None) == (self.workers is None):
                raise InvalidInputError(
                    "--executor dask takes --scheduler ADDRESS (a running cluster) "
                    "or --workers N (a local one)"
                )
            if self.scheduler is not None:
                _import_dask()
                _check_address(self.scheduler)
            return
        for flag, value in (("--scheduler", self.scheduler), ("--retries", self.retries)):
            if value is not None:
                raise InvalidInputError(f"{flag} needs --executor dask")
        if self.one_per_host:
            raise InvalidInputError("--one-per-host needs --executor dask")

    def check_devices(self, devices: Sequence[str], memory: str | None = None) -> None:
        """Refuse a device this machine lacks, or a `memory` backend that cannot measure on one
        (default device: cpu), unless a Dask cluster's workers bring the GPUs."""
        from odebench.jobs.base import check_device
        from odebench.measure.memory import backend_for

        for device in devices or ("cpu",):
            if not (self.executor == "dask" and device.startswith("cuda")):
                check_device(device)
                if memory is not None:
                    backend_for(device, memory)

    def memory_limit(self) -> int | None:
        """Bytes a case may add (None: no limit); see ``memory_limit_mib``."""
        if self.memory_limit_mib is not None:
            return int(self.memory_limit_mib * 2**20) or None
        if self.in_process or self.executor == "dask":
            return None
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(0.9 * total / (self.workers or 1))

    def build(self) -> Executor:
        """The executor (a Dask executor connects to, or starts, its cluster here)."""
        spec = {"plugins": self.plugins, "threads": self.threads, "cache_dir": self.cache_dir}
        if self.in_process:
            return InProcess(**spec)
        spec["memory_limit"] = self.memory_limit()
        if self.executor == "dask":
            retries = RETRIES if self.retries is None else self.retries
            return Dask(
                scheduler=self.scheduler,
                workers=self.workers,
                retries=retries,
                one_per_host=self.one_per_host,
                **spec,
            )
        return Local(self.workers or 1, **spec)


def describe_line(description: dict[str, Any]) -> str:
    """``executor: dask, 2 workers (2 threads) at tcp://...`` from an executor's description."""
    workers = description["cluster_workers"]
    text = f"executor: {description['executor']}, {workers} worker{'s' if workers != 1 else ''}"
    if "scheduler" in description:
        text += f" ({description['cluster_threads']} threads) at {description['scheduler']}"
    return text


def _connect(distributed, target):
    """A client of the cluster at `target` within `CONNECT_TIMEOUT_S`. Dask's own timeout does not
    cover a listener that accepts and never answers, so the connection is made in a thread that
    is given up on (it is a daemon: it does not keep the process alive)."""
    made: dict = {}

    def connect() -> None:
        try:
            made["client"] = distributed.Client(target, set_as_default=False, timeout=CONNECT_TIMEOUT_S)
        except BaseException as exc:  # handed to the caller's thread
            made["error"] = exc

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S + 5)
    if thread.is_alive():
        raise TimeoutError(f"no handshake in {CONNECT_TIMEOUT_S:g} s")
    if "error" in made:
        raise made["error"]
    return made["client"]


def _check_address(address: str) -> None:
    """Refuse a scheduler address Dask could not connect to at all (one line, at once)."""
    from distributed.comm import get_address_host_port

    try:
        get_address_host_port(address)
    except ValueError as exc:
        raise InvalidInputError(
            f"--scheduler {address!r} is not a Dask scheduler address ({exc}); e.g. tcp://host:8786"
        ) from None


def _import_dask():
    try:
        import dask
        import distributed
    except ImportError:
        raise InvalidInputError(f"--executor dask needs the distributed package: {INSTALL_HINT}") from None
    return dask, distributed


def _host(address: str) -> str:
    from distributed.comm import get_address_host

    return get_address_host(address)


def _missing(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if not Path(p).is_file()]


__all__ = [
    "HOST",
    "RETRIES",
    "Dask",
    "Done",
    "Executor",
    "ExecutorError",
    "ExecutorOptions",
    "InProcess",
    "Local",
    "WorkerSpec",
    "describe_line",
]
