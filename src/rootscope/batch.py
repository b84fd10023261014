"""Run many independent tasks (one per plate series) on Dask; a failing task never stops the others.

Where the tasks run:

- ``workers=1`` (and no scheduler): in this process, one after the other (no Dask; easiest to debug).
- default: a ``distributed.LocalCluster`` on this machine, one single-threaded worker process per
  task slot; the number of workers comes from the CPU cores and the memory (at least
  :data:`MEMORY_PER_WORKER` each), every worker is memory-limited (Dask restarts a worker that
  goes above it and the task is recorded as failed).
- ``scheduler="tcp://host:8786"``: an existing Dask cluster. Workers must have rootscope installed
  and see the experiment folder under the same path (a shared file system).

On a SLURM cluster, start the workers with dask-jobqueue (``pip install dask-jobqueue``) and pass
the scheduler address::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=4, processes=4, memory="16GB", walltime="02:00:00",
                           job_extra_directives=["--partition=normal"])
    cluster.scale(jobs=10)                      # 10 SLURM jobs x 4 workers
    print(cluster.scheduler_address)            # keep this Python session open
    # in a shell on a node that sees the same files:
    #   rootscope run experiment/ --scheduler tcp://10.1.2.3:41234

Every failure (a task that raised, or a worker that died) becomes a row of ``failures.csv`` with
the columns :data:`FAILURE_COLUMNS`; tasks may also report failures of their own items (a frame
of a plate) through ``item_failures``. :meth:`BatchResult.summary` gives the final one-line count.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RootscopeError

#: Smallest memory share (bytes) a local worker gets when the number of workers is chosen for you.
MEMORY_PER_WORKER = 4 * 1024**3

#: Columns of ``failures.csv``: the task (plate), the item inside it (a scan, or empty for the whole
#: task), the stage that failed, the error class and the message.
FAILURE_COLUMNS = ("task", "item", "stage", "error", "message")


@dataclass
class TaskResult:
    """Outcome of one task: its ``value`` when ``ok``, else the ``error`` class name and ``message``."""

    key: str
    ok: bool
    value: Any = None
    error: str = ""
    message: str = ""
    traceback: str = ""
    seconds: float = 0.0


@dataclass
class BatchResult:
    """All task outcomes (in submission order), failure rows and where the tasks ran."""

    results: list[TaskResult]
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    where: str = "serial"

    @property
    def values(self) -> dict[str, Any]:
        """Return values of the tasks that succeeded, by key."""
        return {r.key: r.value for r in self.results if r.ok}

    def summary(self, failures_csv: str | os.PathLike | None = None) -> str:
        """One line: how many tasks succeeded or failed, how many items failed, time and place."""
        failed = sum(not r.ok for r in self.results)
        items = len(self.failures) - failed
        text = (f"{len(self.results)} tasks: {len(self.results) - failed} done, {failed} failed"
                f"{f', {items} items failed inside them' if items else ''} "
                f"in {self.seconds:.1f} s ({self.where})")
        if self.failures and failures_csv is not None:
            text += f"; see {failures_csv}"
        return text


def default_workers(memory_per_worker: int = MEMORY_PER_WORKER) -> int:
    """Workers for this machine: one per CPU core, fewer when memory is short (never below 1)."""
    import psutil

    return max(1, min(_cores(), psutil.virtual_memory().total // memory_per_worker))


def _cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_tasks(
    func: Callable[[Any], Any],
    items: Mapping[str, Any],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    memory_limit: str | int | None = None,
    processes: bool = True,
    progress: bool = True,
    failures_csv: str | os.PathLike | None = None,
    item_failures: Callable[[Any], Iterable[Mapping[str, str]]] | None = None,
) -> BatchResult:
    """Apply ``func`` to every value of ``items`` (key -> argument) and collect the outcomes.

    ``func`` must be a module-level function (it is sent to worker processes). Without ``scheduler``:
    never more workers than items, and one worker (or one item: no cluster start-up to pay) runs in
    this process; otherwise a LocalCluster of ``workers`` (default :func:`default_workers`)
    single-threaded workers with ``memory_limit`` each (bytes or "4GB"; default: the machine's memory
    shared equally), thread-based when ``processes`` is False. With ``scheduler``: that cluster.
    ``item_failures(value)`` lists failures inside a successful task (dicts with ``item``, ``stage``,
    ``error``, ``message``). When ``failures_csv`` is given it is always (re)written, with a header
    even when nothing failed.
    """
    start = time.perf_counter()
    keys = list(items)
    if not keys:
        raise RootscopeError("nothing to run: no tasks were given.")
    if scheduler is None:
        workers = min(workers or default_workers(), len(keys))  # an idle worker only costs start-up and memory
    if scheduler is None and workers == 1:
        results = [_run_one(func, key, items[key]) for key in _progress(keys, progress, len(keys))]
        where = "serial"
    else:
        results, where = _run_dask(func, items, workers, scheduler, memory_limit, processes, progress)
    failures = failure_rows(results, item_failures)
    batch = BatchResult(results, failures, time.perf_counter() - start, where)
    if failures_csv is not None:
        write_failures(failures_csv, failures)
    return batch


def _run_one(func: Callable[[Any], Any], key: str, item: Any) -> TaskResult:
    """Call ``func(item)``; an exception becomes a failed :class:`TaskResult` (runs on the worker)."""
    start = time.perf_counter()
    try:
        value = func(item)
    except Exception as exc:  # a task's failure is data, not the end of the batch
        return TaskResult(key, False, error=type(exc).__name__, message=error_message(exc),
                          traceback=traceback.format_exc(), seconds=time.perf_counter() - start)
    return TaskResult(key, True, value=value, seconds=time.perf_counter() - start)


def error_message(exc: BaseException) -> str:
    """The message of a RootscopeError; for anything else (a defect) also its type and where it arose."""
    if isinstance(exc, RootscopeError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _run_dask(func, items, workers, scheduler, memory_limit, processes, progress) -> tuple[list[TaskResult], str]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        extra = {"env": _thread_env(workers)} if processes else {}
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               memory_limit=memory_limit or "auto", dashboard_address=None,
                               silence_logs=logging.ERROR, **extra)
        where = f"LocalCluster, {workers} {'process' if processes else 'thread'} workers"
    else:
        where = f"Dask scheduler {scheduler}"
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            futures = {client.submit(_run_one, func, key, item, pure=False): key for key, item in items.items()}
            done: dict[str, TaskResult] = {}
            for future in _progress(as_completed(futures), progress, len(futures)):
                key = futures[future]
                try:
                    done[key] = future.result()
                except Exception as exc:  # the worker died (memory limit, crash) or the task was lost
                    done[key] = TaskResult(key, False, error=type(exc).__name__,
                                           message=f"worker lost while running this task ({exc}); "
                                           "if it ran out of memory, use fewer --workers or a larger memory_limit")
    finally:
        if cluster is not None:
            cluster.close()
    return [done[key] for key in items], where


def _thread_env(workers: int) -> dict[str, str]:
    """Environment of local worker processes: the cores shared out between them, so that NumPy,
    Numba, OpenCV and torch inside a task do not oversubscribe the machine (Dask's default is 1)."""
    threads = str(max(1, _cores() // workers))
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")
    return dict.fromkeys(names, threads)


def _progress(iterable: Iterable[Any], enabled: bool, total: int) -> Iterable[Any]:
    """Yield from ``iterable`` with a rich progress bar over tasks on stderr (when ``enabled``)."""
    if not enabled:
        yield from iterable
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("plates"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("tasks", total=total)
        for value in iterable:
            yield value
            bar.advance(task)


def failure_rows(results: Iterable[TaskResult],
                 item_failures: Callable[[Any], Iterable[Mapping[str, str]]] | None = None) -> list[dict[str, str]]:
    """Rows of ``failures.csv``: one per failed task, plus the item failures reported by successful ones."""
    rows: list[dict[str, str]] = []
    for result in results:
        if not result.ok:
            rows.append({"task": result.key, "item": "", "stage": "task", "error": result.error,
                         "message": result.message})
        elif item_failures is not None:
            rows.extend({c: str(row.get(c, "")) for c in FAILURE_COLUMNS} | {"task": result.key}
                        for row in item_failures(result.value))
    return rows


def write_failures(path: str | os.PathLike, rows: Iterable[Mapping[str, str]]) -> Path:
    """Write ``failures.csv`` atomically (header only when nothing failed)."""
    import pandas as pd

    from . import io

    table = pd.DataFrame(list(rows), columns=list(FAILURE_COLUMNS))
    return io.write_table(path, table)
