"""The plants of one class mask, as the ``measure`` stage finds them: classes -> seeds -> architecture ->
seedlings (:mod:`rootscope.architecture`, :mod:`rootscope.seedlings`), with the settings of
``[architecture]`` (:class:`rootscope.config.ArchitectureSettings`). The pipeline and the demo call this."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .architecture import ImageArchitecture, PlantArchitecture, find_architecture
from .config import ArchitectureSettings
from .seedlings import REJECTED_COLUMNS, SeedlingRules, judge_plants


def seed_mask(mask: np.ndarray, classes: Mapping[str, int]) -> np.ndarray | None:
    """Where plants start: the ``seed`` class when the mask holds any, else the ``shoot`` class (a
    seedling's shoot sits on its seed), else None (plants then start at the top of their roots)."""
    for name in ("seed", "shoot"):
        if name in classes:
            found = mask == classes[name]
            if found.any():
                return found
    return None


#: Longest gap (mm) that :func:`find_plants` closes between a piece of root and the plant it belongs to.
MAX_JOIN_MM = 5.0
_JOINED = ("piece of another plant", "under another plant", "seed or shoot above a longer root system")


def find_plants(mask: np.ndarray, classes: Mapping[str, int], opts: ArchitectureSettings, px_per_mm: float, *,
                support: np.ndarray | None = None, emerging: np.ndarray | None = None,
                name: str = "") -> tuple[ImageArchitecture, pd.DataFrame]:
    """Plants of a class mask (``classes``: name -> mask value, with ``root``) and the objects rejected as
    not seedlings (:data:`rootscope.seedlings.REJECTED_COLUMNS`; empty with ``opts.seedlings_only`` off).

    A piece of root that the seedling rules find to be part of another plant (a gap in the mask cut it
    off) is joined to it, and a plant that does not start at a seed to a free seed or shoot just above it:
    a root-wide line, at most :data:`MAX_JOIN_MM` long, is drawn into the root mask and the architecture
    found again, once (:func:`join_pieces`, :func:`join_seeds`).
    ``support`` / ``emerging``: branching points found by a detector (``K x 2`` (row, col), see
    :func:`rootscope.architecture.find_architecture`). Lengths in ``opts`` are mm, ``px_per_mm`` the scale.
    """
    roots, seeds = mask == classes["root"], seed_mask(mask, classes)

    def plants_of(root_mask: np.ndarray) -> ImageArchitecture:
        return find_architecture(
            root_mask, seed_mask=seeds, min_area_px=opts.min_area_px, max_hole_px=opts.max_hole_px,
            bridge_px=opts.bridge_at(px_per_mm), spur_factor=opts.spur_factor, smooth_sigma=opts.smooth_sigma,
            min_plant_length_px=opts.min_plant_length_mm * px_per_mm,
            seed_radius_px=None if opts.seed_radius_mm is None else opts.seed_radius_mm * px_per_mm,
            seed_gap_px=opts.seed_gap_mm * px_per_mm, support=support, support_px=opts.branch_support_px,
            emerging=emerging, name=name)

    arch = plants_of(roots)
    if not opts.seedlings_only:
        return arch, pd.DataFrame(columns=REJECTED_COLUMNS)
    rules = SeedlingRules(sown_in_a_row=opts.sown_in_a_row)
    judged, rejected = judge_plants(arch, px_per_mm, rules, image=name)
    joined = join_pieces(roots, arch, rejected, MAX_JOIN_MM * px_per_mm)
    if seeds is not None:
        joined += join_seeds(roots, judged, seeds, MAX_JOIN_MM * px_per_mm)
    if joined:
        judged, rejected = judge_plants(plants_of(roots), px_per_mm, rules, image=name)
    return judged, rejected


def join_seeds(roots: np.ndarray, arch: ImageArchitecture, seeds: np.ndarray, max_px: float) -> int:
    """Draw into ``roots`` (bool, in place) a root-wide line from the top of each plant that does not start
    at a seed to the nearest pixel of ``seeds`` (bool) above it, at most ``max_px`` away and not the seed
    of another plant (within ``max_px / 2`` of it): a seedling whose pale hypocotyl the segmentation
    missed. Returns the number of lines drawn."""
    taken = np.array([p.seed for p in arch.plants if p.seeded]).reshape(-1, 2)
    canvas, drawn = roots.view(np.uint8), 0
    reach = int(np.ceil(max_px))
    for plant in arch.plants:
        if plant.seeded or not plant.roots:
            continue
        points = np.vstack([r.points for r in plant.roots])
        high = points[points[:, 0] <= points[:, 0].min() + max_px / 2]  # its top part
        (t0, c0), (t1, c1) = high.min(axis=0).astype(int), high.max(axis=0).astype(int)
        r0, k0 = max(t0 - reach, 0), max(c0 - reach, 0)
        found = np.argwhere(seeds[r0 : t1 + 1, k0 : c1 + reach + 1]) + (r0, k0)
        if not len(found):
            continue
        gaps, nearest = cKDTree(high).query(found)
        end, top = found[np.argmin(gaps)], high[nearest[np.argmin(gaps)]]
        if gaps.min() > max_px or end[0] > top[0] or (len(taken) and np.hypot(*(taken - end).T).min() <= max_px / 2):
            continue
        _draw_join(canvas, top, end, plant)
        drawn += 1
    return drawn


def _draw_join(canvas: np.ndarray, start: np.ndarray, end: np.ndarray, plant: PlantArchitecture) -> None:
    """A line from ``start`` to ``end`` ((row, col) px) into the uint8 view of a root mask, as wide as the
    primary root of ``plant`` (at least 2 px)."""
    width = plant.roots[plant.primary if plant.primary is not None else 0].diameter
    thickness = max(2, int(round(float(np.median(width)) if len(width) else 2)))
    cv2.line(canvas, (int(round(start[1])), int(round(start[0]))), (int(round(end[1])), int(round(end[0]))), 1,
             thickness)


def join_pieces(roots: np.ndarray, arch: ImageArchitecture, rejected: pd.DataFrame, max_px: float) -> int:
    """Draw into ``roots`` (bool, in place) a root-wide line from the top of each rejected piece to the
    nearest point (seed or root) of the plant it belongs to (``rejected.piece_of``; for a seed or shoot
    above a root system, from that root system's top to the seed); lines longer than ``max_px`` are not
    drawn. Returns the number of lines drawn."""
    drawn = 0
    canvas = roots.view(np.uint8)
    for row in rejected[rejected.reason.isin(_JOINED) & rejected.piece_of.notna()].itertuples():
        piece, whole = arch.plants[int(row.object) - 1], arch.plants[int(row.piece_of) - 1]
        if piece.seeded:
            piece, whole = whole, piece
        if not piece.roots:
            continue
        points = np.vstack([r.points for r in piece.roots])
        top = points[np.argmin(points[:, 0])]
        targets = np.vstack([whole.seed[None], *(r.points for r in whole.roots)])
        gaps = np.hypot(*(targets - top).T)
        if gaps.min() > max_px:
            continue
        # to a seed's centre (the line then ends inside the seed, where roots start), else the nearest point
        _draw_join(canvas, top, whole.seed if whole.seeded else targets[np.argmin(gaps)], piece)
        drawn += 1
    return drawn


def outside_objects(outside: np.ndarray, min_length_px: float, px_per_mm: float, image: str = "") -> pd.DataFrame:
    """Rows of the rejected table (reason ``"outside the plate"``) for the pieces of root class in
    ``outside`` (bool: root pixels off the plate's measured area) at least ``min_length_px`` long (length:
    half the outline, px; from contours, so the cost follows the outlines, not the image size)."""
    contours, _ = cv2.findContours(outside.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    rows = []
    for contour in contours:
        length = cv2.arcLength(contour, True) / 2
        if length < min_length_px:
            continue
        x, y = contour[np.argmin(contour[:, 0, 1]), 0]
        rows.append({"image": image, "object": 0, "x_px": float(x), "y_px": float(y),
                     "length_mm": length / px_per_mm, "reason": "outside the plate", "piece_of": np.nan})
    return pd.DataFrame(rows, columns=REJECTED_COLUMNS)
