"""Speed and ground-truth consistency of the synthetic plate generator.

Run: ``.venv/bin/python benchmarks/bench_synth.py [--size 2000] [--repeat 3]``

Speed: one 2000 x 2000 frame with all its ground truth (``make_series(frames=1)``: architecture,
plate, roots, seedlings, lid, scanner, RSML and tables), against the recipe a user would otherwise
write for only the rendering part of the same frame with SciPy / scikit-image / NumPy: move the
plate with ``scipy.ndimage.affine_transform``, draw the RSML roots segment by segment with
``skimage.draw`` discs, blur with ``scipy.ndimage.gaussian_filter``, NumPy Gaussian noise, PIL JPEG.
The baseline gets the plate picture and the RSML for free, so the ratio is conservative. Best of
``--repeat`` runs, wall clock and CPU time of this process; the machine is shared with other jobs,
so compare the ratio, not the absolute seconds.

Consistency: figures that the tests assert on small plates, measured on full-size frames.
"""

from __future__ import annotations

import argparse
import io as pyio
import os
import time

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.draw import disk

from rootscope import rsml
from rootscope.synth import SynthConfig, make_series


def best_of(fn, repeat: int) -> tuple[float, float, object]:
    """(best wall s, CPU s of that run, result)."""
    best = (np.inf, np.inf, None)
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        w, c = time.perf_counter() - w, time.process_time() - c
        if w < best[0]:
            best = (w, c, out)
    return best


def baseline_render(plate: np.ndarray, scene: rsml.Scene, matrix: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same frame's pixels and root mask, the SciPy / scikit-image way."""
    h, w = plate.shape[:2]
    # scipy maps output (row, col) to input coordinates: frame -> canonical is `matrix` in (x, y)
    m = matrix[[1, 0]][:, [1, 0, 2]]
    image = np.stack([ndimage.affine_transform(plate[..., c], m[:2, :2], m[:2, 2], order=1) for c in range(3)], -1)
    mask = np.zeros((h, w), np.uint8)
    for root in scene.all_roots():
        for (x, y), d in zip(root.points, root.functions["diameter"]):
            rr, cc = disk((y, x), d / 2, shape=(h, w))
            mask[rr, cc] = 1
    soft = ndimage.gaussian_filter(mask.astype(np.float32), 0.7)[..., None]
    image = image * (1 - 0.6 * soft) + 0.3 * soft
    image = np.stack([ndimage.gaussian_filter(image[..., c], 0.7) for c in range(3)], -1)
    image = image + np.random.default_rng(seed).normal(0, 0.012, image.shape)
    buf = pyio.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return np.asarray(Image.open(buf)).astype(np.float32) / 255, mask


def consistency(frames) -> dict[str, float]:
    """Ground-truth figures over a series (full size)."""
    from rootscope.rsml import distance_to_polyline

    worst_mask = worst_branch = worst_len = worst_map = 0.0
    first = frames[0].branch_points.set_index(["plant", "root"])[["x", "y"]]
    for f in frames:
        lines = rsml.render_mask(f.scene, f.mask.shape, width_px=1)
        dist = cv2.distanceTransform((lines == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        radius = max(r.functions["diameter"].max() for r in f.scene.all_roots()) / 2
        worst_mask = max(worst_mask, float(dist[f.mask == 1].max()) - radius)
        roots = {r.id: r for r in f.scene.all_roots()}
        for row in f.branch_points.itertuples():
            worst_branch = max(worst_branch, distance_to_polyline(np.array([row.x, row.y]),
                                                                  roots[f"{row.plant}.{row.parent_root}"].points))
        for row in f.lengths.itertuples():
            worst_len = max(worst_len, abs(row.length_px - rsml.root_length(roots[f"{row.plant}.{row.root}"])))
        bp = f.branch_points.set_index(["plant", "root"])[["x", "y"]]
        common = first.index.intersection(bp.index)
        moved = bp.loc[common].to_numpy() @ f.matrix[:2, :2].T + f.matrix[:2, 2]
        if len(common):
            worst_map = max(worst_map, float(np.abs(moved - first.loc[common].to_numpy()).max()))
    last = frames[-1]
    return {
        "root px beyond RSML radius, max (px)": worst_mask,
        "branch point to parent polyline, max (px)": worst_branch,
        "lengths CSV - RSML length, max (px)": worst_len,
        "matrix: frame t branch pts -> frame 0, max err (px)": worst_map,
        "roots / branch points in last frame": f"{len(last.lengths)} / {len(last.branch_points)}",
        "2nd-order laterals in last frame": int((last.lengths.order == 3).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cfg = SynthConfig(size=args.size)

    ours_w, ours_c, _ = best_of(lambda: make_series(frames=1, seed=11, config=cfg), args.repeat)
    series_w, series_c, series = best_of(lambda: make_series(frames=4, seed=11, config=cfg), 1)
    frame = series[-1]
    from rootscope import synth as synth_mod
    from rootscope import synth_draw as draw

    look = np.random.default_rng([11, 1])
    colours = draw.palette(look, cfg.light_roots)
    background = draw.scanner_background(look, cfg.size, colours)
    plate = draw.plate_layer(look, cfg.size, synth_mod._plate_box(cfg), cfg.px_per_mm, colours, "Col-0", background)
    base_w, base_c, (_, base_mask) = best_of(lambda: baseline_render(plate, frame.scene, frame.matrix, 0), args.repeat)

    load = os.getloadavg()[0]
    print(f"synthetic plates, {args.size} x {args.size} px; shared machine (load average {load:.1f} on "
          f"{os.cpu_count()} cores): compare ratios, not seconds")
    print()
    print(f"| {'figure':58} | {'ours':>9} | {'baseline':>9} | {'ratio':>6} |")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 11}|{'-' * 8}|")
    rows = [
        ("one frame + all truth, wall s (baseline: render only)", ours_w, base_w),
        ("one frame + all truth, CPU s (baseline: render only)", ours_c, base_c),
        ("4-frame series, wall s per frame", series_w / 4, base_w),
    ]
    for name, ours, base in rows:
        print(f"| {name:58} | {ours:9.3f} | {base:9.3f} | {base / ours:5.1f}x |")
    dice = 2 * np.sum((frame.mask == 1) & (base_mask == 1)) / (np.sum(frame.mask == 1) + np.sum(base_mask == 1))
    print(f"| {'root mask Dice, ours vs baseline discs (same RSML)':58} | {'':9} | {'':9} | {dice:6.3f} |")
    print()
    print(f"| {'ground truth consistency (4 frames, full size)':58} | {'ours':>9} |")
    print(f"|{'-' * 60}|{'-' * 11}|")
    for name, value in consistency(series).items():
        text = f"{value:9.2e}" if isinstance(value, float) else f"{value!s:>9}"
        print(f"| {name:58} | {text} |")


if __name__ == "__main__":
    main()
