"""Large scans: time and peak memory of ``rootscope segment`` (pixel classifier) on 5k to 20k px scans.

    .venv/bin/python benchmarks/bench_large_scans.py                     # 5k, 10k, 20k TIFF + 20k PNG (~10 min)
    .venv/bin/python benchmarks/bench_large_scans.py --sizes 5000 --png 0  # quick
    .venv/bin/python benchmarks/bench_large_scans.py --run --sizes 10000,20000  # rootscope run, per stage
    .venv/bin/python benchmarks/bench_large_scans.py --run --no-branches --sizes 20000 --baseline-commit ''  # no U-Net

Scans are RGB uint8, a 2000 px synthetic plate (:mod:`rootscope.synth`) repeated side by side. TIFFs are
uncompressed (what scanners write), filled band by band through ``tifffile.memmap`` so that writing them
holds one 2000-row band; PNGs are encoded whole by OpenCV in this process. The model is a small
scribble-trained forest (root / background, 6 gray features, 20 trees, ``min_object_px`` 30 so the
whole-mask clean-up runs). Each run is a fresh subprocess under a small wrapper that reports its child's
peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``). Ours: ``rootscope segment``, which keeps the file's
uint8 (a memory map for the TIFF), converts each feature tile to float and turns each tile's
probabilities into mask values at once. Baseline (same input, same model): the previous whole-image path
in a script, ``io.read_image`` (float32 scan) + ``segment_image`` (K x H x W probabilities, then
post-processing), run up to ``--baseline-max`` px. The last column says whether the two masks are equal.

``--run``: ``rootscope run EXP --workers 1 --force`` (no Dask: in one process) on an experiment of one plate
of two such TIFF scans (the second shifted by (9, 6) px), with this model as ``models.pixel`` and the
shipped branching-point U-Net as ``models.branches``; time and peak RSS of the run and of each stage
(summed / largest over the scans; the peak is reset before each stage through ``/proc/self/clear_refs``,
Linux only). Baseline: the same run with rootscope's ``src/`` at ``--baseline-commit`` (``git archive``),
the last commit before the stages read scans as uint8; the ratio column says whether the tables are equal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

from rootscope.features import FeatureSettings
from rootscope.pixel import ForestParams, PixelClassifier, PostProcess
from rootscope.scribbles import make_scribbles
from rootscope.synth import SynthConfig, make_series

TILE = 2000
#: The last commit before the pipeline stages read scans as uint8 (the baseline of --run).
BASELINE_COMMIT = "993747e"
ROOTSCOPE = Path(sys.executable).with_name("rootscope")
WRAPPER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
run = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
print(json.dumps({"s": time.perf_counter() - t, "kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "rc": run.returncode, "err": run.stderr[-2000:]}))
"""
BASELINE = """
import sys
from rootscope import io
from rootscope.segment import load_segmenter, segment_image
model = load_segmenter(sys.argv[1])
mask, proba = segment_image(model, io.read_image(sys.argv[2]))  # float32 scan, K x H x W probabilities
io.write_image(sys.argv[3], mask)
"""


def row(figure: str, ours: str, baseline: str = "", ratio: str = "") -> None:
    print(f"| {figure} | {ours} | {baseline} | {ratio} |", flush=True)


def plate() -> tuple[np.ndarray, np.ndarray]:
    """One 2000 px synthetic plate (uint8 RGB) and its root truth (bool)."""
    frame = make_series(1, seed=3, config=SynthConfig(size=TILE))[0]
    return np.rint(frame.image * 255).astype(np.uint8), frame.mask == 1


