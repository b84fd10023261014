"""Batch: failures are recorded and the rest go on; Dask with 2 workers equals a serial run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rootscope.batch import FAILURE_COLUMNS, run_tasks
from rootscope.errors import InputError
from rootscope.stages import file_sha1


def plate_statistics(seed: int) -> dict:
    """A toy plate task: deterministic numbers from a seed; seed 3 is a broken plate."""
    if seed == 3:
        raise InputError(f"plate {seed}: scan_007.tif is truncated; re-copy it.")
    image = np.random.default_rng(seed).random((64, 64))
    frames = [{"item": f"frame{k}", "stage": "segment", "error": "InputError", "message": "unreadable"}
              for k in range(seed % 2)]  # odd plates report one bad frame
    return {"mean": float(image.mean()), "roots": int((image > 0.9).sum()), "failures": frames}


PLATES = {f"plate{k}": k for k in range(6)}


def test_a_failing_task_is_recorded_and_the_others_complete(tmp_path):
    csv = tmp_path / "out" / "failures.csv"
    batch = run_tasks(plate_statistics, PLATES, workers=1, progress=False, failures_csv=csv,
                      item_failures=lambda value: value["failures"])
    assert sorted(batch.values) == ["plate0", "plate1", "plate2", "plate4", "plate5"]
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns) == list(FAILURE_COLUMNS)
    broken = table[table.stage == "task"].iloc[0]
    assert (broken.task, broken.error) == ("plate3", "InputError")
    assert broken.message == "plate 3: scan_007.tif is truncated; re-copy it."
    assert sorted(table[table.stage == "segment"].task) == ["plate1", "plate5"]
    assert batch.summary(csv).startswith("6 tasks: 5 done, 1 failed, 2 items failed inside them")


def test_nothing_failed_still_writes_a_header(tmp_path):
    csv = tmp_path / "failures.csv"
    run_tasks(plate_statistics, {"a": 0, "b": 2}, workers=1, progress=False, failures_csv=csv)
    assert csv.read_text().strip() == ",".join(FAILURE_COLUMNS)


def test_dask_with_two_thread_workers_equals_serial():
    serial = run_tasks(plate_statistics, PLATES, workers=1, progress=False)
    parallel = run_tasks(plate_statistics, PLATES, workers=2, processes=False, progress=False)
    assert parallel.where.startswith("LocalCluster, 2 thread")
    assert parallel.values == serial.values
    assert [r.key for r in parallel.results] == list(PLATES)  # submission order is kept
    assert [r.message for r in parallel.results if not r.ok] == [r.message for r in serial.results if not r.ok]


@pytest.mark.slow
def test_dask_with_two_worker_processes_equals_serial(tmp_path):
    files = {}
    for k in range(4):
        files[f"f{k}"] = tmp_path / f"f{k}.bin"
        files[f"f{k}"].write_bytes(bytes(range(k, 250)) * 100)
    files["gone"] = tmp_path / "missing.bin"
    serial = run_tasks(file_sha1, files, workers=1, progress=False)
    parallel = run_tasks(file_sha1, files, workers=2, memory_limit="512MB", progress=False,
                         failures_csv=tmp_path / "failures.csv")
    assert parallel.where == "LocalCluster, 2 process workers"
    assert parallel.values == serial.values and len(serial.values) == 4
    failed = pd.read_csv(tmp_path / "failures.csv")
    assert failed.task.tolist() == ["gone"] and failed.error.tolist() == ["FileNotFoundError"]


def test_a_single_task_runs_here_without_starting_a_cluster():
    batch = run_tasks(plate_statistics, {"only": 2}, workers=2, progress=False)
    assert batch.where == "serial" and batch.values == {"only": plate_statistics(2)}


def test_an_existing_scheduler_is_used_by_address():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        batch = run_tasks(plate_statistics, {"a": 0, "b": 2}, scheduler=cluster.scheduler_address, progress=False)
    assert batch.where == f"Dask scheduler {cluster.scheduler_address}"
    assert batch.values == run_tasks(plate_statistics, {"a": 0, "b": 2}, workers=1, progress=False).values


@pytest.mark.slow
def test_a_worker_that_dies_is_recorded_and_the_others_complete(tmp_path):
    import dask

    tasks = {"fine": "6 * 7", "dies": "__import__('os')._exit(1)"}  # eval: a builtin the workers can import
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        batch = run_tasks(eval, tasks, workers=2, progress=False, failures_csv=tmp_path / "failures.csv")
    assert batch.values == {"fine": 42}
    failed = pd.read_csv(tmp_path / "failures.csv")
    assert failed.task.tolist() == ["dies"] and "worker lost" in failed.message.item()
