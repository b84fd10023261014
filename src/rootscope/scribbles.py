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
        painted = np.zeros(mask.shape, np.uint8)
        for start in rng.permutation(rows.size):
            if painted.sum() >= target:
                break
            r, c = rows[start], cols[start]
            near = (np.abs(rows - r) <= stroke_px // 2) & (np.abs(cols - c) <= stroke_px // 2)
            stroke = np.zeros(mask.shape, np.uint8)
            stroke[rows[near], cols[near]] = 1
            painted |= cv2.dilate(stroke, brush) & region
        labels[painted > 0] = i + 1
    return labels
