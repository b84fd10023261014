"""Finding the plate: rootscope.plate.find_plate against the trivial baseline (the whole image is the plate).

    .venv/bin/python benchmarks/bench_plate.py [--seeds 4] [--repeats 3]

(a) the four RhizoScan camera photos in ../shared/data (4288 x 2848, square plates on a light bench),
    against the outer corners annotated by hand in tests/test_plate.py;
(b) synthetic square plates (rootscope.synth, 1000 px): scanner-like frames (rotation up to 5 degrees,
    shift 5 %) and camera photos (SynthConfig.camera: zoom, tilt, exposure, white balance, cluttered
    bench), frames whose plate lies wholly in the picture; truth: SynthFrame.plate_corners;
(c) round plates drawn as in tests/test_plate.py (centre and radius error);
(d) images without a plate (germination paper, CD cases from ../shared/data; blank, noise): how often
    the whole image is kept, as it must be.
Corner error: largest distance between a found and a true corner, % of the true side (the baseline's
corners are the image's). Outside: % of the measured area (ours: inner_mask; baseline: the whole image)
that lies outside the plate's outer outline, i.e. bench measured as if it were plate. Time: find_plate
alone (image already in memory), median wall and CPU time of --repeats runs; the machine is shared
(2 cores, other jobs), CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rootscope import io
from rootscope.plate import find_plate
from rootscope.synth import SynthConfig, make_series

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "tests"))
from test_plate import REAL_CORNERS, round_plate  # noqa: E402  (the annotations live with the tests)


def side(corners: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)))


def corner_error(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(found - truth, axis=1).max() / side(truth) * 100)


def polygon_mask(corners: np.ndarray, shape) -> np.ndarray:
    out = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(out, [np.rint(corners * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return out.astype(bool)


def timed(image: np.ndarray, repeats: int, **kwargs):
    walls, cpus, region = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        region = find_plate(image, **kwargs)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return region, float(np.median(walls)) * 1000, float(np.median(cpus)) * 1000


def square_row(name: str, image: np.ndarray, truth: np.ndarray, repeats: int) -> list[str]:
    region, wall, cpu = timed(image, repeats)
    h, w = image.shape[:2]
    plate = polygon_mask(truth, image.shape)
    whole = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    if region.kind == "whole":
        ours_err, ours_out = "whole", f"{(~plate).mean() * 100:.1f}"
    else:
        mask = region.inner_mask(image.shape)
        ours_err = f"{corner_error(region.corners, truth):.2f}"
        ours_out = f"{(mask & ~plate).sum() / max(mask.sum(), 1) * 100:.2f}"
    return [name, ours_err, f"{corner_error(whole, truth):.1f}", ours_out, f"{(~plate).mean() * 100:.1f}",
            f"{wall:.0f} / {cpu:.0f}"]


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    print(f"\n{title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


SQUARE_HEADER = ["image", "corner error % (ours)", "corner error % (whole image)", "outside % (ours)",
                 "outside % (whole image)", "time ms wall / CPU (ours)"]


def real(repeats: int) -> list[list[str]]:
    rows = []
    for name, corners in sorted(REAL_CORNERS.items()):
        path = DATA / "rhizoscan-arabidopsis" / name
        if not path.exists():
            continue
        rows.append(square_row(name, io.read_scan(path, convert=False).pixels, np.array(corners), repeats))
    return rows


def synthetic(seeds: int, camera: bool, repeats: int) -> list[list[str]]:
    config = SynthConfig.camera(size=1000) if camera else SynthConfig(size=1000)
    rows = []
    for seed in range(seeds):
        for k, frame in enumerate(make_series(frames=3, seed=seed, config=config)):
            truth = frame.plate_corners
            if (truth < 0).any() or (truth > config.size - 1).any():
                continue  # the plate leaves the picture: no true outline to compare with
            label = f"{'camera' if camera else 'scanner'} seed {seed} frame {k}"
            rows.append(square_row(label, frame.image, truth, repeats))
    return rows


def summary(label: str, rows: list[list[str]]) -> list[str]:
    errors = [float(r[1]) for r in rows if r[1] != "whole"]
    outside = [float(r[3]) for r in rows]
    times = [float(r[5].split(" / ")[1]) for r in rows]
    found = f"{len(errors)}/{len(rows)} found"
    return [f"{label}: {found}", f"median {np.median(errors):.2f}, max {max(errors):.2f}" if errors else "-",
            f"median {np.median([float(r[2]) for r in rows]):.1f}", f"max {max(outside):.2f}",
            f"median {np.median([float(r[4]) for r in rows]):.1f}", f"CPU median {np.median(times):.0f}"]


def round_rows(repeats: int) -> list[list[str]]:
    rows = []
    for seed, centre, radius in [(0, (470.0, 340.0), 290.0), (1, (420.0, 360.0), 220.0), (2, (500.0, 330.0), 320.0),
                                 (3, (450.0, 350.0), 250.0)]:
        image = round_plate(seed, centre=centre, radius=radius)
        region, wall, cpu = timed(image, repeats)
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        plate = np.hypot(xx - centre[0], yy - centre[1]) <= radius
        if region.kind == "round":
            error = max(np.hypot(region.centre[0] - centre[0], region.centre[1] - centre[1]),
                        abs(region.radius - radius)) / radius * 100
            mask = region.inner_mask(image.shape)
            ours, out = f"{error:.2f}", f"{(mask & ~plate).sum() / mask.sum() * 100:.2f}"
        else:
            ours, out = region.kind, f"{(~plate).mean() * 100:.1f}"
        rows.append([f"round seed {seed}, r = {radius:.0f} px", ours, out, f"{(~plate).mean() * 100:.1f}",
                     f"{wall:.0f} / {cpu:.0f}"])
    return rows


def no_plate_rows(repeats: int) -> list[list[str]]:
    sets = {"germination paper (rootnav-osr)": sorted(DATA.glob("rootnav-osr/*/*.jpg")),
            "CD cases (tillmore-barley)": sorted(DATA.glob("tillmore-barley/train/imgs/*.jpg"))[::6]}
    rows = []
    for label, paths in sets.items():
        kinds, cpus = [], []
        for path in paths:
            region, _, cpu = timed(io.read_scan(path, convert=False).pixels, 1)
            kinds.append(region.kind)
            cpus.append(cpu)
        if paths:
            rows.append([label, f"{kinds.count('whole')}/{len(kinds)}", f"{np.median(cpus):.0f}"])
    rng = np.random.default_rng(0)
    for label, image in (("blank 1000 x 800", np.full((800, 1000, 3), 0.7, np.float32)),
                         ("noise 1000 x 800", rng.random((800, 1000, 3)).astype(np.float32))):
        region, _, cpu = timed(image, repeats)
        rows.append([label, f"{int(region.kind == 'whole')}/1", f"{cpu:.0f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="synthetic series per kind (3 frames each)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per image")
    args = parser.parse_args()
    rows = real(args.repeats)
    if rows:
        table("(a) RhizoScan photos, 4288 x 2848 (uint8 RGB), against hand-annotated corners", SQUARE_HEADER,
              rows + [summary("all", rows)])
    scanner, camera = synthetic(args.seeds, False, args.repeats), synthetic(args.seeds, True, args.repeats)
    table("(b) synthetic square plates, 1000 x 1000, against SynthFrame.plate_corners", SQUARE_HEADER,
          scanner + camera + [summary("scanner", scanner), summary("camera", camera)])
    table("(c) round plates drawn as in tests/test_plate.py, 900 x 700",
          ["image", "centre / radius error % of r (ours)", "outside % (ours)", "outside % (whole image)",
           "time ms wall / CPU (ours)"], round_rows(args.repeats))
    table("(d) no plate: the whole image must be kept", ["images", "kept whole", "CPU ms median"],
          no_plate_rows(args.repeats))


if __name__ == "__main__":
    main()
