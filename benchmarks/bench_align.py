"""Alignment accuracy and speed: rootscope.align against the OpenCV tutorial recipe.

    .venv/bin/python benchmarks/bench_align.py [--size 1000] [--series 13] [--real-every 2] [--camera-only]

(a) synthetic plate series (rootscope.synth: growing roots, condensation, re-lighting, noise, JPEG):
    >= 50 moves in the default range (5 degrees, 5 % of the side) and 20 hard moves (20 degrees, 15 %);
(b) every real image in ../shared/data as reference, moved by a known random similarity (default range:
    5 degrees / 100 px; every third also a hard one: 20 degrees / 300 px), re-lit (gain, gamma) and noisy;
(c) speed on one 4000 x 4000 synthetic pair (wall and CPU time; CPU time is less hurt by other jobs),
(d) ORB against SIFT for the coarse step,
(e) camera photos: the two real RhizoScan pairs (the same plate 8.6 h later: moved, ~6 % zoom, tilt,
    other light, grown roots) with the model chosen, patch residual, time and the root-on-root distance
    (below), and a synthetic camera series (a rootscope.synth plate photographed through known
    homographies: zoom 0.77-1.3, tilt up to 3 % of the side, a gain per colour channel) with the max
    corner error; against the tutorial and against the configured similarity alone (``fallback=None``).
Accuracy is the distance between the 4 image corners mapped by the estimated and the true matrix
(px). Success = flagged ok (ours; the baseline has no flag) and max corner error <= 1 px.
Baseline (the well-known tutorial recipe): ORB 5000 features at full resolution, brute-force Hamming
matching, best 15 % of matches, cv2.findHomography with RANSAC. Both run on the same pairs in this
script; the machine is shared (2 cores, other jobs running), so compare the ratio, not absolute times.

Root-on-root distance (real pairs have no annotation): do the old parts of the roots, grown before the
first photo, lie on themselves after warping? In the plate's inside (detected box less 6 %, away from
the label's print), thin dark ridges (black top-hat with a disc 3 root widths wide, above the median +
4 robust standard deviations of the top-hat) are found in the reference and in the warped later photo;
only ridge pixels that are ridges in both (within 5 px) are kept, skeletonised (pieces >= 30 px), put
on the ridge's centre line (top-hat centroid in 5 x 5 px), and the distance from each reference point
to the later photo's centre line is measured: the figure is the median over those within 5 px.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from rootscope import io
from rootscope.align import (
    _match,
    _normalise,
    _ransac,
    _reduce,
    corner_error,
    estimate_transform,
    to_gray,
    warp,
)
from rootscope.plate import find_plate
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
        self.wrong: list[bool] = []
        self.seconds: list[float] = []
        self.cpu: list[float] = []

    def add(self, matrix: np.ndarray | None, flagged_ok: bool, truth: np.ndarray, shape, seconds: float) -> None:
        mean, worst = corner_error(matrix, truth, shape) if matrix is not None else (np.inf, np.inf)
        self.means.append(mean)
        self.maxes.append(worst)
        self.ok.append(bool(flagged_ok and worst <= 1.0))
        self.wrong.append(bool(flagged_ok and worst > 1.0))
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
        (f"{label}: wrong but ok (max err > 1 px)", str(sum(a.wrong)), str(sum(b.wrong)), ""),
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


# ---------------------------------------------------------------------------- (e) camera photos
CAMERA_PAIRS = ("Photo_001", "Photo_011")  # rhizoscan-arabidopsis/J10/<name>.jpg -> J11/<name>.jpg
ROOT_WIDTH_PX = 5  # roots of the RhizoScan photos are 3-6 px wide
NEAR_PX = 5.0  # ridge pixels farther apart than this are not the same root


def ridges(gray: np.ndarray, area: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(thin dark ridge mask, black top-hat) of a gray image in [0, 1] within ``area``.

    The top-hat disc is 3 root widths wide, so the rim marker and the label's bars (wider) give little;
    the threshold is the top-hat's median + 4 robust standard deviations in ``area`` (the noise floor),
    and print (top-hat > 0.12, or gray 0.15 below the median) with 20 px around it is left out.
    """
    size = 3 * ROOT_WIDTH_PX | 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    hat = cv2.morphologyEx(cv2.GaussianBlur(gray, (0, 0), 1.0), cv2.MORPH_BLACKHAT, disc)
    values = hat[area]
    median = float(np.median(values))
    floor = median + 4 * 1.4826 * float(np.median(np.abs(values - median)))
    dark = cv2.GaussianBlur(gray, (0, 0), 2.0) < float(np.median(gray[area])) - 0.15
    printed = cv2.dilate(((hat > 0.12) | dark).astype(np.uint8), np.ones((41, 41), np.uint8)) > 0
    return (hat > floor) & area & ~printed, hat


