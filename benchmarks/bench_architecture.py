"""Root architecture: accuracy on synthetic plates and on real annotations, against two baselines, and speed.

Run: ``.venv/bin/python benchmarks/bench_architecture.py [--quick]``

1. Synthetic plates (``rootscope.synth``, crossings on purpose): per plant primary and total length,
   lateral count, branching points (F1 at 5 px), against the generator's exact truth; again with the
   root mask made ragged (blur, noise, threshold) as a segmentation would give it.
2. Real annotations in ``../shared/data``: each RSML rendered to a mask at the root widths measured in
   the photos themselves (median full width at half maximum of intensity profiles across the annotated
   roots, per data set and root order: :func:`root_widths`), analysed, and compared with the RSML's own
   figures; barley plants also found from the mask alone (no seed points). Total length also on the
   masks of earlier runs (first-order roots 7 px, laterals 5 px), for comparison.
3. Baselines on the same masks: total length as the skeleton's pixel count, and as skan's summed branch
   distances (``skan.Skeleton(...).path_lengths().sum()``); error of total root length per image; and
   ours without its two ways to count roots that run together (bands between a merge and a split,
   width twice a root's), to show what they add; and each annotated root rendered alone, which
   separates the length measurement from the stretches where annotated roots lie on top of each
   other (no mask shows those).
4. Scale: the synthetic figures at scan sizes 1000-3000 px (7-22 px/mm).
5. Speed on a 16 MP synthetic plate with 10 plants, after a warm-up call; skan on the same mask for scale.

The machine is shared with other jobs (2 cores): timings are noisy, compare the ratio.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import skan
from scipy.ndimage import map_coordinates
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from rootscope import rsml
from rootscope.architecture import find_architecture, split_classes
from rootscope.metrics import match_points
from rootscope.skeleton import clean_mask, skeleton_graph
from rootscope.synth import SynthConfig, make_series

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QUICK = "--quick" in sys.argv
PLAIN = {"bundle_angle_deg": 0, "overlap_ratio": None}  # without the two ways to see roots that run together


def baseline_lengths(root: np.ndarray) -> tuple[float, float]:
    """Total length (px) as skeleton pixel count, and as skan's summed path lengths."""
    skel = skeletonize(clean_mask(root))
    if not skel.any():
        return 0.0, 0.0
    return float(skel.sum()), float(skan.Skeleton(skel).path_lengths().sum())


def total_ours(arch) -> float:
    return sum(p.total_length_px for p in arch.plants) + arch.unassigned_length_px


def emerged(frame) -> np.ndarray:
    """Per row of ``frame.lengths``: False for laterals shorter than their parent's diameter at the
    insertion (still inside the parent's outline in the mask, so invisible to any mask method)."""
    hidden = {child.id for _, child in rsml.hidden_laterals(frame.scene)}
    return np.array([f"{row.plant}.{row.root}" not in hidden for row in frame.lengths.itertuples()], bool)


def rough(root: np.ndarray, seed: int) -> np.ndarray:
    """The mask with a ragged outline, specks and pinholes, as a segmentation gives: blurred (1 px),
    plus Gaussian noise (sd 0.25), thresholded at 0.5."""
    rng = np.random.default_rng(seed)
    soft = cv2.GaussianBlur(root.astype(np.float32), (0, 0), 1.0) + rng.normal(0, 0.25, root.shape).astype(np.float32)
    return soft > 0.5


