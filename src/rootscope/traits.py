"""Measurements biologists publish, from an :class:`~rootscope.architecture.ImageArchitecture`.

Every function returns a tidy pandas table (one row per plant, root, depth bin or class) with
lengths in mm, areas in mm², angles in degrees and positions in image pixels (``*_px`` columns).
``px_per_mm`` is required: a scale is never assumed.

Definitions (per plant): ``primary_length_mm`` is the deepest first-order root; ``lateral_count``
counts second-order roots (``lateral_count_order3`` the third-order ones); ``lateral_density_per_cm``
is the number of laterals on the primary divided by the branched zone (primary length between the
first and last lateral insertion; NaN with fewer than two laterals); ``emergence_angle_deg`` is the
angle between a lateral's first millimetre and its parent's direction towards the tip;
``primary_tip_angle_deg`` is the angle between the primary's last millimetre and gravity (image
down, 0 = straight down); depth and width are the extent of the root system from the seed;
``total_length_mm`` is the length of all roots plus ``overlap_length_mm``, the stretches where the
mask is wide enough to hold a second root running alongside (an estimate from width, see
:func:`rootscope.architecture.overlap_lengths`; the RSML holds the roots without it).
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from .architecture import ImageArchitecture, PlantArchitecture, RootPath
from .errors import InputError

PLANT_COLUMNS = [
    "image", "plant", "seed_x_px", "seed_y_px", "n_roots", "first_order_count", "primary_length_mm",
    "total_length_mm", "lateral_count", "lateral_count_order3", "lateral_density_per_cm",
    "mean_lateral_length_mm", "total_lateral_length_mm", "branched_zone_mm", "mean_emergence_angle_deg",
    "primary_tip_angle_deg", "depth_mm", "width_mm", "width_depth_ratio", "hull_area_mm2",
    "hull_perimeter_mm", "network_area_mm2", "mean_diameter_mm", "median_diameter_mm", "overlap_length_mm", "warning",
]
ROOT_COLUMNS = [
    "image", "plant", "root", "parent", "order", "is_primary", "length_mm", "insertion_mm",
    "emergence_angle_deg", "tip_angle_deg", "mean_diameter_mm", "base_x_px", "base_y_px", "tip_x_px", "tip_y_px",
]
CLASS_COLUMNS = ["image", "class", "name", "area_mm2", "width_mm", "depth_mm", "hull_area_mm2", "hull_perimeter_mm", "n_objects"]
DEFAULT_CLASS_NAMES = {1: "root", 2: "seed", 3: "shoot"}


def _check_scale(px_per_mm: float | None, image: str) -> float:
    if px_per_mm is None or not np.isfinite(px_per_mm) or px_per_mm <= 0:
        raise InputError(
            f"{image}: no valid pixel scale (px_per_mm={px_per_mm}). Pass --px-per-mm "
            "(e.g. 600 dpi = 23.62 px/mm); lengths are never reported in assumed units."
        )
    return float(px_per_mm)


def _direction(points: np.ndarray, start: float, stop: float, from_end: bool = False) -> np.ndarray | None:
    """Unit (row, col) direction of the best line through the stretch [start, stop] px of a polyline,
    measured from its base (or back from its tip with ``from_end``), pointing away from the base."""
    p = points[::-1] if from_end else points
    arc = np.r_[0, np.cumsum(np.hypot(*np.diff(p, axis=0).T))]
    if arc[-1] < 2:
        return None
    i0 = int(np.searchsorted(arc, min(start, arc[-1] / 2)))
    i1 = max(int(np.searchsorted(arc, stop, side="right")), i0 + 3)  # at least three points
    part = p[i0:i1]
    _, _, vt = np.linalg.svd(part - part.mean(axis=0), full_matrices=False)
    d = vt[0] if vt[0] @ (part[-1] - part[0]) >= 0 else -vt[0]
    return -d if from_end else d


def _angle(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


def _parent_direction(parent: RootPath, at_px: float, span: float) -> np.ndarray | None:
    """Direction of the parent towards its tip around ``at_px`` along it."""
    arc = np.r_[0, np.cumsum(np.hypot(*np.diff(parent.points, axis=0).T))]
    i0 = int(np.searchsorted(arc, at_px - span))
    i1 = min(int(np.searchsorted(arc, at_px + span)), len(arc) - 1)
    if i1 <= i0:
        return None
    d = parent.points[i1] - parent.points[i0]
    n = np.hypot(*d)
    return d / n if n > 0 else None


def root_table(arch: ImageArchitecture, px_per_mm: float, image: str = "") -> pd.DataFrame:
    """One row per root: order, parent, length, insertion position along the parent, angles, diameter."""
    mm = _check_scale(px_per_mm, image)
    rows = []
    gravity = np.array([1.0, 0.0])
    for plant in arch.plants:
        for k, r in enumerate(plant.roots):
            emergence = float("nan")
            if r.parent is not None:
                own = _direction(r.points, 0.0, max(mm, 10.0))
                emergence = _angle(own, _parent_direction(plant.roots[r.parent], r.insertion_px, mm / 2))
            rows.append({
                "image": image, "plant": plant.id, "root": k + 1,
                "parent": -1 if r.parent is None else r.parent + 1, "order": r.order,
                "is_primary": k == plant.primary, "length_mm": r.length_px / mm,
                "insertion_mm": r.insertion_px / mm, "emergence_angle_deg": emergence,
                "tip_angle_deg": _angle(_direction(r.points, 0.0, max(mm, 15.0), from_end=True), gravity),
                "mean_diameter_mm": float(np.mean(r.diameter)) / mm,
                "base_x_px": r.base[1], "base_y_px": r.base[0], "tip_x_px": r.tip[1], "tip_y_px": r.tip[0],
            })
    return pd.DataFrame(rows, columns=ROOT_COLUMNS)


def _plant_pixels(arch: ImageArchitecture, mask: np.ndarray) -> np.ndarray:
    """Count of root-mask pixels nearest to each plant's roots (index = plant id; 0 = none)."""
    seeds = np.zeros(mask.shape, np.uint8)  # 0 marks a plant's centreline for the distance transform
    seeds[:] = 1
    owner = np.zeros(mask.shape, np.int32)
    for plant in arch.plants:
        for r in plant.roots:
            pts = np.rint(r.points[:, ::-1] * 16).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(seeds, [pts], False, 0, 1, cv2.LINE_8, 4)
            cv2.polylines(owner, [pts], False, plant.id, 1, cv2.LINE_8, 4)
    counts = np.zeros(len(arch.plants) + 1, np.int64)
    if not (seeds == 0).any():
        return counts
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    zeros = np.argwhere(seeds == 0)
    nearest = owner[zeros[:, 0], zeros[:, 1]]  # labels index the zero pixels in row-major order
    plant_of = nearest[labels[mask] - 1]
    counts += np.bincount(plant_of, minlength=len(counts))[: len(counts)]
    return counts


