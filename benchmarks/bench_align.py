"""Alignment accuracy and speed: rootscope.align against the OpenCV tutorial recipe.

    .venv/bin/python benchmarks/bench_align.py [--size 1000] [--series 13] [--real-every 2]

(a) synthetic plate series (rootscope.synth: growing roots, condensation, re-lighting, noise, JPEG):
    >= 50 moves in the default range (5 degrees, 5 % of the side) and 20 hard moves (20 degrees, 15 %);
(b) every real image in ../shared/data as reference, moved by a known random similarity (default range:
    5 degrees / 100 px; every third also a hard one: 20 degrees / 300 px), re-lit (gain, gamma) and noisy;
(c) speed on one 4000 x 4000 synthetic pair (wall and CPU time; CPU time is less hurt by other jobs),
(d) ORB against SIFT for the coarse step.
Accuracy is the distance between the 4 image corners mapped by the estimated and the true matrix
(px). Success = flagged ok (ours; the baseline has no flag) and max corner error <= 1 px.
Baseline (the well-known tutorial recipe): ORB 5000 features at full resolution, brute-force Hamming
matching, best 15 % of matches, cv2.findHomography with RANSAC. Both run on the same pairs in this
script; the machine is shared (2 cores, other jobs running), so compare the ratio, not absolute times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rootscope import io
from rootscope.align import _match, _normalise, _ransac, _reduce, corner_error, estimate_transform, to_gray
from rootscope.synth import SynthConfig, make_series

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def tutorial(reference: np.ndarray, moving: np.ndarray) -> np.ndarray | None:
    """The OpenCV tutorial alignment: ORB 5000 at full resolution, BF Hamming, best 15 %, RANSAC homography."""
    ref8 = (to_gray(reference) * 255).astype(np.uint8)
    mov8 = (to_gray(moving) * 255).astype(np.uint8)
    orb = cv2.ORB_create(5000)
    kp_ref, des_ref = orb.detectAndCompute(ref8, None)
    kp_mov, des_mov = orb.detectAndCompute(mov8, None)
    if des_ref is None or des_mov is None:
        return None
    matches = sorted(cv2.BFMatcher(cv2.NORM_HAMMING).match(des_mov, des_ref), key=lambda m: m.distance)
    matches = matches[: max(4, int(len(matches) * 0.15))]
    src = np.float32([kp_mov[m.queryIdx].pt for m in matches])
    dst = np.float32([kp_ref[m.trainIdx].pt for m in matches])
    matrix, _ = cv2.findHomography(src, dst, cv2.RANSAC)
    return matrix


def similarity(rng: np.random.Generator, shape, degrees: float, shift: float) -> np.ndarray:
    h, w = shape[:2]
    matrix = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-degrees, degrees),
                                                rng.uniform(0.99, 1.01)), (0, 0, 1)])
    matrix[:2, 2] += rng.uniform(-shift, shift, 2)
    return matrix


def moved(image: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the scanner sees when ``truth`` maps it back onto ``image``: warped, re-lit, noisy."""
    h, w = image.shape[:2]
    out = cv2.warpAffine(image, np.linalg.inv(truth)[:2], (w, h), flags=cv2.INTER_LINEAR)
    out = np.clip(rng.uniform(0.7, 1.2) * out, 0, 1) ** rng.uniform(0.7, 1.4)
    out += rng.normal(0, 0.02, out.shape).astype(np.float32)
    return np.clip(out, 0, 1).astype(np.float32)


class Tally:
    """Corner errors, success and time of one method over a set of pairs."""

    def __init__(self) -> None:
        self.means: list[float] = []
        self.maxes: list[float] = []
        self.ok: list[bool] = []
        self.seconds: list[float] = []
        self.cpu: list[float] = []

    def add(self, matrix: np.ndarray | None, flagged_ok: bool, truth: np.ndarray, shape, seconds: float) -> None:
        mean, worst = corner_error(matrix, truth, shape) if matrix is not None else (np.inf, np.inf)
        self.means.append(mean)
        self.maxes.append(worst)
        self.ok.append(bool(flagged_ok and worst <= 1.0))
        self.seconds.append(seconds)

    def run(self, method, reference, moving, truth) -> None:
        start, cpu = time.perf_counter(), time.process_time()
        result = method(reference, moving)
        seconds = time.perf_counter() - start
        self.cpu.append(time.process_time() - cpu)
        if hasattr(result, "matrix"):
            self.add(result.matrix, result.ok, truth, moving.shape, seconds)
        else:
            self.add(result, result is not None, truth, moving.shape, seconds)