def synthetic(seeds: range, frames: int, config: SynthConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per plant and per image comparisons on synthetic plates (last ``frames - 1`` frames of each)."""
    plants, images = [], []
    for seed in seeds:
        for frame in make_series(frames=frames, seed=seed, config=config)[1:]:
            root, seed_mask = split_classes(frame.mask)
            arch = find_architecture(root, seed_mask=seed_mask)
            noisy = find_architecture(rough(root, seed), seed_mask=seed_mask)
            lengths = frame.lengths.assign(emerged=emerged(frame))
            truth_seeds = np.array([p.roots[0].points[0][::-1] for p in frame.scene.plants])
            _, nearest = cKDTree([p.seed for p in arch.plants]).query(truth_seeds)
            _, near_noisy = cKDTree([p.seed for p in noisy.plants]).query(truth_seeds)
            for plant, k, kn in zip(frame.scene.plants, nearest, near_noisy):
                t = lengths[lengths.plant == int(plant.id)]
                ours, rough_plant = arch.plants[k], noisy.plants[kn]
                plants.append({
                    "noisy_total": rough_plant.total_length_px,
                    "noisy_laterals": sum(r.order == 2 for r in rough_plant.roots),
                    "true_primary": t.length_px[t.order == 1].sum(),
                    "primary": ours.roots[ours.primary].length_px if ours.roots else 0.0,
                    "true_total": t.length_px.sum(), "total": ours.total_length_px,
                    "true_laterals": int((t.order == 2).sum()), "true_laterals_emerged": int(((t.order == 2) & t.emerged).sum()),
                    "laterals": sum(r.order == 2 for r in ours.roots),
                })
            bp = frame.branch_points.merge(lengths[["plant", "root", "emerged"]], on=["plant", "root"])
            found = arch.branch_points()[:, ::-1]
            pix, skan_len = baseline_lengths(root)
            images.append({
                "f1": match_points(found, bp[["x", "y"]].to_numpy(), 5.0).f1,
                "f1_emerged": match_points(found, bp[bp.emerged][["x", "y"]].to_numpy(), 5.0).f1,
                "f1_noisy": match_points(noisy.branch_points()[:, ::-1], bp[bp.emerged][["x", "y"]].to_numpy(), 5.0).f1,
                "true_total": frame.lengths.length_px.sum(), "ours": total_ours(arch), "pixels": pix, "skan": skan_len,
                "crossings": len(arch.crossings),
            })
    return pd.DataFrame(plants), pd.DataFrame(images)


def dense_xy(points: np.ndarray, step_px: float = 1.0) -> np.ndarray:
    """A polyline's (x, y) points resampled every ``step_px`` along its length."""
    p = np.asarray(points[:, :2], float)
    if len(p) < 2:
        return p
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
    t = np.arange(0.0, s[-1], step_px)
    return np.column_stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])])


def root_contrast(image: np.ndarray, scene: rsml.Scene, background_px: int = 61) -> np.ndarray:
    """Float image where roots are positive: each channel minus its local median (``background_px``
    window, wider than any root), projected on the colour direction of root minus background
    measured at the RSML centrelines (roots are pale on blue paper in osr, pale on grey in barley)."""
    diff = image.astype(np.float32) - np.dstack([cv2.medianBlur(image[..., c], background_px) for c in range(3)])
    xy = np.vstack([dense_xy(r.points) for r in scene.all_roots() if len(r.points) > 1])
    xy = np.clip(np.rint(xy).astype(int), 0, [image.shape[1] - 1, image.shape[0] - 1])
    direction = np.median(diff[xy[:, 1], xy[:, 0]], axis=0)
    return diff @ (direction / np.linalg.norm(direction))


def root_widths(image: np.ndarray, scene: rsml.Scene, half_px: float = 20.0, every_px: int = 8,
                clear_px: float = 12.5, ends_px: int = 15) -> list[tuple[int, float]]:
    """(order, width px) per annotated root, measured in the photo: intensity profiles of
    :func:`root_contrast` across the RSML centreline every ``every_px`` (tangent over +-3 px, 0.25 px
    steps), skipping ``ends_px`` at each end and profiles that pass within ``clear_px`` of another
    root; each profile's full width at half its peak (peak within 3 px of the centreline, at least 4
    noise sd), linearly interpolated; a root's width is the median over at least 3 profiles."""
    signal = root_contrast(image, scene)
    noise = 1.4826 * np.median(np.abs(signal - np.median(signal)))
    roots = [(r, order) for plant in scene.plants for r, order in _with_order(plant.roots, 1)]
    lines = [dense_xy(r.points) for r, _ in roots]
    t = np.arange(-half_px, half_px + 1e-9, 0.25)
    centre = np.flatnonzero(np.abs(t) <= 3)
    out = []
    for k, ((_, order), p) in enumerate(zip(roots, lines)):
        if len(p) < 2 * ends_px + 3:
            continue
        i = np.arange(ends_px, len(p) - ends_px, every_px)
        tangent = p[np.minimum(i + 3, len(p) - 1)] - p[i - 3]
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
        normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
        across = p[i][:, None, :] + t[None, :, None] * normal[:, None, :]  # profiles x samples x (x, y)
        others = [q for j, q in enumerate(lines) if j != k and len(q)]
        if others:
            near = cKDTree(np.vstack(others)).query(across.reshape(-1, 2))[0].reshape(across.shape[:2])
            across = across[near.min(axis=1) >= clear_px]
        widths = []
        for prof in map_coordinates(signal, [across[..., 1].ravel(), across[..., 0].ravel()], order=1).reshape(-1, len(t)):
            j = centre[np.argmax(prof[centre])]
            half = prof[j] / 2
            left, right = np.flatnonzero(prof[:j] < half), np.flatnonzero(prof[j:] < half)
            if prof[j] < 4 * noise or not len(left) or not len(right):
                continue
            a, b = left[-1], j + right[0]
            widths.append(0.25 * ((b - 1 + (prof[b - 1] - half) / (prof[b - 1] - prof[b]))
                                  - (a + (half - prof[a]) / (prof[a + 1] - prof[a]))))
        if len(widths) >= 3:
            out.append((order, float(np.median(widths))))
    return out