def _hull(points_rc: np.ndarray) -> tuple[float, float]:
    """Convex-hull area (px²) and perimeter (px) of ``N x 2`` points."""
    if len(points_rc) < 3:
        return 0.0, 0.0
    hull = cv2.convexHull(points_rc[:, ::-1].astype(np.float32))
    return float(cv2.contourArea(hull)), float(cv2.arcLength(hull, True))


def _empty_row(image: str, warning: str) -> dict:
    row = {c: 0 for c in PLANT_COLUMNS}
    row.update(image=image, plant=0, warning=warning, seed_x_px=np.nan, seed_y_px=np.nan,
               lateral_density_per_cm=np.nan, mean_emergence_angle_deg=np.nan, primary_tip_angle_deg=np.nan,
               width_depth_ratio=np.nan, mean_diameter_mm=np.nan, median_diameter_mm=np.nan)
    return row


def plant_table(arch: ImageArchitecture, px_per_mm: float, image: str = "", mask: np.ndarray | None = None) -> pd.DataFrame:
    """One row per plant (see the module docstring for definitions); ``mask`` (bool root mask) adds
    ``network_area_mm2``. An image without plants gives one row with ``plant = 0``, zeros and a
    ``warning``, so that it is visible in the table rather than missing."""
    mm = _check_scale(px_per_mm, image)
    roots = root_table(arch, mm, image)
    if not arch.plants:
        return pd.DataFrame([_empty_row(image, "; ".join(arch.warnings) or "no plant found")], columns=PLANT_COLUMNS)
    area = _plant_pixels(arch, np.asarray(mask, bool)) if mask is not None else None
    rows = []
    for plant in arch.plants:
        own = roots[roots.plant == plant.id]
        row = _plant_row(plant, own, mm)
        row.update(image=image, network_area_mm2=(area[plant.id] / mm**2) if area is not None else np.nan)
        warn = [w for w in arch.warnings if f"plant {plant.id} " in w]
        row["warning"] = "; ".join(warn)
        rows.append(row)
    return pd.DataFrame(rows, columns=PLANT_COLUMNS)


