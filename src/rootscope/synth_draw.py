"""Rendering of synthetic plate scans: plate, roots, seedlings, lid effects and the scanner.

The plate (agar, wall, label, marker pen, dust) is drawn once in the canonical frame and warped
into each frame; roots, seeds and shoots are drawn directly in frame coordinates from their exact
geometry, so the class mask is exact; scanner effects (background, illumination, blur, noise, JPEG)
stay fixed to the image, not to the plate. Images are float32 RGB in [0, 1]; points are (x, y) px.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .synth_text import draw_text

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
WALL_MM = 1.4  # width of the plate's plastic wall (mm)


@dataclass(frozen=True)
class Palette:
    """Colours (RGB in [0, 1]) of one plate's look."""

    background: tuple[float, float, float]
    background_2: tuple[float, float, float]
    agar: tuple[float, float, float]
    root: tuple[float, float, float]
    root_opacity: float
    wall: tuple[float, float, float]
    seed: tuple[float, float, float]
    cotyledon: tuple[float, float, float]
    hypocotyl: tuple[float, float, float]
    dust: tuple[float, float, float]
    edge_dark: bool


def palette(rng: np.random.Generator, light_roots: bool) -> Palette:
    """A realistic colour scheme: light roots on dark agar (black cloth behind) or dark on backlit agar."""
    if light_roots:
        agar = np.array([0.13, 0.14, 0.15]) + rng.uniform(-0.03, 0.03)
        return Palette(
            background=(0.05, 0.05, 0.06), background_2=(0.09, 0.09, 0.1), agar=tuple(agar),
            root=(0.86, 0.86, 0.8), root_opacity=rng.uniform(0.65, 0.8), wall=(0.55, 0.57, 0.6),
            seed=(0.45, 0.32, 0.18), cotyledon=(0.3, 0.55, 0.16), hypocotyl=(0.7, 0.78, 0.55),
            dust=(0.7, 0.7, 0.68), edge_dark=False,
        )
    looks = (  # backlit teal photo, pale yellow MS agar, neutral grey scan
        ((0.42, 0.6, 0.63), (0.58, 0.6, 0.5), (0.5, 0.69, 0.7)),
        ((0.8, 0.8, 0.74), (0.7, 0.7, 0.64), (0.82, 0.8, 0.66)),
        ((0.7, 0.72, 0.72), (0.6, 0.62, 0.62), (0.74, 0.75, 0.73)),
    )
    bg, bg2, agar = (np.array(c) for c in looks[int(rng.integers(len(looks)))])
    agar = agar * rng.uniform(0.95, 1.03)
    return Palette(
        background=tuple(bg), background_2=tuple(bg2), agar=tuple(agar),
        root=tuple(agar * np.array([0.55, 0.55, 0.5])), root_opacity=rng.uniform(0.55, 0.75),
        wall=tuple(np.minimum(agar * 1.12, 1.0)), seed=(0.36, 0.24, 0.13), cotyledon=(0.24, 0.46, 0.12),
        hypocotyl=(0.55, 0.66, 0.38), dust=(0.15, 0.15, 0.14), edge_dark=True,
    )