def _with_order(roots: list[rsml.Root], order: int):
    """(root, order) for ``roots`` of ``order`` and, depth first, all their descendants."""
    for r in roots:
        yield r, order
        yield from _with_order(r.children, order + 1)


def measured_widths(pairs: list[tuple[Path, Path]]) -> dict[int, float]:
    """Median root width (px) per order over the annotated roots of (image, RSML) pairs."""
    by_order: dict[int, list[float]] = {}
    for image, path in pairs:
        for order, w in root_widths(cv2.imread(str(image)), rsml.read_rsml(path)):
            by_order.setdefault(order, []).append(w)
    return {order: float(np.median(v)) for order, v in sorted(by_order.items())}


def render(scene: rsml.Scene, shape: tuple[int, int], widths: dict[int, float], supersample: int = 4) -> np.ndarray:
    """Mask of a scene, roots of order k ``widths[k]`` px wide (the last order's width for deeper ones):
    drawn ``supersample`` times larger, area-averaged back and thresholded at half, so that a width
    that is not an odd whole number of px is kept on average."""
    big = (shape[0] * supersample, shape[1] * supersample)
    mask = np.zeros(big, np.uint8)
    by_order: dict[int, list[rsml.Root]] = {}
    for plant in scene.plants:
        for root, order in _with_order(plant.roots, 1):
            by_order.setdefault(order, []).append(rsml.Root(points=root.points[:, :2] * supersample + (supersample - 1) / 2))
    for order, roots in by_order.items():
        flat = rsml.Scene(plants=[rsml.Plant(roots=roots)])
        mask |= rsml.render_mask(flat, big, width_px=widths.get(order, widths[max(widths)]) * supersample)
    return cv2.resize(mask.astype(np.float32), shape[::-1], interpolation=cv2.INTER_AREA) > 0.5


OLD_WIDTHS = {1: 7.0, 2: 5.0}  # the widths of earlier runs: first-order roots 7 px, laterals 5 px


def separable_length(scene: rsml.Scene, apart_px: float) -> float:
    """Total length (px) of a scene counting once the stretches where a root runs closer than
    ``apart_px`` to an earlier root other than its parent (their masks merge there: no mask-based
    method can see two roots). A lateral's start on its own parent is kept."""
    seen: dict[int, np.ndarray] = {}
    total = 0.0

    def visit(root: rsml.Root, parent: int | None) -> None:
        nonlocal total
        me = len(seen)
        p = np.asarray(root.points[:, :2], float)
        if len(p) >= 2:
            seg = np.hypot(*np.diff(p, axis=0).T)
            dense = np.vstack([np.linspace(a, b, max(int(np.ceil(d)), 1), endpoint=False)
                               for a, b, d in zip(p[:-1], p[1:], seg)] + [p[-1:]])
            others = [pts for k, pts in seen.items() if k != parent]
            hidden = (cKDTree(np.vstack(others)).query(dense)[0] < apart_px) if others else np.zeros(len(dense), bool)
            total += float(np.hypot(*np.diff(dense, axis=0).T)[~(hidden[1:] & hidden[:-1])].sum())
            seen[me] = dense
        else:
            seen[me] = np.zeros((0, 2))
        for child in root.children:
            visit(child, me)

    for plant in scene.plants:
        for root in plant.roots:
            visit(root, None)
    return total