def long_pieces(skeleton: np.ndarray, min_px: int = 30) -> np.ndarray:
    """The 8-connected pieces of ``skeleton`` with at least ``min_px`` pixels."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(skeleton.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_px
    keep[0] = False
    return keep[labels]


def centre_line(skeleton: np.ndarray, hat: np.ndarray) -> np.ndarray:
    """N x 2 (x, y) px: each skeleton pixel moved to the top-hat centroid of its 5 x 5 neighbourhood."""
    rows, cols = np.nonzero(skeleton)
    padded = np.pad(hat, 2)
    window = np.stack([np.stack([padded[rows + i, cols + j] for j in range(5)], -1) for i in range(5)], 1)
    window = np.clip(window - window.min(axis=(1, 2), keepdims=True), 0, None)
    total = np.maximum(window.sum(axis=(1, 2)), 1e-12)
    offsets = np.arange(-2, 3, dtype=np.float64)
    return np.c_[cols + window.sum(1) @ offsets / total, rows + window.sum(2) @ offsets / total]


def to_line(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance (px) of each point to the polyline through its two nearest ``line`` points (to the
    nearest point where those are not neighbours)."""
    nearest, index = cKDTree(line).query(points, k=2)
    q1, q2 = line[index[:, 0]], line[index[:, 1]]
    step = q2 - q1
    length = np.linalg.norm(step, axis=1)
    usable = (length > 0.3) & (length < 2.5)
    rel = points - q1
    across = np.abs(rel[:, 0] * step[:, 1] - rel[:, 1] * step[:, 0]) / np.where(usable, length, 1.0)
    return np.where(usable, np.minimum(across, nearest[:, 0]), nearest[:, 0])