def ours(reference, moving):
    return estimate_transform(reference, moving)


def table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    print(f"\n{title}")
    print(f"| {'figure':54s} | {'ours':>10s} | {'baseline':>10s} | {'ratio':>8s} |")
    print(f"|{'-' * 56}|{'-' * 12}|{'-' * 12}|{'-' * 10}|")
    for row in rows:
        print(f"| {row[0]:54s} | {row[1]:>10s} | {row[2]:>10s} | {row[3]:>8s} |")


def accuracy_rows(label: str, a: Tally, b: Tally) -> list[tuple[str, str, str, str]]:
    def ratio(x: float, y: float) -> str:
        return f"{x / y:.2f}" if np.isfinite(x) and np.isfinite(y) and y > 0 else "-"

    n = len(a.ok)
    mean_a, mean_b = float(np.mean(a.means)), float(np.mean(b.means))
    max_a, max_b = float(np.max(a.maxes)), float(np.max(b.maxes))
    med_a, med_b = float(np.median(a.means)), float(np.median(b.means))
    t_a, t_b = float(np.median(a.seconds)), float(np.median(b.seconds))
    return [
        (f"{label}: pairs", str(n), str(n), ""),
        (f"{label}: success (ok and max err <= 1 px)", f"{np.mean(a.ok):.1%}", f"{np.mean(b.ok):.1%}", ""),
        (f"{label}: mean corner error (px)", f"{mean_a:.3f}", f"{mean_b:.3g}", ratio(mean_a, mean_b)),
        (f"{label}: median corner error (px)", f"{med_a:.3f}", f"{med_b:.3g}", ratio(med_a, med_b)),
        (f"{label}: max corner error (px)", f"{max_a:.3f}", f"{max_b:.3g}", ratio(max_a, max_b)),
        (f"{label}: median time per pair (s)", f"{t_a:.3f}", f"{t_b:.3f}", ratio(t_a, t_b)),
    ]


def synthetic(size: int, series: int, hard: bool) -> tuple[Tally, Tally]:
    config = SynthConfig(size=size, max_rotation_deg=20.0 if hard else 5.0,
                         max_shift_px=(300.0 if hard else 100.0) * size / 2000)
    a, b = Tally(), Tally()
    for seed in range(series):
        frames = make_series(frames=5 if not hard else 3, seed=100 * hard + seed, config=config)
        for frame in frames[1:]:
            a.run(ours, frames[0].image, frame.image, frame.matrix)
            b.run(tutorial, frames[0].image, frame.image, frame.matrix)
    return a, b


def real(every: int) -> tuple[Tally, Tally, Tally, Tally]:
    paths = sorted(p for p in DATA.rglob("*.jpg") if p.name != "Photo_invalid.jpg")[::every]
    rng = np.random.default_rng(7)
    tallies = Tally(), Tally(), Tally(), Tally()
    for k, path in enumerate(paths):
        image = io.read_image(path)
        for hard in (False, True) if k % 3 == 0 else (False,):
            truth = similarity(rng, image.shape, 20.0 if hard else 5.0, 300.0 if hard else 100.0)
            moving = moved(image, truth, rng)
            tallies[2 * hard].run(ours, image, moving, truth)
            tallies[2 * hard + 1].run(tutorial, image, moving, truth)
    return tallies


def speed(repeats: int = 3) -> list[tuple[str, str, str, str]]:
    frames = make_series(frames=2, seed=11, config=SynthConfig(size=4000))
    reference, moving, truth = frames[0].image, frames[1].image, frames[1].matrix
    a, b = Tally(), Tally()
    for _ in range(repeats):
        a.run(ours, reference, moving, truth)
        b.run(tutorial, reference, moving, truth)
    t_a, t_b = float(np.median(a.seconds)), float(np.median(b.seconds))
    c_a, c_b = float(np.median(a.cpu)), float(np.median(b.cpu))
    return [
        ("4000x4000 pair: median wall time of 3 (s)", f"{t_a:.3f}", f"{t_b:.3f}", f"{t_a / t_b:.2f}"),
        ("4000x4000 pair: median CPU time, all threads (s)", f"{c_a:.3f}", f"{c_b:.3f}", f"{c_a / c_b:.2f}"),
        ("4000x4000 pair: max corner error (px)", f"{max(a.maxes):.3f}", f"{max(b.maxes):.3g}", ""),
    ]