# ------------------------------------------------------------------------------ plate (canonical)
def _rounded_rect(shape: tuple[int, int], box: tuple[float, float, float, float], radius: float) -> np.ndarray:
    """uint8 0/255 filled rounded rectangle (x0, y0, x1, y1) px with corner ``radius`` px."""
    out = np.zeros(shape, np.uint8)
    x0, y0, x1, y1 = box
    r = max(radius, 1.0)
    pts = np.array([[x0 + r, y0], [x1 - r, y0], [x1, y0 + r], [x1, y1 - r],
                    [x1 - r, y1], [x0 + r, y1], [x0, y1 - r], [x0, y0 + r]])
    cv2.fillPoly(out, [np.rint(pts * _ONE).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
    for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x1 - r, y1 - r), (x0 + r, y1 - r)):
        cv2.circle(out, (int(cx * _ONE), int(cy * _ONE)), int(r * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
    return out


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random field (float32, about unit std) with ``cells`` blobs across the image."""
    grid = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    big = cv2.resize(grid, (shape[1] * (cells + 3) // cells, shape[0] * (cells + 3) // cells),
                     interpolation=cv2.INTER_CUBIC)
    off = shape[0] // cells
    return big[off: off + shape[0], off: off + shape[1]] / 0.8


def _nonzero(layer: np.ndarray) -> np.ndarray:
    """Flat indices of the non-zero pixels of a uint8 image (OpenCV's scan is much faster than NumPy's)."""
    found = cv2.findNonZero(layer)
    if found is None:
        return np.empty(0, np.int64)
    xy = found.reshape(-1, 2).astype(np.int64)
    return xy[:, 1] * layer.shape[1] + xy[:, 0]


def paint(rgb: np.ndarray, coverage: np.ndarray, colour, opacity: float = 1.0) -> None:
    """Blend ``colour`` into ``rgb`` in place where the uint8 ``coverage`` (0-255) is non-zero."""
    idx = _nonzero(coverage)
    if len(idx):
        a = coverage.reshape(-1)[idx].astype(np.float32)[:, None] * (opacity / 255)
        flat = rgb.reshape(-1, 3)
        flat[idx] = flat[idx] * (1 - a) + a * np.asarray(colour, np.float32)


def plate_layer(
    rng: np.random.Generator, size: int, plate: tuple[float, float, float, float], px_per_mm: float,
    colours: Palette, label_text: str, background: np.ndarray,
) -> np.ndarray:
    """The plate in its canonical position over ``background``: float32 RGB ``size x size x 3``.

    ``plate`` is the outer box (x0, y0, x1, y1) px. Agar with texture and meniscus, the plastic
    wall, a barcode label on the right, marker-pen corners and handwriting, dust and bubbles.
    """
    mm = px_per_mm
    shape = (size, size)
    x0, y0, x1, y1 = plate
    wall = WALL_MM * mm
    inner_box = (x0 + wall, y0 + wall, x1 - wall, y1 - wall)
    # smooth fields at a quarter of the size: agar texture and the meniscus at the wall
    low = max(size // 4, 16)
    f = low / size
    inner_low = _rounded_rect((low, low), tuple(v * f for v in inner_box), 4 * mm * f)
    dist = cv2.distanceTransform((inner_low > 127).astype(np.uint8), cv2.DIST_L2, 5) / f
    meniscus = np.exp(-dist / (1.2 * mm)) * (0.1 if colours.agar[0] > 0.3 else 0.35)
    field = 1 + 0.006 * smooth_noise(rng, (low, low), 4) + 0.006 * smooth_noise(rng, (low, low), 40) + meniscus
    field = cv2.resize(field.astype(np.float32), shape, interpolation=cv2.INTER_LINEAR)
    rgb = background.copy()
    outer = _rounded_rect(shape, plate, 5 * mm)
    agar = field[..., None] * np.asarray(colours.agar, np.float32)
    cv2.copyTo(agar, (outer == 255).astype(np.uint8), rgb)
    paint(rgb, np.where(outer < 255, outer, 0).astype(np.uint8), colours.wall, 0.9)
    inner = _rounded_rect(shape, inner_box, 4 * mm)
    paint(rgb, cv2.subtract(outer, inner), colours.wall, 0.8)
    paint(rgb, cv2.morphologyEx(inner, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)), (0, 0, 0), 0.3)
    _marker_pen(rng, rgb, plate, mm, label_text)
    _dust(rng, rgb, plate, mm, colours)
    _label(rng, rgb, plate, mm, label_text)
    return np.clip(rgb, 0, 1, out=rgb)


def plate_alpha(size: int, plate: tuple[float, float, float, float], px_per_mm: float) -> np.ndarray:
    """Coverage (float32 0-1, ``size x size``) of the plate's outer outline (box x0, y0, x1, y1 px) as
    :func:`plate_layer` draws it: a rounded square with 5 mm corners, anti-aliased."""
    outer = _rounded_rect((size, size), plate, 5 * px_per_mm)
    return outer.astype(np.float32) * np.float32(1 / 255)


def _marker_pen(rng: np.random.Generator, rgb: np.ndarray, plate, mm: float, text: str) -> None:
    """Black marker arcs on some corners and a handwritten line near the bottom (plate-fixed)."""
    x0, y0, x1, y1 = plate
    ink = np.zeros(rgb.shape[:2], np.uint8)
    r = 5 * mm
    corners = ((x0 + r, y0 + r, 180), (x1 - r, y0 + r, 270), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90))
    for cx, cy, start in corners:
        if rng.random() < 0.75:
            inset = r - 2.3 * mm
            centre = (int(cx * _ONE), int(cy * _ONE))
            cv2.ellipse(ink, centre, (int(inset * _ONE), int(inset * _ONE)), 0, start - 40, start + 130, 255,
                        max(2, int(0.7 * mm)), cv2.LINE_AA, _SHIFT)
    draw_text(ink, text, (x0 + 8 * mm, y1 - 6 * mm), 1.1 * mm, 255, int(0.25 * mm), slant=0.25, wobble=0.25)
    paint(rgb, ink, (0.05, 0.05, 0.12), 0.9)


def _dust(rng: np.random.Generator, rgb: np.ndarray, plate, mm: float, colours: Palette) -> None:
    """Dust specks and small air bubbles in the agar."""
    x0, y0, x1, y1 = plate
    specks = np.zeros(rgb.shape[:2], np.uint8)
    for _ in range(int(rng.integers(20, 45))):
        c = (int(rng.uniform(x0, x1) * _ONE), int(rng.uniform(y0, y1) * _ONE))
        cv2.circle(specks, c, int(rng.uniform(0.04, 0.14) * mm * _ONE) + _ONE // 2, int(rng.integers(120, 255)), -1,
                   cv2.LINE_AA, _SHIFT)
    paint(rgb, specks, colours.dust)
    bubbles = np.zeros(rgb.shape[:2], np.uint8)
    for _ in range(int(rng.integers(3, 10))):
        c = (int(rng.uniform(x0 + 5 * mm, x1 - 5 * mm) * _ONE), int(rng.uniform(y0 + 5 * mm, y1 - 5 * mm) * _ONE))
        cv2.circle(bubbles, c, int(rng.uniform(0.2, 0.6) * mm * _ONE), 255, 1, cv2.LINE_AA, _SHIFT)
    paint(rgb, bubbles, (0, 0, 0), 0.25)


def _label(rng: np.random.Generator, rgb: np.ndarray, plate, mm: float, text: str) -> None:
    """A vertical paper label with a barcode and text stuck on the right of the plate."""
    x0, y0, x1, y1 = plate
    width, height = int(10 * mm), int(55 * mm)
    sticker = np.full((width, height), 237, np.uint8)  # drawn landscape, then turned upright
    cv2.rectangle(sticker, (int(0.8 * mm), int(0.8 * mm)), (height - int(0.8 * mm), width - int(0.8 * mm)),
                  12, max(1, int(0.5 * mm)))
    x = 3 * mm
    bar_top, bar_bottom = int(1.8 * mm), int(6.0 * mm)
    while x < 0.55 * height:
        w = rng.choice([0.18, 0.3, 0.45]) * mm
        cv2.rectangle(sticker, (int(x), bar_top), (int(x + w), bar_bottom), 12, -1)
        x += w + rng.choice([0.18, 0.3, 0.45]) * mm
    digits = "".join(str(d) for d in rng.integers(0, 10, 12))
    draw_text(sticker, digits, (3 * mm, 8.2 * mm), 0.6 * mm, 25)
    draw_text(sticker, text, (0.6 * height, 5.5 * mm), 0.85 * mm, 25, int(0.15 * mm))
    upright = np.rot90(sticker).astype(np.float32) / 255  # height x width
    top, left = int(y0 + 14 * mm), int(x1 - 5 * mm - width)
    region = rgb[top: top + upright.shape[0], left: left + upright.shape[1]]
    region[:] = region * 0.08 + upright[..., None] * np.array([0.97, 0.97, 0.95], np.float32) * 0.92


# ------------------------------------------------------------------------------- scanner (fixed)
def _low_res(values: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a small smooth field to ``size x size`` (float32)."""
    return cv2.resize(values.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def scanner_background(rng: np.random.Generator, size: int, colours: Palette) -> np.ndarray:
    """What the scanner sees around the plate: a smooth two-colour gradient (float32 RGB)."""
    t = np.linspace(0, 1, 16)
    direction = rng.uniform(0.3, 1.0)
    ramp = np.clip(direction * t[:, None] + (1 - direction) * t[None, :], 0, 1)[..., None]
    a, b = np.asarray(colours.background), np.asarray(colours.background_2)
    return _low_res(a * (1 - ramp) + b * ramp, size)


def illumination(rng: np.random.Generator, size: int, strength: float) -> np.ndarray:
    """Multiplicative illumination field (float32 ``size x size``): gradient plus vignetting."""
    t = np.linspace(-1, 1, 32)
    gx, gy = rng.uniform(-1, 1, 2) * strength
    r2 = t[None, :] ** 2 + t[:, None] ** 2
    return _low_res(1 + gx * t[None, :] + gy * t[:, None] - 0.5 * strength * r2, size)


def place_plate(layer: np.ndarray, forward: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The frame's view: the canonical plate ``layer`` moved by the 2x3 ``forward`` matrix; where the
    moved layer does not reach, the scanner ``background`` shows."""
    image = background.copy()
    size = background.shape[1], background.shape[0]
    cv2.warpAffine(layer, forward, size, dst=image, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    return image


# ------------------------------------------------------------------------------------- roots
def draw_roots(
    image: np.ndarray, mask: np.ndarray, lines: list[np.ndarray], radii: list[np.ndarray],
    opacity: list[np.ndarray], hairs: list[np.ndarray], hair_px: float, colours: Palette,
    rng: np.random.Generator,
) -> None:
    """Draw roots in place.

    ``lines`` are dense (x, y) polylines (<= 1 px apart) in frame px; ``radii``, ``opacity`` and
    ``hairs`` (root-hair density, 0-1) are per point. Pixels within the radius of a centre line, and
    the centre line itself, become class 1 in ``mask``; the image gets an anti-aliased, tube-shaded
    root with a fuzz of root hairs about ``hair_px`` long (hairs are not in the mask). Where roots
    cross, the nearer centre line wins.
    """
    if not lines:
        return
    h, w = mask.shape
    pts = np.vstack(lines)
    rad, opa, hair = np.concatenate(radii), np.concatenate(opacity), np.concatenate(hairs)
    pad = int(np.ceil(rad.max() + 3 * hair_px)) + 2
    lo = np.floor(pts.min(axis=0)).astype(int) - pad
    hi = np.ceil(pts.max(axis=0)).astype(int) + pad
    bx0, by0, bx1, by1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)
    if bx1 <= bx0 or by1 <= by0:
        return
    bw, bh = bx1 - bx0, by1 - by0
    local = pts - [bx0, by0]
    pix = np.rint(local).astype(np.int64)
    inside = (pix[:, 0] >= 0) & (pix[:, 0] < bw) & (pix[:, 1] >= 0) & (pix[:, 1] < bh)
    if not inside.any():
        return
    flat = pix[inside, 1] * bw + pix[inside, 0]
    local, rad, opa, hair = local[inside], rad[inside], opa[inside], hair[inside]
    # one sample per centre-line pixel: the thickest (then the first) wins
    order = np.lexsort((-rad, flat))
    first = np.r_[True, flat[order][1:] != flat[order][:-1]]
    keep = order[first]
    flat, near = flat[keep], local[keep].astype(np.float32)
    rad, opa, hair = rad[keep].astype(np.float32), opa[keep].astype(np.float32), hair[keep].astype(np.float32)
    centre = np.full(bh * bw, 255, np.uint8)
    centre[flat] = 0
    _, labels = cv2.distanceTransformWithLabels(centre.reshape(bh, bw), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    index = labels - 1  # labels number the zero pixels in raster order = sorted order of `flat`
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    dist = np.hypot(xx - near[index, 0], yy - near[index, 1])
    r = rad[index]
    cover = np.clip(r - dist + 0.5, 0, 1)
    tube = np.sqrt(np.clip(1 - (dist / r) ** 2, 0, 1))
    profile = (1 - 0.3 * tube) if colours.edge_dark else (0.55 + 0.45 * tube)
    alpha = cover * opa[index] * profile
    # root hairs: a fuzz that fades with distance outside the root, broken into strands by noise
    strands = rng.random((bh, bw), dtype=np.float32)
    fuzz = hair[index] * np.exp(-np.maximum(dist - r, 0) / hair_px) * (1 - cover) * strands**2 * 0.9
    alpha = (alpha + fuzz * (1 - alpha))[..., None]
    view = image[by0:by1, bx0:bx1]
    view[:] = view * (1 - alpha) + np.asarray(colours.root, np.float32) * alpha
    inner = (dist <= r) | (centre.reshape(bh, bw) == 0)
    mask[by0:by1, bx0:bx1][inner] = 1


def _crop_box(centre: np.ndarray, half: float, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    x0, y0 = max(int(centre[0] - half), 0), max(int(centre[1] - half), 0)
    x1, y1 = min(int(centre[0] + half), shape[1]), min(int(centre[1] + half), shape[0])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _fixed(point: np.ndarray, origin: tuple[int, int]) -> tuple[int, int]:
    return int(round((point[0] - origin[0]) * _ONE)), int(round((point[1] - origin[1]) * _ONE))


def draw_seedling(
    image: np.ndarray, mask: np.ndarray, seed: np.ndarray, seed_axes: tuple[float, float], seed_angle: float,
    hypocotyl: np.ndarray, cotyledons: list[tuple[np.ndarray, tuple[float, float], float]], stem_px: float,
    colours: Palette,
) -> None:
    """Draw shoot (class 3: hypocotyl line from ``seed`` to ``hypocotyl`` and cotyledon ellipses) and
    then the seed coat (class 2) in place. Points are (x, y) frame px; angles in degrees."""
    half = float(np.max(np.abs(hypocotyl - seed))) + 4 * max(seed_axes[0], 1) + 3 * max(c[1][0] for c in cotyledons)
    box = _crop_box(seed, half, mask.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    origin = (x0, y0)
    view, mview = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    shoot_a, shoot_m = np.zeros(mview.shape, np.uint8), np.zeros(mview.shape, np.uint8)
    stem = max(1, int(round(stem_px)))
    for canvas, kind in ((shoot_a, cv2.LINE_AA), (shoot_m, cv2.LINE_8)):
        cv2.line(canvas, _fixed(seed, origin), _fixed(hypocotyl, origin), 255, stem, kind, _SHIFT)
        for centre, axes, angle in cotyledons:
            cv2.line(canvas, _fixed(hypocotyl, origin), _fixed(centre, origin), 255, max(1, stem - 1), kind, _SHIFT)
            cv2.ellipse(canvas, _fixed(centre, origin), (int(axes[0] * _ONE), int(axes[1] * _ONE)), angle, 0, 360,
                        255, -1, kind, _SHIFT)
    a = shoot_a.astype(np.float32)[..., None] / 255
    # leaves: darker at the margin, lighter inside, with a plant-specific shade of green
    inside = cv2.GaussianBlur(shoot_a, (0, 0), max(stem_px * 0.8, 0.7)).astype(np.float32)[..., None] / 255
    green = np.asarray(colours.cotyledon, np.float32) * (0.75 + 0.35 * inside)
    view[:] = view * (1 - 0.95 * a) + 0.95 * a * green
    stem_a = np.zeros(mview.shape, np.uint8)
    cv2.line(stem_a, _fixed(seed, origin), _fixed(hypocotyl, origin), 255, stem, cv2.LINE_AA, _SHIFT)
    s = stem_a.astype(np.float32)[..., None] / 255
    view[:] = view * (1 - 0.6 * s) + 0.6 * s * np.asarray(colours.hypocotyl, np.float32)
    mview[shoot_m > 0] = 3
    seed_a, seed_m = np.zeros(mview.shape, np.uint8), np.zeros(mview.shape, np.uint8)
    axes = (int(seed_axes[0] * _ONE), int(seed_axes[1] * _ONE))
    cv2.ellipse(seed_a, _fixed(seed, origin), axes, seed_angle, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
    cv2.ellipse(seed_m, _fixed(seed, origin), axes, seed_angle, 0, 360, 255, -1, cv2.LINE_8, _SHIFT)
    a = seed_a.astype(np.float32)[..., None] / 255
    inner = cv2.erode(seed_a, np.ones((3, 3), np.uint8)).astype(np.float32)[..., None] / 255
    brown = np.asarray(colours.seed, np.float32)
    view[:] = view * (1 - a) + a * brown * (0.75 + 0.25 * inner)
    mview[seed_m > 0] = 2


# ------------------------------------------------------------------------------- lid and scanner
def condensation(
    rng: np.random.Generator, image: np.ndarray, plate_corners: np.ndarray, px_per_mm: float, amount: float,
) -> None:
    """Water droplets on the lid (they change from frame to frame), inside the plate quad (frame px)."""
    n = int(amount * rng.uniform(100, 400))
    if n == 0:
        return
    shade = np.full(image.shape[:2], 128, np.uint8)
    u = rng.random(n)
    v = rng.random(n) ** 2.5  # droplets gather near the top edge
    tl, tr, br, bl = plate_corners
    centres = (tl[None] * ((1 - u) * (1 - v))[:, None] + tr[None] * (u * (1 - v))[:, None]
               + br[None] * (u * v)[:, None] + bl[None] * ((1 - u) * v)[:, None])
    radii = rng.uniform(0.1, 0.9, n) ** 1.5 * px_per_mm + 1.0
    for (cx, cy), r in zip(centres, radii):
        c = (int(cx * _ONE), int(cy * _ONE))
        cv2.circle(shade, c, int(r * _ONE), 131, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(shade, c, int(r * _ONE), 119, 1, cv2.LINE_AA, _SHIFT)
    idx = _nonzero(cv2.absdiff(shade, 128))
    flat = image.reshape(-1, 3)
    flat[idx] *= (shade.reshape(-1)[idx].astype(np.float32) / 128)[:, None]


def smudges(rng: np.random.Generator, image: np.ndarray, plate_corners: np.ndarray, px_per_mm: float) -> None:
    """A few greasy fingerprints on the lid: soft hazy ellipses with ridge texture (frame-specific)."""
    tl, tr, br, bl = plate_corners
    for _ in range(int(rng.integers(0, 3))):
        u, v = rng.uniform(0.1, 0.9, 2)
        centre = tl * (1 - u) * (1 - v) + tr * u * (1 - v) + br * u * v + bl * (1 - u) * v
        half = int(rng.uniform(5, 9) * px_per_mm)
        box = _crop_box(centre, half, image.shape[:2])
        if box is None:
            continue
        x0, y0, x1, y1 = box
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = (xx - centre[0]) / half, (yy - centre[1]) / (0.7 * half)
        r = np.sqrt(dx**2 + dy**2)
        ridges = 0.5 + 0.5 * np.sin(r * half / (0.25 * px_per_mm) * 2 * np.pi)
        haze = (np.exp(-(r**2) * 3) * (0.03 + 0.03 * ridges))[..., None]
        view = image[y0:y1, x0:x1]
        view[:] = view * (1 - haze) + haze * 0.9


def finish(
    rng: np.random.Generator, image: np.ndarray, light: np.ndarray, blur_px: float, noise: float,
    jpeg_quality: int | None,
) -> np.ndarray:
    """The scanner: illumination, optical blur (sigma px), sensor noise (std: luminance at full and
    colour at half resolution), 8-bit quantisation and JPEG artefacts."""
    image *= (light * rng.uniform(0.97, 1.03))[..., None]
    if blur_px > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur_px)
    h, w = image.shape[:2]
    cv2.setRNGSeed(int(rng.integers(2**31)))  # OpenCV's generator is 4x faster than NumPy's here
    grain = np.empty((h, w), np.float32)
    cv2.randn(grain, 0.0, 0.8 * noise)
    colour = np.empty(((h + 1) // 2, (w + 1) // 2, 3), np.float32)
    cv2.randn(colour, (0.0, 0.0, 0.0), (0.6 * noise,) * 3)
    image += grain[..., None]
    image += cv2.resize(colour, (w, h), interpolation=cv2.INTER_LINEAR)
    image8 = cv2.convertScaleAbs(np.maximum(image, 0, out=image), alpha=255.0)
    if jpeg_quality:
        bgr = cv2.cvtColor(image8, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        image8 = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.multiply(image8, np.float32(1 / 255), dtype=np.float32)


def overlay(image: np.ndarray, mask: np.ndarray, branch_xy: np.ndarray, tip_xy: np.ndarray) -> np.ndarray:
    """Ground truth over the scan (uint8 RGB): roots red, seeds yellow, shoots green, branch points
    blue circles, tips magenta circles."""
    out = (np.clip(image, 0, 1) * 255).astype(np.uint8).copy()
    colours = {1: (230, 30, 30), 2: (250, 220, 0), 3: (40, 220, 40)}
    for value, colour in colours.items():
        out[mask == value] = (0.3 * out[mask == value] + 0.7 * np.array(colour)).astype(np.uint8)
    radius = max(4, mask.shape[0] // 250)
    for points, colour in ((branch_xy, (30, 80, 255)), (tip_xy, (255, 0, 255))):
        for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
            cv2.circle(out, (int(round(x * _ONE)), int(round(y * _ONE))), radius * _ONE, colour,
                       max(1, radius // 3), cv2.LINE_AA, _SHIFT)
    return out