def root_on_root(reference: np.ndarray, moving: np.ndarray, matrix: np.ndarray | None) -> tuple[float, int]:
    """(median distance px, points) between the roots of ``reference`` and of ``moving`` warped by
    ``matrix`` (moving -> reference), over root points present in both (see the module docstring)."""
    plate = find_plate(reference)
    if matrix is None or plate.kind == "whole":
        return float("nan"), 0
    ref, mov = to_gray(reference), to_gray(moving)
    warped = warp(mov, matrix, ref.shape)
    seen = warp(np.ones_like(mov), matrix, ref.shape) > 0.99
    area = plate.inner_mask(ref.shape) & (cv2.erode(seen.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0)
    (mask_ref, hat_ref), (mask_mov, hat_mov) = ridges(ref, area), ridges(warped, area)
    near = np.ones((2 * int(NEAR_PX) + 1,) * 2, np.uint8)
    both_ref = mask_ref & (cv2.dilate(mask_mov.astype(np.uint8), near) > 0)
    both_mov = mask_mov & (cv2.dilate(mask_ref.astype(np.uint8), near) > 0)
    skel_ref, skel_mov = long_pieces(skeletonize(both_ref)), long_pieces(skeletonize(both_mov))
    if skel_ref.sum() < 50 or skel_mov.sum() < 50:
        return float("nan"), 0
    distance = to_line(centre_line(skel_ref, hat_ref), centre_line(skel_mov, hat_mov))
    distance = distance[distance <= NEAR_PX]
    return float(np.median(distance)), int(len(distance))


def similarity_only(reference, moving):
    """The configured similarity without the homography fallback (the model choice switched off)."""
    return estimate_transform(reference, moving, fallback=None)


def real_camera_rows(method, label: str) -> list[tuple[str, str]]:
    """(figure, value) rows of ``method`` on the real camera pairs: ok / model, residual, root-on-root
    median, seconds."""
    folder = DATA / "rhizoscan-arabidopsis"
    rows = []
    for name in CAMERA_PAIRS:
        reference, moving = io.read_image(folder / "J10" / f"{name}.jpg"), io.read_image(folder / "J11" / f"{name}.jpg")
        start = time.perf_counter()
        result = method(reference, moving)
        seconds = time.perf_counter() - start
        matrix = getattr(result, "matrix", result)
        median, points = root_on_root(reference, moving, matrix)
        flag = (f"{'ok' if result.ok else 'refused'} {result.model}" if hasattr(result, "ok")
                else ("matrix" if matrix is not None else "none"))
        residual = f"{result.residual:.2f}" if hasattr(result, "residual") else "-"
        rows += [(f"{name}: flag, model ({label})", flag), (f"{name}: patch residual (px)", residual),
                 (f"{name}: root-on-root median (px, {points} pts)", f"{median:.2f}"),
                 (f"{name}: time (s)", f"{seconds:.2f}")]
    return rows


def camera_view(shape, rng: np.random.Generator, zoom: float, tilt: float) -> np.ndarray:
    """Reference -> photo homography: ``zoom`` and a turn of up to 5 degrees about the centre, a shift of
    up to 3 % of the side, and a keystone moving the top corners in by ``tilt`` of the side (the bottom
    ones out by half that)."""
    h, w = shape[:2]
    turn = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-5, 5), zoom), (0, 0, 1)])
    turn[:2, 2] += rng.uniform(-0.03, 0.03, 2) * max(h, w)
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    d = tilt * max(h, w)
    keystone = np.float32([[d, 0], [-d, 0], [d / 2, 0], [-d / 2, 0]])
    return cv2.getPerspectiveTransform(corners, cv2.perspectiveTransform(corners[None], turn)[0] + keystone)