def coarse_detectors(every: int) -> list[tuple[str, str, str, str]]:
    """ORB (ours) against SIFT for the coarse step only: time and RANSAC inliers at max_side 1024."""
    paths = sorted(p for p in DATA.rglob("*.jpg") if p.name != "Photo_invalid.jpg")[:: every * 4]
    rng = np.random.default_rng(3)
    sift = cv2.SIFT_create(4000)
    results = {"orb": ([], [], []), "sift": ([], [], [])}
    for path in paths:
        image = io.read_image(path)
        truth = similarity(rng, image.shape, 20.0, 300.0)
        ref_small, f = _reduce(to_gray(image), 1024)
        mov_small, _ = _reduce(to_gray(moved(image, truth, rng)), 1024)
        ref8, mov8 = _normalise(ref_small), _normalise(mov_small)
        for name in results:
            start = time.perf_counter()
            if name == "orb":
                orb = cv2.ORB_create(nfeatures=4000, scaleFactor=1.2, nlevels=6, edgeThreshold=19,
                                     patchSize=19, fastThreshold=7)
                kr, dr = orb.detectAndCompute(ref8, None)
                km, dm = orb.detectAndCompute(mov8, None)
                pairs = _match(dr, dm)
            else:
                kr, dr = sift.detectAndCompute(ref8, None)
                km, dm = sift.detectAndCompute(mov8, None)
                knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(dm, dr, k=2)
                pairs = np.array([(m[0].queryIdx, m[0].trainIdx) for m in knn
                                  if len(m) == 2 and m[0].distance < 0.85 * m[1].distance]).reshape(-1, 2)
            pr = np.array([k.pt for k in kr]).reshape(-1, 2)
            pm = np.array([k.pt for k in km]).reshape(-1, 2)
            matrix, inliers = _ransac(pm[pairs[:, 0]], pr[pairs[:, 1]], "similarity", 3.0)
            seconds = time.perf_counter() - start
            scale = np.diag([1 / f, 1 / f, 1.0])
            error = corner_error(scale @ matrix @ np.linalg.inv(scale), truth, image.shape)[1] \
                if matrix is not None else np.inf
            for store, value in zip(results[name], (seconds, inliers, error < 5.0)):
                store.append(value)
    (to, io_, so), (ts, is_, ss) = results["orb"], results["sift"]
    n = len(to)
    return [
        (f"coarse step, {n} real hard pairs: median time (s)", f"{np.median(to):.3f}", f"{np.median(ts):.3f}",
         f"{np.median(to) / np.median(ts):.2f}"),
        ("coarse step: median RANSAC inliers", f"{np.median(io_):.0f}", f"{np.median(is_):.0f}", ""),
        ("coarse step: within 5 px before refinement", f"{np.mean(so):.0%}", f"{np.mean(ss):.0%}", ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000, help="side of the synthetic scans (px)")
    parser.add_argument("--series", type=int, default=13, help="synthetic series of 5 frames (4 moves each)")
    parser.add_argument("--real-every", type=int, default=2, help="use every n-th real image (1 = all 106)")
    args = parser.parse_args(argv)
    print(f"bench_align: OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; shared machine, "
          "timings are noisy: read the ratios.")
    start = time.perf_counter()
    a, b = synthetic(args.size, args.series, hard=False)
    rows = accuracy_rows(f"synth {args.size}px default", a, b)
    a, b = synthetic(args.size, 10, hard=True)
    rows += accuracy_rows(f"synth {args.size}px hard", a, b)
    table("(a) synthetic plate series (rootscope.synth) vs tutorial", rows)
    if DATA.is_dir():
        da, db, ha, hb = real(args.real_every)
        table("(b) real images (../shared/data) moved, re-lit, noisy vs tutorial",
              accuracy_rows("real default", da, db) + accuracy_rows("real hard", ha, hb))
        table("(d) coarse detector: ORB (ours) vs SIFT (baseline column)", coarse_detectors(args.real_every))
    else:
        print(f"\n(b), (d) skipped: {DATA} is absent")
    table("(c) speed, 4000 x 4000 synthetic pair vs tutorial", speed())
    print(f"\ntotal benchmark time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