def write_scan(path: Path, tile: np.ndarray, size: int) -> None:
    """``size x size`` RGB scan of ``tile`` repeated: TIFF band by band, PNG whole."""
    reps = -(-size // TILE)
    band = np.tile(tile, (1, reps, 1))[:, :size]
    if path.suffix == ".tif":
        image = tifffile.memmap(path, shape=(size, size, 3), dtype=np.uint8, photometric="rgb")
        for r in range(0, size, TILE):
            image[r : r + TILE] = band[: min(TILE, size - r)]
        image.flush()
        del image
    else:
        full = np.tile(band, (reps, 1, 1))[:size]
        cv2.imwrite(str(path), cv2.cvtColor(full, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])


def measured(cmd: list[str], env: dict | None = None) -> dict:
    """Seconds, peak RSS (GiB) and exit status of ``cmd`` in a fresh wrapper process (``env``: its environment)."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, cmd)], capture_output=True, text=True, check=True,
                         env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["gib"] = result["kib"] / 2**20
    return result


def show(result: dict | None) -> str:
    if result is None:
        return "not run"
    if result["rc"]:
        return f"failed (rc {result['rc']}: {result['err'].strip().splitlines()[-1][:120]})"
    return f"{result['s']:.0f} s, {result['gib']:.2f} GiB"


def small_model(tile: np.ndarray, truth: np.ndarray) -> PixelClassifier:
    """The scribble-trained forest of both modes (root / background, 6 gray features, 20 trees)."""
    labels = make_scribbles(truth.astype(np.uint8), (1, 0), fraction=0.004, seed=0)
    settings = FeatureSettings(filters={"gaussian": (1.0, 3.5), "gradient": (1.0, 3.5), "hessian": (1.0,)})
    model = PixelClassifier(features=settings, forest_params=ForestParams(n_estimators=20, max_depth=12),
                            postprocess=PostProcess(min_object_px=30))
    model.fit([tile], [labels], ["root", "background"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,10000,20000", help="TIFF scan sides (px), comma-separated.")
    parser.add_argument("--png", type=int, default=20000, help="Also a PNG scan of this side (0 = none).")
    parser.add_argument("--baseline-max", type=int, default=10000, help="Largest side the baseline runs at.")
    parser.add_argument("--run", action="store_true", help="Time `rootscope run` (whole pipeline) instead, per stage.")
    parser.add_argument("--no-branches", action="store_true",
                        help="--run without models.branches (the branching-point U-Net takes most of the time).")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT,
                        help="--run: the rootscope commit the baseline runs (its src/ from `git archive`; '' = none).")
    args = parser.parse_args()
    tile, truth = plate()
    model = small_model(tile, truth)
    if args.run:
        return run_mode(args, tile, model)
    cases = [(int(s), ".tif") for s in args.sizes.split(",") if s] + ([(args.png, ".png")] if args.png else [])
    row("figure", "ours (rootscope segment)", "baseline (whole-image float + K x H x W)", "ratio (time; memory)")
    row("---", "---", "---", "---")
    with tempfile.TemporaryDirectory(prefix="bench_large_") as tmp:
        root = Path(tmp)
        model_path = model.save(root / "model.npz")
        for size, suffix in cases:
            scan = root / f"scan_{size}{suffix}"
            start = time.perf_counter()
            write_scan(scan, tile, size)
            made = time.perf_counter() - start
            ours = measured([ROOTSCOPE, "segment", scan, "--model", model_path, "-o", root / "ours"])
            base = None
            if size <= args.baseline_max:
                base = measured([sys.executable, "-c", BASELINE, model_path, scan, root / "base" / f"{scan.stem}_mask.png"])
            ratio, same = "", ""
            if base and not base["rc"] and not ours["rc"]:
                ratio = f"{ours['s'] / base['s']:.2f}; {ours['gib'] / base['gib']:.2f}"
                a = cv2.imread(str(root / "ours" / f"{scan.stem}_mask.png"), cv2.IMREAD_UNCHANGED)
                b = cv2.imread(str(root / "base" / f"{scan.stem}_mask.png"), cv2.IMREAD_UNCHANGED)
                same = f"; masks equal: {'yes' if np.array_equal(a, b) else 'NO'}"
            mb = scan.stat().st_size / 2**20
            row(f"{size} x {size} {suffix[1:].upper()} ({mb:.0f} MiB, written in {made:.0f} s)", show(ours),
                show(base), ratio + same)
            for path in (scan, root / "ours" / f"{scan.stem}_mask.png", root / "base" / f"{scan.stem}_mask.png"):
                path.unlink(missing_ok=True)


# ------------------------------------------------------------------------- --run: rootscope run
#: Runs ``rootscope run EXP --workers 1 --force`` (in this process: no Dask) with every stage timed; before
#: each stage the process's peak RSS is reset (``/proc/self/clear_refs``), after it read (``VmHWM``); the
#: resets also reset what ``ru_maxrss`` reports, so the run's peak is the largest ``VmHWM`` seen (``peak``).
DRIVER = """
import json, sys, time
from rootscope import pipeline
from rootscope.cli import app
stages, peak = [], 0
run_stage = pipeline.run_stage

def hwm_kib():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1])

def timed(stage, **kw):
    global peak
    peak = max(peak, hwm_kib())
    open("/proc/self/clear_refs", "w").write("5")
    start = time.perf_counter()
    try:
        return run_stage(stage, **kw)
    finally:
        stages.append([stage.name, time.perf_counter() - start, hwm_kib()])

