"""Person-like scribbles from a ground-truth class mask, for tests, benchmarks and the demo.

A person training ilastik paints a few thin strokes per class: along roots, across a seed, along a
shoot, and through the background, often right next to the roots. We imitate that: for each class
we take the centre lines of its region (the skeleton of the region shrunk by ``margin`` pixels; for
background also the line at ``margin`` pixels from the other classes), cut short pieces of about
``stroke_px`` pixels out of them around random points, and draw them ``width`` pixels wide, until the
class has its share of ``fraction`` of the image. Strokes lie inside their class (clipped to it).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from skimage.morphology import skeletonize

from .errors import InputError


def mask_to_labels(mask: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Relabel a truth mask: pixels of mask value ``classes[i]`` get label ``i + 1`` (others 0), uint8."""
    lut = np.zeros(256, np.uint8)
    for i, value in enumerate(classes):
        lut[int(value)] = i + 1
    return lut[np.asarray(mask, np.uint8)]


def _centre_lines(region: np.ndarray, margin: int, near_others: bool) -> np.ndarray:
    """Candidate stroke pixels of one class region (bool)."""
    inner = cv2.erode(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    lines = skeletonize(inner > 0) if inner.any() else skeletonize(region)
    if near_others:
        dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
        lines |= np.abs(dist - 2 * margin) < 0.5
    return lines if lines.any() else region.copy()


def make_scribbles(
    mask: np.ndarray,
    classes: Sequence[int] | None = None,
    fraction: float = 0.005,
    width: int = 2,
    stroke_px: int = 40,
    margin: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Thin strokes per class; uint8 label image with 0 = unlabelled, ``i + 1`` = ``classes[i]``.

    ``mask`` holds truth class values (e.g. synth: 0 background, 1 root, 2 seed, 3 shoot).
    ``classes`` lists the mask values in label order (default: the non-zero values present, then 0).
    About ``fraction`` of the image is painted, split evenly over the classes (a small class gets at
    most a third of its pixels). ``width`` and ``stroke_px`` are the stroke width and length (px).
    Background (mask value 0) strokes also run ``2 * margin`` px beside the other classes.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"truth mask must be H x W (got shape {mask.shape}).")
    present = [int(v) for v in np.unique(mask)]
    if classes is None:
        classes = [v for v in present if v != 0] + ([0] if 0 in present else [])
    rng = np.random.default_rng(seed)
    labels = np.zeros(mask.shape, np.uint8)
    budget = fraction * mask.size / len(classes)
    brush = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)) if width > 1 else np.ones((1, 1), np.uint8)
    for i, value in enumerate(classes):
        region = mask == value
        if not region.any():
            continue
        target = min(budget, region.sum() / 3)
        lines = _centre_lines(region, margin, near_others=value == 0)
        rows, cols = np.nonzero(lines)
        painted = np.zeros(mask.shape, bool)
        count = 0
        half = stroke_px // 2
        for start in rng.permutation(rows.size):
            r, c = rows[start], cols[start]
            near = (np.abs(rows - r) <= half) & (np.abs(cols - c) <= half)
            r0, c0 = max(r - half - width, 0), max(c - half - width, 0)
            window = (slice(r0, r + half + width + 1), slice(c0, c + half + width + 1))
            stroke = np.zeros(region[window].shape, np.uint8)
            stroke[rows[near] - r0, cols[near] - c0] = 1
            new = cv2.dilate(stroke, brush).astype(bool) & region[window] & ~painted[window]
            if count and count + new.sum() > target:
                break
            painted[window] |= new
            count += int(new.sum())
        labels[painted > 0] = i + 1
    return labels


def add_corrections(
    labels: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray,
    budget_px: int,
    width: int = 2,
    stroke_px: int = 40,
    seed: int = 0,
) -> np.ndarray:
    """One round of ilastik-style corrections: strokes where the prediction is wrong.

    ``labels``, ``predicted`` and ``truth`` are uint8 H x W in label values (0 = unlabelled in
    ``labels``; 1..K in the other two, see :func:`mask_to_labels`). Wrong regions are visited largest
    first (ties in random order, seeded); each gets a stroke of at most ``stroke_px`` px along its centre
    line, ``width`` px wide, in its true class, until ``budget_px`` new pixels are painted. Returns a new
    label image.
    """
    out = np.array(labels, np.uint8, copy=True)
    wrong = ((predicted != truth) & (truth > 0) & (out == 0)).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(wrong, connectivity=8)
    if n <= 1:
        return out
    rng = np.random.default_rng(seed)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = 1 + np.lexsort((rng.random(areas.size), -areas))
    brush = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)) if width > 1 else np.ones((1, 1), np.uint8)
    painted = 0
    for i in order:
        x, y, w, h = (int(v) for v in stats[i, :4])
        pad = width
        r0, c0 = max(y - pad, 0), max(x - pad, 0)
        r1, c1 = min(y + h + pad, out.shape[0]), min(x + w + pad, out.shape[1])
        region = comp[r0:r1, c0:c1] == i
        value = int(np.bincount(truth[r0:r1, c0:c1][region]).argmax())
        lines = skeletonize(region) if region.sum() > 4 else region
        rows, cols = np.nonzero(lines)
        centre = rng.integers(rows.size)
        near = (np.abs(rows - rows[centre]) <= stroke_px // 2) & (np.abs(cols - cols[centre]) <= stroke_px // 2)
        stroke = np.zeros(region.shape, np.uint8)
        stroke[rows[near], cols[near]] = 1
        stroke = cv2.dilate(stroke, brush).astype(bool) & (truth[r0:r1, c0:c1] == value) & (out[r0:r1, c0:c1] == 0)
        if painted and painted + stroke.sum() > budget_px:
            break
        out[r0:r1, c0:c1][stroke] = value
        painted += int(stroke.sum())
    return out