def _plant_row(plant: PlantArchitecture, roots: pd.DataFrame, mm: float) -> dict:
    row = {"plant": plant.id, "seed_x_px": plant.seed[1], "seed_y_px": plant.seed[0], "n_roots": len(plant.roots)}
    if not plant.roots:
        empty = _empty_row("", "")
        empty.update(row)
        return empty
    prim = plant.roots[plant.primary]
    on_primary = sorted(r.insertion_px for r in plant.roots if r.parent == plant.primary)
    zone = (on_primary[-1] - on_primary[0]) / mm if len(on_primary) >= 2 else 0.0
    laterals = roots[roots.order == 2]
    pts = np.vstack([r.points for r in plant.roots] + [plant.seed[None]])
    depth = (pts[:, 0].max() - pts[:, 0].min()) / mm
    width = (pts[:, 1].max() - pts[:, 1].min()) / mm
    hull_area, hull_perimeter = _hull(pts)
    diameters = np.concatenate([r.diameter for r in plant.roots]) / mm
    row.update(
        first_order_count=int((roots.order == 1).sum()),
        primary_length_mm=prim.length_px / mm,
        total_length_mm=plant.total_length_px / mm,
        overlap_length_mm=sum(r.overlap_px for r in plant.roots) / mm,
        lateral_count=len(laterals),
        lateral_count_order3=int((roots.order == 3).sum()),
        lateral_density_per_cm=(len(on_primary) / (zone / 10)) if zone > 0 else np.nan,
        mean_lateral_length_mm=float(laterals.length_mm.mean()) if len(laterals) else 0.0,
        total_lateral_length_mm=float(roots.length_mm[roots.order >= 2].sum()),
        branched_zone_mm=zone,
        mean_emergence_angle_deg=float(laterals.emergence_angle_deg.mean()) if len(laterals) else np.nan,
        primary_tip_angle_deg=float(roots.tip_angle_deg[roots.is_primary].iloc[0]),
        depth_mm=depth, width_mm=width, width_depth_ratio=width / depth if depth > 0 else np.nan,
        hull_area_mm2=hull_area / mm**2, hull_perimeter_mm=hull_perimeter / mm,
        mean_diameter_mm=float(diameters.mean()), median_diameter_mm=float(np.median(diameters)),
    )
    return row


def depth_table(arch: ImageArchitecture, px_per_mm: float, image: str = "", bin_mm: float = 10.0) -> pd.DataFrame:
    """Root length per plant in depth bins of ``bin_mm`` below the seed: ``image, plant, depth_from_mm,
    depth_to_mm, length_mm`` (each polyline segment counted in the bin of its midpoint)."""
    mm = _check_scale(px_per_mm, image)
    rows = []
    for plant in arch.plants:
        seg_len, seg_depth = [], []
        for r in plant.roots:
            d = np.diff(r.points, axis=0)
            seg_len.append(np.hypot(d[:, 0], d[:, 1]))
            seg_depth.append((r.points[:-1, 0] + r.points[1:, 0]) / 2 - plant.seed[0])
        if not seg_len:
            continue
        length = np.concatenate(seg_len) / mm
        depth = np.maximum(np.concatenate(seg_depth), 0) / mm
        k = (depth // bin_mm).astype(int)
        sums = np.bincount(k, length)
        rows += [{"image": image, "plant": plant.id, "depth_from_mm": b * bin_mm, "depth_to_mm": (b + 1) * bin_mm,
                  "length_mm": float(v)} for b, v in enumerate(sums)]
    return pd.DataFrame(rows, columns=["image", "plant", "depth_from_mm", "depth_to_mm", "length_mm"])


def class_table(mask: np.ndarray, px_per_mm: float, image: str = "", names: dict[int, str] | None = None) -> pd.DataFrame:
    """Per class of a class-index mask (0 = background): projected area (mm²), width and depth of its
    extent (mm), convex hull area (mm²) and perimeter (mm), number of connected objects."""
    mm = _check_scale(px_per_mm, image)
    names = DEFAULT_CLASS_NAMES if names is None else names
    m = np.asarray(mask)
    rows = []
    for k in [int(v) for v in np.unique(m) if v != 0]:
        sel = (m == k).astype(np.uint8)
        rr, cc = np.nonzero(sel)
        pts = cv2.findNonZero(cv2.morphologyEx(sel, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) & sel)
        hull_area, hull_perimeter = _hull(pts.reshape(-1, 2)[:, ::-1]) if pts is not None else (0.0, 0.0)
        n_obj = cv2.connectedComponents(sel, connectivity=8)[0] - 1
        rows.append({"image": image, "class": k, "name": names.get(k, f"class{k}"), "area_mm2": len(rr) / mm**2,
                     "width_mm": (cc.max() - cc.min() + 1) / mm, "depth_mm": (rr.max() - rr.min() + 1) / mm,
                     "hull_area_mm2": hull_area / mm**2, "hull_perimeter_mm": hull_perimeter / mm, "n_objects": n_obj})
    return pd.DataFrame(rows, columns=CLASS_COLUMNS)


def measure(arch: ImageArchitecture, px_per_mm: float, image: str = "", mask: np.ndarray | None = None,
            names: dict[int, str] | None = None, root_class: int = 1) -> dict[str, pd.DataFrame]:
    """All tables of one image: ``plants``, ``roots``, ``depth`` and, with the class ``mask``, ``classes``
    (``mask == root_class`` also gives the plants' network area)."""
    root_mask = None if mask is None else np.asarray(mask) == root_class
    tables = {
        "plants": plant_table(arch, px_per_mm, image, root_mask),
        "roots": root_table(arch, px_per_mm, image),
        "depth": depth_table(arch, px_per_mm, image),
    }
    if mask is not None:
        tables["classes"] = class_table(mask, px_per_mm, image, names)
    return tables
