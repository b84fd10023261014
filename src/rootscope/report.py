"""Pictures of results: the per-image architecture overlay.

:func:`overlay` draws on the mask (or scan): roots coloured by order, branching points, tips,
crossings, plant labels and a scale bar. :func:`label_plants` writes plant labels on a finished
picture (the pipeline's overlays show the persistent plant ids of the ``track`` stage, known only
once every scan of the plate is measured). Colours are RGB; points are converted from (row, col) here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from .architecture import ImageArchitecture

if TYPE_CHECKING:
    from collections.abc import Sequence

#: RGB colour per root order (1 = primary / first order, 2, 3, 4+).
ORDER_COLOURS = {1: (230, 60, 50), 2: (40, 120, 240), 3: (30, 180, 60), 4: (200, 90, 220)}
BRANCH_COLOUR = (255, 200, 0)
TIP_COLOUR = (255, 255, 255)
CROSSING_COLOUR = (255, 0, 255)


def _scale_bar_mm(width_px: int, px_per_mm: float) -> float:
    """A round length (1, 2, 5 x 10^k mm) about a tenth of the image width."""
    target = width_px / 10 / px_per_mm
    k = 10 ** np.floor(np.log10(target))
    return float(max(m for m in (1, 2, 5, 10) if m * k <= max(target, k)) * k)


def _sizes(shape: tuple[int, ...], line_px: int | None = None) -> tuple[int, int, float]:
    """Line width, marker size (px) and font scale for a picture of ``shape``."""
    side = max(shape[:2])
    lw = line_px or max(1, int(round(side / 1000)))
    return lw, 2 * lw + 2, max(0.4, side / 2500)


def label_plants(picture: np.ndarray, seeds_xy: np.ndarray, labels: Sequence[str], line_px: int | None = None) -> np.ndarray:
    """``picture`` (RGB uint8, changed in place and returned) with ``labels[k]`` written beside the seed
    ``seeds_xy[k]`` (x, y in the picture's px): white on a black outline, large enough to read when the
    picture is shown at a third of its size (report thumbnails)."""
    lw, mark, _ = _sizes(picture.shape, line_px)
    font = max(0.5, max(picture.shape[:2]) / 1200)
    bold = max(1, int(round(2 * font)))
    for (x, y), text in zip(np.asarray(seeds_xy, float).reshape(-1, 2), labels):
        at = (int(x) + 3 * mark, max(int(y) - 2 * mark, 12))
        cv2.putText(picture, text, at, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), bold + 2, cv2.LINE_AA)
        cv2.putText(picture, text, at, cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), bold, cv2.LINE_AA)
    return picture


def overlay(arch: ImageArchitecture, background: np.ndarray, px_per_mm: float | None = None, line_px: int | None = None,
            labels: bool = True) -> np.ndarray:
    """RGB uint8 picture of the architecture drawn over ``background``.

    ``background`` is a mask (``H x W`` ints: non-zero shown grey) or an image (float [0, 1] or uint8,
    gray or RGB). ``px_per_mm`` adds a scale bar. Line and marker sizes follow the image size unless
    ``line_px`` is given. ``labels``: write "plant <id>" beside each seed (False: only the seed's cross,
    for :func:`label_plants` to label later).
    """
    bg = np.asarray(background)
    if bg.ndim == 2 and bg.dtype.kind in "iub" and bg.max(initial=0) <= 16:
        base = np.where(bg[..., None] > 0, 90, 20).astype(np.uint8).repeat(3, axis=2)
    else:
        base = np.empty((*bg.shape[:2], 3), np.uint8)
        for top in range(0, bg.shape[0], 1024):  # band by band: no full-size float copy of a large scan
            img = bg[top : top + 1024].astype(np.float32)
            img = img if bg.dtype.kind == "f" else img / 255.0
            img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
            base[top : top + 1024] = np.clip(img * 255 * 0.7, 0, 255).astype(np.uint8)
    out = np.ascontiguousarray(base)
    h, w = out.shape[:2]
    lw, mark, font = _sizes(out.shape, line_px)
    for plant in arch.plants:
        for r in sorted(plant.roots, key=lambda r: r.order):
            pts = np.rint(r.points[:, ::-1] * 16).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], False, ORDER_COLOURS[min(r.order, 4)], lw, cv2.LINE_AA, 4)
        for y, x in plant.branch_points():
            cv2.circle(out, (int(round(x)), int(round(y))), mark, BRANCH_COLOUR, -1, cv2.LINE_AA)
        for y, x in plant.tips():
            cv2.circle(out, (int(round(x)), int(round(y))), mark, TIP_COLOUR, lw, cv2.LINE_AA)
        sy, sx = plant.seed
        cv2.drawMarker(out, (int(sx), int(sy)), (255, 255, 255), cv2.MARKER_CROSS, 4 * mark, lw)
        if labels:
            label_plants(out, np.array([[sx, sy]]), [f"plant {plant.id}"], line_px)
    for y, x in arch.crossings:
        cv2.drawMarker(out, (int(round(x)), int(round(y))), CROSSING_COLOUR, cv2.MARKER_TILTED_CROSS, 3 * mark, lw)
    if px_per_mm:
        bar_mm = _scale_bar_mm(w, px_per_mm)
        length = int(round(bar_mm * px_per_mm))
        x0, y0 = w - length - 20, h - 20
        cv2.line(out, (x0, y0), (x0 + length, y0), (255, 255, 255), max(2, 2 * lw))
        cv2.putText(out, f"{bar_mm:g} mm", (x0, y0 - 3 * lw - 4), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255),
                    max(1, lw), cv2.LINE_AA)
    return out