def osr_files() -> list[tuple[Path, Path]]:
    """(photo, RSML) pairs of RootNav OSR."""
    return [(p.with_suffix(".jpg"), p) for p in sorted(DATA.glob("rootnav-osr/*/*.rsml"))][: 5 if QUICK else None]


def barley_files() -> list[tuple[Path, Path]]:
    """(photo, RSML) pairs of TILLMore barley."""
    return [(p.parents[1] / "imgs" / f"{p.stem}.jpg", p)
            for p in sorted(DATA.glob("tillmore-barley/train/rsml/*.rsml"))][: 10 if QUICK else None]


def rootnav(widths: dict[int, float]) -> pd.DataFrame:
    """RootNav OSR rendered at ``widths`` (px per order): one plant per image, primary with laterals;
    plants from the top of the root system."""
    rows = []
    for _, path in osr_files():
        scene = rsml.read_rsml(path)
        pts = np.vstack([r.points[:, :2] for r in scene.all_roots()])
        shape = (int(pts[:, 1].max()) + 20, int(pts[:, 0].max()) + 20)
        mask = render(scene, shape, widths)
        arch = find_architecture(mask > 0)
        prim = scene.plants[0].roots[0]
        ours = max(arch.plants, key=lambda p: p.total_length_px)
        found = ours.branch_points()[:, ::-1]
        pix, skan_len = baseline_lengths(mask > 0)
        rows.append({
            "image": path.stem, "plants": len(arch.plants), "true_primary": rsml.root_length(prim),
            "primary": ours.roots[ours.primary].length_px, "true_total": rsml.scene_length(scene),
            "separable_total": separable_length(scene, max(widths.values())),
            "total": total_ours(arch), "pixels": pix, "skan": skan_len, "true_laterals": len(prim.children),
            "total_plain": total_ours(find_architecture(mask > 0, **PLAIN)),
            "laterals": sum(r.order == 2 for r in ours.roots),
            "f1": match_points(found, rsml.branching_points(scene)[["x", "y"]].to_numpy(), 5.0).f1,
            "f1_10": match_points(found, rsml.branching_points(scene)[["x", "y"]].to_numpy(), 10.0).f1,
        })
    return pd.DataFrame(rows)


def tillmore(widths: dict[int, float]) -> pd.DataFrame:
    """TILLMore barley rendered at ``widths`` (px per order): 2-3 plants per image, seminal roots from each seed. Seeds given as points (the
    roots' common first point, as a user would click them) and, second, found from the mask alone
    (apexes where roots fan out downwards, touching plants split by path); a found plant is matched
    to the true seed within 40 px."""
    rows = []
    for _, path in barley_files():
        scene = rsml.read_rsml(path)
        scene.plants = [p for p in scene.plants if any(len(r.points) for r in p.roots)]  # drop empty plants
        for p in scene.plants:
            p.roots = [r for r in p.roots if len(r.points)]
        pts = np.vstack([r.points[:, :2] for r in scene.all_roots()])
        shape = (int(pts[:, 1].max()) + 20, int(pts[:, 0].max()) + 20)
        mask = render(scene, shape, widths)
        seeds = np.array([np.mean([r.points[0, :2] for r in p.roots], axis=0)[::-1] for p in scene.plants])
        arch = find_architecture(mask, seed_points=seeds, seed_radius_px=40)
        plain = total_ours(find_architecture(mask, seed_points=seeds, seed_radius_px=40, **PLAIN))
        tops = find_architecture(mask, seed_radius_px=60)
        found = np.array([p.seed for p in tops.plants]).reshape(-1, 2)
        near, which = cKDTree(found).query(seeds) if len(found) else (np.full(len(seeds), np.inf), np.zeros(len(seeds), int))
        all_found = len(found) == len(seeds) and bool((near < 40).all())
        pix, skan_len = baseline_lengths(mask)
        for plant, ours, d, k in zip(scene.plants, arch.plants, near, which):
            mine = tops.plants[k] if d < 40 else None
            rows.append({
                "image": path.stem, "plants_true": len(scene.plants), "plants_found": len(tops.plants), "all_found": all_found,
                "true_roots": len(plant.roots), "roots": len(ours.roots),
                "true_length": rsml.plant_length(plant), "length": ours.total_length_px,
                "found_roots": len(mine.roots) if mine else np.nan, "found_length": mine.total_length_px if mine else np.nan,
                "true_total": rsml.scene_length(scene), "separable_total": separable_length(scene, max(widths.values())),
                "total": total_ours(arch), "pixels": pix, "skan": skan_len,
                "total_plain": plain,
            })
    return pd.DataFrame(rows)


