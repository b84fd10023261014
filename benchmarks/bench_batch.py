"""Batch and resumability figures: frames per minute serial vs 2 Dask workers, the cost of an
up-to-date rerun, and the cost of the manifest's file check.

Run: ``.venv/bin/python benchmarks/bench_batch.py [--plates 4] [--frames 2] [--size 768]``.
A synthetic experiment is written to a temporary folder with a pixel classifier trained on one
extra synthetic frame; every figure is timed in this script on the same input. The baselines:
a serial run (``--workers 1``) for the cluster, the first run for the rerun, and hashing the whole
file on every check for the manifest check. Timings on a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rootscope import io, synth
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        make_experiment(base, args.plates, args.frames, args.size)
        serial_dir, dask_dir = Path(tmp) / "serial", Path(tmp) / "dask"
        shutil.copytree(base, serial_dir)
        shutil.copytree(base, dask_dir)
        serial, t_serial = timed(run_experiment, serial_dir, workers=1, progress=False)
        parallel, t_dask = timed(run_experiment, dask_dir, workers=2, progress=False)
        rerun, t_rerun = timed(run_experiment, serial_dir, workers=1, progress=False)
        failures = [pd.read_csv(r.failures_csv).to_string() for r in (serial, parallel, rerun)]
        same = {f: _difference(serial_dir / "out" / f, dask_dir / "out" / f)
                for f in ("traits.csv", "roots.csv", "classes.csv")}
        n = args.plates * args.frames
        ours_check, full_check, partial_check = check_costs(Path(tmp))
    rows = [
        ("frames per minute, 2 Dask workers vs serial", 60 * n / t_dask, 60 * n / t_serial),
        ("rerun of an up-to-date experiment (s) vs first run", t_rerun, t_serial),
        ("check of an unchanged 64 MB scan (ms): stat first vs full SHA-1", 1e3 * ours_check, 1e3 * full_check),
        ("  (first + last MB read only, not used: misses mid-file edits) (ms)", 1e3 * partial_check, 1e3 * full_check),
    ]
    print(f"{serial.summary}\n{parallel.summary}\n{rerun.summary}")
    print(f"{n} scans ({args.plates} plates x {args.frames} frames, {args.size} px); shared 2-core machine, "
          f"timings noisy. Dask vs serial tables: {same}.")
    print(f"{'figure':<70} | {'ours':>9} | {'baseline':>9} | {'ratio':>7}")
    for name, ours, baseline in rows:
        print(f"{name:<70} | {ours:9.3f} | {baseline:9.3f} | {ours / baseline:7.3f}")
    for text in failures:
        print(text)


if __name__ == "__main__":
    main()
