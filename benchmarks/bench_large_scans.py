"""Large scans: time and peak memory of ``rootscope segment`` (pixel classifier) on 5k to 20k px scans.

    .venv/bin/python benchmarks/bench_large_scans.py                     # 5k, 10k, 20k TIFF + 20k PNG (~10 min)
    .venv/bin/python benchmarks/bench_large_scans.py --sizes 5000 --png 0  # quick

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
"""

from __future__ import annotations

import argparse
import json
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


def measured(cmd: list[str]) -> dict:
    """Seconds, peak RSS (GiB) and exit status of ``cmd`` in a fresh wrapper process."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, cmd)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["gib"] = result["kib"] / 2**20
    return result


def show(result: dict | None) -> str:
    if result is None:
        return "not run"
    if result["rc"]:
        return f"failed (rc {result['rc']}: {result['err'].strip().splitlines()[-1][:120]})"
    return f"{result['s']:.0f} s, {result['gib']:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,10000,20000", help="TIFF scan sides (px), comma-separated.")
    parser.add_argument("--png", type=int, default=20000, help="Also a PNG scan of this side (0 = none).")
    parser.add_argument("--baseline-max", type=int, default=10000, help="Largest side the baseline runs at.")
    args = parser.parse_args()
    tile, truth = plate()
    labels = make_scribbles(truth.astype(np.uint8), (1, 0), fraction=0.004, seed=0)
    settings = FeatureSettings(filters={"gaussian": (1.0, 3.5), "gradient": (1.0, 3.5), "hessian": (1.0,)})
    model = PixelClassifier(features=settings, forest_params=ForestParams(n_estimators=20, max_depth=12),
                            postprocess=PostProcess(min_object_px=30))
    model.fit([tile], [labels], ["root", "background"])
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


if __name__ == "__main__":
    main()