def isolated_roots(files: list[tuple[Path, Path]], widths: dict[int, float], min_length_px: float = 60.0) -> pd.DataFrame:
    """Each annotated root (at least ``min_length_px`` long) rendered alone at ``widths`` and measured:
    length error per root of ours, skan and the pixel count, free of the stretches where annotated roots
    run on top of each other (which no mask shows)."""
    rows = []
    for _, path in files:
        for plant in rsml.read_rsml(path).plants:
            for root, order in _with_order(plant.roots, 1):
                true = rsml.root_length(root)
                if len(root.points) < 2 or true < min_length_px:
                    continue
                xy = root.points[:, :2] - root.points[:, :2].min(axis=0) + 20
                shape = (int(xy[:, 1].max()) + 20, int(xy[:, 0].max()) + 20)
                mask = render(rsml.Scene(plants=[rsml.Plant(roots=[rsml.Root(points=xy)])]), shape,
                              {1: widths.get(order, widths[max(widths)])})
                pix, skan_len = baseline_lengths(mask)
                rows.append({"order": order, "true": true, "ours": total_ours(find_architecture(mask, min_area_px=5)),
                             "skan": skan_len, "pixels": pix})
    return pd.DataFrame(rows)


def scale_table(sizes: tuple[int, ...]) -> pd.DataFrame:
    """The synthetic figures (clean and ragged masks) at several scan sizes: nothing may hang on a
    length in px that does not follow the root width or the scale."""
    out = []
    for size in sizes:
        cfg = SynthConfig(size=size)
        plants, images = synthetic(range(1), 3, cfg)
        out.append({
            "size": size, "px_per_mm": cfg.px_per_mm, "plants": len(plants),
            "primary": np.median(rel(plants.primary, plants.true_primary)), "total": np.median(rel(plants.total, plants.true_total)),
            "laterals": (plants.laterals == plants.true_laterals_emerged).mean(), "f1": images.f1_emerged.mean(),
            "ragged_total": np.median(rel(plants.noisy_total, plants.true_total)),
            "ragged_laterals": (plants.noisy_laterals == plants.true_laterals_emerged).mean(), "ragged_f1": images.f1_noisy.mean(),
        })
    return pd.DataFrame(out)


def rel(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, float) - np.asarray(b, float)) / np.asarray(b, float) * 100


def signed(a, b) -> str:
    """'median |error| / median signed error' in % of ``b`` (negative: ``a`` short)."""
    e = (np.asarray(a, float) - np.asarray(b, float)) / np.asarray(b, float) * 100
    return f"{np.median(np.abs(e)):.2f} / {np.median(e):+.2f}"


def speed() -> dict[str, float]:
    """Seconds for one 16 MP mask with 10 plants (first call, then the median of three), and skan."""
    frame = make_series(frames=1, seed=3, config=SynthConfig(size=4000, n_plants=10, start_h=168))[0]
    root, seed_mask = split_classes(frame.mask)
    t0 = time.perf_counter()
    arch = find_architecture(root, seed_mask=seed_mask)
    first = time.perf_counter() - t0
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        find_architecture(root, seed_mask=seed_mask)
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    skan.summarize(skan.Skeleton(skeletonize(root)), separator="_")
    skan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    skeleton_graph(root)
    graph_s = time.perf_counter() - t0
    return {"first": first, "ours": float(np.median(runs)), "skan": skan_s, "graph": graph_s,
            "plants": len(arch.plants), "roots": sum(len(p.roots) for p in arch.plants), "mp": root.size / 1e6}


