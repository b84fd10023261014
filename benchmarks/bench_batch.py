"""Batch and resumability figures: frames per minute serial vs 2 Dask workers (processes and
threads), where the Dask run's time goes, the cost of an up-to-date rerun, and the cost of the
manifest's file check.

Run: ``.venv/bin/python benchmarks/bench_batch.py [--plates 4] [--frames 2] [--size 768] [--workers 2]``;
``--size 2000`` for plates where the work per scan (~11 CPU s) dwarfs a worker's start-up (~2 CPU s:
0.4 s to start, 1.3 s of imports; torch is not imported unless a U-Net or branch model is configured).
A synthetic experiment is written to a temporary folder with a pixel classifier trained on one
extra synthetic frame; every figure is timed in this script on the same input. The baselines:
a serial run (``--workers 1``) for the cluster, the first run for the rerun, and hashing the whole
file on every check for the manifest check. A one-scan run first warms this process up (imports,
numba start-up), so the serial and thread runs are timed warm; worker processes start cold, as
they do in use. CPU seconds count this process and its finished children (the Dask worker
processes), so they show the work a run costs whatever else the machine is doing; wall timings on
a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rootscope import io, synth
from rootscope.batch import run_tasks
from rootscope.pipeline import run_experiment
from rootscope.pixel import PixelClassifier
from rootscope.stages import file_sha1, same_file


def make_experiment(root: Path, plates: int, frames: int, size: int) -> None:
    """Synthetic scans under root/raw and a pixel classifier in root/models."""
    cfg = dataclasses.replace(synth.SynthConfig(), size=size, max_shift_px=0.05 * size)
    synth.write_experiment(root, plates=plates, frames=frames, seed=0, config=cfg)
    shutil.rmtree(root / "truth")
    frame = synth.make_series(1, seed=99, config=cfg)[0]
    labels = (frame.mask + 1).astype(np.uint8)
    labels[np.random.default_rng(0).random(labels.shape) > 0.2] = 0
    model = PixelClassifier(seed=0).fit([frame.image], [labels], ["background", "root", "seed", "shoot"])
    model.save(root / "models" / "rf.model")
    io.write_text(root / "rootscope.toml", '[models]\npixel = "models/rf.model"\n')


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    value = func(*args, **kwargs)
    return value, time.perf_counter() - start


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended (worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measured(func, *args, **kwargs):
    """``func``'s value, wall seconds and CPU seconds (see :func:`cpu_seconds`)."""
    cpu = cpu_seconds()
    value, wall = timed(func, *args, **kwargs)
    return value, wall, cpu_seconds() - cpu


def check_costs(folder: Path, size_mb: int = 64, repeats: int = 5) -> tuple[float, float, float]:
    """Seconds per check of an unchanged file: stat-first (ours), whole-file SHA-1, first+last MB SHA-1."""
    path = folder / "scan.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 255, size_mb << 20, dtype=np.uint8).tobytes())
    record = {"size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns, "sha1": file_sha1(path)}
    _, ours = timed(lambda: [same_file(path, record) for _ in range(repeats)])
    _, full = timed(lambda: [file_sha1(path) for _ in range(repeats)])

    def ends() -> None:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
            handle.seek(-(1 << 20), os.SEEK_END)
            _ = head + handle.read(1 << 20)

    _, partial = timed(lambda: [ends() for _ in range(repeats)])
    return ours / repeats, full / repeats, partial / repeats


def _difference(a: Path, b: Path) -> str:
    """'same' when two tables are byte-equal, else how they differ."""
    if a.read_bytes() == b.read_bytes():
        return "same"
    ta, tb = pd.read_csv(a), pd.read_csv(b)
    if ta.shape != tb.shape:
        return f"shapes {ta.shape} vs {tb.shape}"
    numeric = ta.select_dtypes("number").columns
    return f"max |difference| {np.nanmax(np.abs(ta[numeric].to_numpy() - tb[numeric].to_numpy())):.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=4)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--workers", type=int, default=2, help="Dask workers to compare with serial")
    args = parser.parse_args()
    k = args.workers
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        make_experiment(base, args.plates, args.frames, args.size)
        # untimed: this process's first run pays its imports and numba start-up (worker processes pay theirs)
        warm = Path(tmp) / "warm-up"
        make_experiment(warm, 1, 1, args.size)
        run_experiment(warm, workers=1, progress=False)
        runs = {"serial": {"workers": 1}, "dask": {"workers": k}, "threads": {"workers": k, "processes": False}}
        results, wall, cpu = {}, {}, {}
        for name, options in runs.items():
            shutil.copytree(base, Path(tmp) / name)
            results[name], wall[name], cpu[name] = measured(run_experiment, Path(tmp) / name, progress=False, **options)
        rerun, t_rerun = timed(run_experiment, Path(tmp) / "serial", workers=1, progress=False)
        _, t_cluster, cpu_cluster = measured(run_tasks, abs, {str(i): -i for i in range(k)}, workers=k,
                                                progress=False)
        failures = [pd.read_csv(r.failures_csv).to_string() for r in [*results.values(), rerun]]
        same = {name: {f: _difference(Path(tmp) / "serial" / "out" / f, Path(tmp) / name / "out" / f)
                       for f in ("traits.csv", "roots.csv", "classes.csv")} for name in ("dask", "threads")}
        n = args.plates * args.frames
        ours_check, full_check, partial_check = check_costs(Path(tmp))
    rows = [
        (f"frames per minute, {k} Dask worker processes vs serial", 60 * n / wall["dask"], 60 * n / wall["serial"]),
        (f"frames per minute, {k} Dask worker threads vs serial", 60 * n / wall["threads"], 60 * n / wall["serial"]),
        (f"CPU s per frame, {k} worker processes (all processes) vs serial", cpu["dask"] / n, cpu["serial"] / n),
        (f"CPU s per frame, {k} worker threads vs serial", cpu["threads"] / n, cpu["serial"] / n),
        ("cores kept busy by the serial run (CPU s / wall s) vs cores here", cpu["serial"] / wall["serial"],
         len(os.sched_getaffinity(0))),
        (f"{k}-process LocalCluster: start, {k} trivial tasks, close (s) vs serial s/frame", t_cluster,
         wall["serial"] / n),
        ("  its CPU s (start-up: imports in each worker) vs serial CPU s/frame", cpu_cluster, cpu["serial"] / n),
        ("rerun of an up-to-date experiment (s) vs first run", t_rerun, wall["serial"]),
        ("check of an unchanged 64 MB scan (ms): stat first vs full SHA-1", 1e3 * ours_check, 1e3 * full_check),
        ("  (first + last MB read only, not used: misses mid-file edits) (ms)", 1e3 * partial_check, 1e3 * full_check),
    ]
    print("\n".join(r.summary for r in [*results.values(), rerun]))
    print(f"{n} scans ({args.plates} plates x {args.frames} frames, {args.size} px); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. Tables vs serial: {same}.")
    print(f"{'figure':<78} | {'ours':>9} | {'baseline':>9} | {'ratio':>7}")
    for name, ours, baseline in rows:
        print(f"{name:<78} | {ours:9.3f} | {baseline:9.3f} | {ours / baseline:7.3f}")
    for text in failures:
        print(text)


if __name__ == "__main__":
    main()