def photographed(image: np.ndarray, view: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` seen through ``view`` with a gain of 0.6-1.5 per colour channel and noise."""
    h, w = image.shape[:2]
    out = cv2.warpPerspective(image, view, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = out * rng.uniform(0.6, 1.5, 3).astype(np.float32) + rng.normal(0, 0.01, out.shape).astype(np.float32)
    return np.clip(out, 0, 1).astype(np.float32)


def camera_series(size: int, series: int) -> tuple[Tally, Tally, Tally]:
    """Ours, tutorial and similarity-only on synthetic camera photos: every frame of ``series`` plates
    (3 frames each, growing) photographed at zooms 0.77, 0.9, 1.3 and tilts 0, 1.5, 3 % of the side."""
    rng = np.random.default_rng(21)
    tallies = Tally(), Tally(), Tally()
    for seed in range(series):
        frames = make_series(frames=3, seed=200 + seed, config=SynthConfig(size=size))
        for k, frame in enumerate(frames):
            for zoom in (0.77, 0.9, 1.3):
                tilt = (0.0, 0.015, 0.03)[(k + int(10 * zoom)) % 3]
                view = camera_view(frame.image.shape, rng, zoom, tilt)
                truth = frame.matrix @ np.linalg.inv(view)  # photo -> frame 0
                photo = photographed(frame.image, view, rng)
                for tally, method in zip(tallies, (ours, tutorial, similarity_only)):
                    tally.run(method, frames[0].image, photo, truth)
    return tallies


def camera_section(size: int, series: int) -> None:
    if DATA.is_dir():
        rows = []
        for (figure, a), (_, b), (_, c) in zip(real_camera_rows(ours, "ours"), real_camera_rows(tutorial, "tutorial"),
                                               real_camera_rows(similarity_only, "similarity only")):
            rows.append((figure.replace(" (ours)", ""), a, b, c))
        print("\n(e) real camera pairs (rhizoscan J10 -> J11): ours | tutorial | similarity only (fallback=None)")
        print(f"| {'figure':54s} | {'ours':>20s} | {'tutorial':>10s} | {'similarity only':>22s} |")
        print(f"|{'-' * 56}|{'-' * 22}|{'-' * 12}|{'-' * 24}|")
        for figure, a, b, c in rows:
            print(f"| {figure:54s} | {a:>20s} | {b:>10s} | {c:>22s} |")
    else:
        print(f"\n(e) real camera pairs skipped: {DATA} is absent")
    a, b, c = camera_series(size, series)
    label = f"camera {size}px"
    table("(e) synthetic camera photos (zoom 0.77-1.3, tilt <= 3 %, colour gains) vs tutorial",
          accuracy_rows(label, a, b))
    table("(e) synthetic camera photos: ours vs similarity only (fallback=None) in the baseline column",
          accuracy_rows(label, a, c))


def generator_camera_section(size: int, series: int) -> None:
    """(f) series of the generator's own camera preset (:meth:`SynthConfig.camera`: zoom +-25 %, tilt 1.5 %,
    exposure and white balance, a cluttered bench), every frame against the first: ours vs similarity
    only (``fallback=None``). Corner errors at the image corners against the exact truth matrix."""
    results: dict[str, list[tuple[bool, float, float]]] = {"ours": [], "similarity only": []}
    for seed in range(series):
        frames = make_series(4, seed=seed, config=SynthConfig.camera(size=size))
        ref = to_gray(frames[0].image)
        for frame in frames[1:]:
            mov = to_gray(frame.image)
            for name, fallback in (("ours", "homography"), ("similarity only", None)):
                start = time.perf_counter()
                reg = estimate_transform(ref, mov, fallback=fallback)
                seconds = time.perf_counter() - start
                results[name].append((reg.ok, corner_error(reg.matrix, frame.matrix, ref.shape)[1], seconds))
    rows = []
    for label, pick in (("aligned (ok)", lambda r: f"{100 * np.mean([ok for ok, _, _ in r]):.1f}%"),
                        ("ok with max corner error < 0.5 px", lambda r: f"{sum(ok and e < 0.5 for ok, e, _ in r)}"),
                        ("ok but max corner error > 1 px", lambda r: f"{sum(ok and e > 1 for ok, e, _ in r)}"),
                        ("median max corner error of ok (px)",
                         lambda r: f"{np.median([e for ok, e, _ in r if ok] or [np.nan]):.3f}"),
                        ("largest max corner error of ok (px)",
                         lambda r: f"{max([e for ok, e, _ in r if ok] or [np.nan]):.3f}"),
                        ("median time per pair (s)", lambda r: f"{np.median([t for _, _, t in r]):.2f}")):
        rows.append((f"camera preset {size}px, {len(results['ours'])} pairs: {label}", pick(results["ours"]),
                     pick(results["similarity only"]), ""))
    table("(f) SynthConfig.camera() series (frame k -> frame 0): ours vs similarity only (baseline column)", rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000, help="side of the synthetic scans (px)")
    parser.add_argument("--series", type=int, default=13, help="synthetic series of 5 frames (4 moves each)")
    parser.add_argument("--real-every", type=int, default=2, help="use every n-th real image (1 = all 106)")
    parser.add_argument("--camera-series", type=int, default=3, help="synthetic plates photographed in (e)")
    parser.add_argument("--generator-series", type=int, default=6, help="SynthConfig.camera() series of 4 in (f)")
    parser.add_argument("--camera-only", action="store_true", help="run (e) and (f) only")
    args = parser.parse_args(argv)
    print(f"bench_align: OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; shared machine, "
          "timings are noisy: read the ratios.")
    start = time.perf_counter()
    if args.camera_only:
        camera_section(args.size, args.camera_series)
        generator_camera_section(args.size, args.generator_series)
        print(f"\ntotal benchmark time {time.perf_counter() - start:.0f} s")
        return 0
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
    camera_section(args.size, args.camera_series)
    generator_camera_section(args.size, args.generator_series)
    print(f"\ntotal benchmark time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