def main() -> None:
    rows = []

    def add(figure, ours, baseline="", ratio=""):
        rows.append((figure, ours, baseline, ratio))

    def add_total_vs_baselines(name, table):
        """Total-length error of ours vs pixel count and skan, against the RSML and the separable totals:
        median |error| / median signed error (negative: length missed)."""
        def err(col, truth="true_total"):
            e = (np.asarray(table[col], float) - table[truth]) / table[truth] * 100
            return np.median(np.abs(e)), f"{np.median(np.abs(e)):.2f} / {np.median(e):+.2f}"
        (o, os_), (p, ps) = err("total"), err("total_plain")
        add(f"{name}: total length % |error| / signed (true_total), ours vs ours without bands and overlap", os_, ps, f"{p / max(o, 1e-9):.1f}x")
        for truth in ("true_total", "separable_total"):
            for base in ("pixels", "skan"):
                (o, os_), (b, bs) = err("total", truth), err(base, truth)
                add(f"{name}: total length % |error| / signed ({truth}) vs {base}", os_, bs, f"{b / max(o, 1e-9):.1f}x")

    plants, images = synthetic(range(2 if QUICK else 6), 3)
    ep, et = rel(plants.primary, plants.true_primary), rel(plants.total, plants.true_total)
    add("synthetic: plants / images", f"{len(plants)} / {len(images)}")
    add("synthetic: median |error| primary length %", f"{np.median(ep):.2f}")
    add("synthetic: median |error| total length % (per plant)", f"{np.median(et):.2f}")
    add("synthetic: 90th pct |error| total length % (per plant)", f"{np.percentile(et, 90):.2f}")
    add("synthetic: lateral count exact, laterals that protrude from the parent (target >= 0.90)", f"{(plants.laterals == plants.true_laterals_emerged).mean():.2f}")
    add("synthetic: lateral count exact, all truth laterals (incl. ones inside the parent's outline*)", f"{(plants.laterals == plants.true_laterals).mean():.2f}")
    add("synthetic: branching-point F1 @5px, laterals that protrude (target >= 0.95)", f"{images.f1_emerged.mean():.3f}")
    add("synthetic: branching-point F1 @5px, all truth laterals*", f"{images.f1.mean():.3f}")
    add("synthetic, ragged masks: median |error| total length % (per plant)", f"{np.median(rel(plants.noisy_total, plants.true_total)):.2f}")
    add("synthetic, ragged masks: lateral count exact, emerged laterals", f"{(plants.noisy_laterals == plants.true_laterals_emerged).mean():.2f}")
    add("synthetic, ragged masks: branching-point F1 @5px, emerged", f"{images.f1_noisy.mean():.3f}")
    for name, table in (("synthetic", images),):
        ours = np.median(rel(table.ours, table.true_total))
        for base in ("pixels", "skan"):
            b = np.median(rel(table[base], table.true_total))
            add(f"{name}: median |error| total length per image % vs {base}", f"{ours:.2f}", f"{b:.2f}", f"{b / max(ours, 1e-9):.1f}x")
    if DATA.is_dir():
        widths = {"rootnav-osr": measured_widths(osr_files()), "tillmore-barley": measured_widths(barley_files())}
        for name, w in widths.items():
            add(f"{name}: root width in the photos, px (median FWHM across the RSML roots), by order",
                " / ".join(f"order {k}: {v:.2f}" for k, v in w.items()))
        osr, osr_old = rootnav(widths["rootnav-osr"]), rootnav(OLD_WIDTHS)
        till, till_old = tillmore(widths["tillmore-barley"]), tillmore(OLD_WIDTHS)
        add_total_vs_baselines("rootnav-osr, old 7/5 px masks", osr_old)
        add_total_vs_baselines("tillmore-barley, old 7/5 px masks", till_old.groupby("image").first())
        add("rootnav-osr, measured widths: images / plants found = 1", f"{len(osr)} / {(osr.plants == 1).mean():.2f}")
        add("rootnav-osr: median |error| / signed primary length %", signed(osr.primary, osr.true_primary))
        add("rootnav-osr: median |error| / signed lateral count %", signed(osr.laterals, osr.true_laterals))
        add("rootnav-osr: lateral count, median true / ours", f"{osr.true_laterals.median():.0f} / {osr.laterals.median():.0f}")
        add("rootnav-osr: branching-point F1 @5px / @10px", f"{osr.f1.mean():.3f} / {osr.f1_10.mean():.3f}")
        add("rootnav-osr: RSML length in merged stretches (roots closer than the widest render width), median %", f"{np.median(rel(osr.separable_total, osr.true_total)):.2f}")
        add_total_vs_baselines("rootnav-osr, measured widths", osr)
        per_image = till.groupby("image").first()
        add("tillmore-barley, measured widths: images / plants", f"{len(per_image)} / {len(till)}")
        add("tillmore-barley: roots per plant exact (seed points)", f"{(till.roots == till.true_roots).mean():.2f}")
        add("tillmore-barley: median |error| roots per plant (seed points)", f"{np.median(np.abs(till.roots - till.true_roots)):.1f}")
        add("tillmore-barley: median |error| / signed length per plant % (seed points)", signed(till.length, till.true_length))
        add("tillmore-barley, no seeds: plant count exact / every seed found within 40 px (images)",
            f"{(per_image.plants_found == per_image.plants_true).mean():.2f} / {per_image.all_found.mean():.2f}")
        add("tillmore-barley, no seeds: plants found within 40 px of their seed", f"{till.found_roots.notna().mean():.2f}")
        found = till[till.found_roots.notna()]
        add("tillmore-barley, no seeds: roots per plant exact / median |error| (found plants)",
            f"{(found.found_roots == found.true_roots).mean():.2f} / {np.median(np.abs(found.found_roots - found.true_roots)):.1f}")
        add("tillmore-barley, no seeds: median |error| / signed length per plant % (found plants)", signed(found.found_length, found.true_length))
        add("tillmore-barley: RSML length in merged stretches (roots closer than the widest render width), median %", f"{np.median(rel(per_image.separable_total, per_image.true_total)):.2f}")
        add_total_vs_baselines("tillmore-barley, measured widths", per_image)
        for name, files in (("rootnav-osr", osr_files()), ("tillmore-barley (first 20 images)", barley_files()[:20])):
            iso = isolated_roots(files, widths[name.split()[0]])
            for base in ("pixels", "skan"):
                o, b = rel(iso.ours, iso.true), rel(iso[base], iso.true)
                add(f"{name}, each root rendered alone ({len(iso)} roots): length % |error| / signed vs {base}",
                    signed(iso.ours, iso.true), signed(iso[base], iso.true), f"{np.median(b) / max(np.median(o), 1e-9):.1f}x")
    else:
        add("real data", f"skipped: {DATA} is absent")
    scales = scale_table((1000, 2000) if QUICK else (1000, 1500, 2000, 3000))
    s = speed()
    add(f"speed: {s['mp']:.0f} MP, {s['plants']} plants, {s['roots']} roots: s (first call)", f"{s['first']:.2f}")
    add("speed: s per mask after warm-up (whole analysis) vs skan skeleton+summarize", f"{s['ours']:.2f}", f"{s['skan']:.2f}", f"{s['skan'] / s['ours']:.1f}x")
    add("speed: s skeleton + graph + spur pruning vs skan skeleton+summarize", f"{s['graph']:.2f}", f"{s['skan']:.2f}", f"{s['skan'] / s['graph']:.1f}x")
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}} | ours | baseline | ratio")
    for figure, ours, base, ratio in rows:
        print(f"{figure:<{width}} | {ours} | {base} | {ratio}")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; baseline = skeleton pixel count or skan "
          "summed branch distance, same masks)")
    print("* a lateral shorter than its parent's diameter (measured from the parent's centreline) ends inside, or within a\n"
          "  half-width of, the parent's outline: in a mask it is a bump on the outline, which no mask-based method can tell\n"
          "  from one (find_architecture drops such stubs). 'Protrude' counts only the laterals longer than that.")
    print("\nscale: synthetic plates at several scan sizes (truth masks; 'ragged' = blurred 1 px + noise, a fixed-px degradation)")
    print(scales.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