pipeline.run_stage = timed
try:
    app(["run", sys.argv[1], "--workers", "1", "--force"], standalone_mode=False)
finally:
    open(sys.argv[2], "w").write(json.dumps({"stages": stages, "peak_kib": max(peak, hwm_kib())}))
"""


def write_experiment(root: Path, tile: np.ndarray, size: int, model_path: Path, branches: bool = True) -> None:
    """One plate of two ``size`` px TIFF scans, the second shifted by (9, 6) px, and its rootscope.toml
    (``branches``: with the shipped branching-point U-Net as ``models.branches``)."""
    from rootscope.branches import DEFAULT_MODEL
    from rootscope.synth import SynthConfig

    (root / "raw" / "plate1").mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(("plate1_2025-01-01_08h00.tif", "plate1_2025-01-01_20h00.tif")):
        write_scan(root / "raw" / "plate1" / name, np.roll(tile, (6 * k, 9 * k), axis=(0, 1)), size)
    (root / "rootscope.toml").write_text(
        f'px_per_mm = {SynthConfig(size=TILE).px_per_mm:.6f}\nclasses = ["root", "background"]\n'
        f'[models]\npixel = "{model_path}"\n' + (f'branches = "{DEFAULT_MODEL}"\n' if branches else ""))


#: Tables of both runs that must be equal, byte for byte.
SAME = ("traits.csv", "roots.csv", "branches.csv", "classes.csv", "tracks/plants.csv", "tracks/laterals.csv")


def run_stages(exp: Path, log: Path, env: dict | None = None) -> tuple[dict, dict[str, tuple[float, float]]]:
    """The whole run (seconds, peak GiB) and, per stage, its seconds over all scans and its peak GiB."""
    result = measured([sys.executable, "-c", DRIVER, exp, log], env)
    stages = json.loads(log.read_text()) if log.exists() else {"stages": [], "peak_kib": 0}
    result["gib"] = max(result["gib"], stages["peak_kib"] / 2**20)
    per: dict[str, tuple[float, float]] = {}
    for name, seconds, kib in stages["stages"]:
        s, g = per.get(name, (0.0, 0.0))
        per[name] = (s + seconds, max(g, kib / 2**20))
    return result, per


def run_mode(args: argparse.Namespace, tile: np.ndarray, model: PixelClassifier) -> None:
    """``rootscope run`` on one plate of two scans per size: ours, and the same run at ``--baseline-commit``."""
    row("figure", "ours (rootscope run --workers 1)", f"baseline (rootscope at {args.baseline_commit or '-'})",
        "ratio (time; memory)")
    row("---", "---", "---", "---")
    with tempfile.TemporaryDirectory(prefix="bench_large_run_") as tmp:
        root = Path(tmp)
        model_path = model.save(root / "model.npz")
        env = None
        if args.baseline_commit:
            repo = Path(__file__).resolve().parents[1]
            archive = subprocess.run(["git", "-C", repo, "archive", args.baseline_commit, "src/rootscope"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", root], input=archive, check=True)
            env = {**os.environ, "PYTHONPATH": str(root / "src")}
        for size in [int(s) for s in args.sizes.split(",") if s]:
            exp = root / f"exp_{size}"
            write_experiment(exp, tile, size, model_path, branches=not args.no_branches)
            ours, per = run_stages(exp, root / "ours.json")
            tables = {name: (exp / "out" / name).read_bytes() for name in SAME if (exp / "out" / name).exists()}
            base, base_per = run_stages(exp, root / "base.json", env) if env else (None, {})
            ratio = ""
            if base and not base["rc"] and not ours["rc"]:
                same = all(tables.get(name) == (exp / "out" / name).read_bytes() for name in SAME)
                ratio = (f"{ours['s'] / base['s']:.2f}; {ours['gib'] / base['gib']:.2f}; "
                         f"tables equal: {'yes' if same else 'NO'}")
            row(f"{size} x {size}: rootscope run, 1 plate x 2 scans", show(ours), show(base), ratio)
            for name, (seconds, gib) in per.items():
                b = base_per.get(name)
                row(f"{size}: stage {name} (all scans)", f"{seconds:.0f} s, {gib:.2f} GiB",
                    f"{b[0]:.0f} s, {b[1]:.2f} GiB" if b else "",
                    f"{seconds / max(b[0], 1e-9):.2f}; {gib / b[1]:.2f}" if b else "")
            shutil.rmtree(exp)


if __name__ == "__main__":
    main()
