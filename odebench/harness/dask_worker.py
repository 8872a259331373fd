"""What runs inside a Dask worker process for `odebench.harness.executors.Dask`.

`Templates` is a worker plug-in that keeps one `Worker` template per thread of the Dask worker
(a worker started with ``--nthreads 8`` runs eight cases at a time, each in its own template);
`run_task` is the task: one case in the calling thread's template.
"""

from __future__ import annotations

import contextlib
import threading

from distributed import Semaphore, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from odebench.harness.worker import HOST, Worker, WorkerSpec
from odebench.jobs import KINDS


class Templates(WorkerPlugin):
    """One `Worker` per thread of this Dask worker, each started on its first case; all closed
    when the sweep unregisters the plug-in or the Dask worker stops."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec

    def setup(self, worker) -> None:
        self._workers: dict[int, Worker] = {}
        self._lock = threading.Lock()

    def worker(self) -> Worker:
        with self._lock:
            thread = threading.get_ident()
            if thread not in self._workers:
                self._workers[thread] = self.spec.worker()
            return self._workers[thread]

    def teardown(self, worker) -> None:
        with self._lock:
            for template in self._workers.values():
                template.stop()
                template.close()
            self._workers.clear()


def run_task(plugin: str, kind: str, fields: dict, timeout: float | None, exclusive: bool) -> dict:
    """One case in this thread's template: its record as a dict, and this host's name.

    `exclusive` holds the host's semaphore while the case runs, so no other exclusive case runs
    on this host meanwhile (whichever sweep submitted it).
    """
    templates = get_worker().plugins[plugin]
    case = KINDS[kind].case(fields)
    with Semaphore(name=f"odebench-cpu-{HOST}") if exclusive else contextlib.nullcontext():
        record = templates.worker().run(case, timeout)
    return {"record": record.to_dict(), "host": HOST}
