"""Camera effects of synthetic plate photos: zoom, perspective tilt, exposure, white balance, the bench.

A camera above a bench sees the plate differently from one photo to the next: the zoom changes, the
camera tilts a little (a homography), the exposure and white balance change, and the bench around
the plate (texture, pen marks, dots, tape, notes) shows. Geometry: the *bench* coordinates are the
pixels of frame 0; a frame's camera maps bench px to frame px by ``zoom @ tilt`` (identity for
frame 0), and the plate is first moved on the bench (rotation and shift, see
:mod:`rootscope.synth`). All matrices are 3 x 3 float64 in OpenCV's ``(x, y)`` convention.

Everything here is drawn from generators that :mod:`rootscope.synth` seeds separately, so switching
an effect on never changes the plants or the default series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .synth_draw import Palette, paint, smooth_noise
from .synth_text import draw_text

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class CameraView:
    """How one frame's camera saw the bench.

    Attributes
    ----------
    matrix : np.ndarray
        3 x 3 float64, bench (= frame 0) px ``(x, y, 1)`` to this frame's px: ``zoom_matrix @ tilt``.
    zoom : float
        Uniform scale factor about the image centre (1 = as frame 0; 0.8 = the plate looks 20 % smaller).
    tilt_px : np.ndarray
        4 x 2 float64 displacement (px, before the zoom) of the image corners (top-left, top-right,
        bottom-right, bottom-left) that defines the perspective tilt.
    gain : float
        Exposure gain applied to the scene (1 = unchanged).
    offset : float
        Added after the gain (black level / flare), in image units (1 = white).
    white_balance : np.ndarray
        Per-channel (R, G, B) gains, float64; below 1 in R and above in B is bluish.
    """

    matrix: np.ndarray = field(default_factory=lambda: np.eye(3))
    zoom: float = 1.0
    tilt_px: np.ndarray = field(default_factory=lambda: np.zeros((4, 2)))
    gain: float = 1.0
    offset: float = 0.0
    white_balance: np.ndarray = field(default_factory=lambda: np.ones(3))


# ------------------------------------------------------------------------------------ geometry
def image_corners(size: int) -> np.ndarray:
    """4 x 2 corner pixel centres (x, y) of a ``size`` px square image: TL, TR, BR, BL."""
    e = float(size - 1)
    return np.array([[0.0, 0.0], [e, 0.0], [e, e], [0.0, e]])


def zoom_matrix(zoom: float, size: int) -> np.ndarray:
    """3 x 3 scale by ``zoom`` about the centre of a ``size`` px image."""
    c = (size - 1) / 2.0
    return np.array([[zoom, 0.0, c * (1 - zoom)], [0.0, zoom, c * (1 - zoom)], [0.0, 0.0, 1.0]])


def tilt_matrix(tilt_px: np.ndarray, size: int) -> np.ndarray:
    """3 x 3 homography that moves the image corners by ``tilt_px`` (4 x 2 px, order of :func:`image_corners`)."""
    if not np.any(tilt_px):
        return np.eye(3)
    src = image_corners(size)
    return homography(src, src + tilt_px)


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3 x 3 homography (float64, last entry 1) that maps 4 x 2 points ``src`` exactly onto ``dst``
    (``cv2.getPerspectiveTransform`` in double precision)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    h = np.linalg.solve(np.array(rows, np.float64), np.array(rhs, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def project(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map N x 2 (x, y) points by a 3 x 3 homography (with the perspective division)."""
    h = points @ matrix[:2, :2].T + matrix[:2, 2]
    w = points @ matrix[2, :2] + matrix[2, 2]
    return h / w[:, None]


def local_scale(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Linear scale (px per px: square root of the Jacobian determinant) of a homography at N x 2 points.

    For ``H`` with ``w = h20 x + h21 y + h22`` the Jacobian determinant is ``det(H) / w**3``.
    """
    w = points @ matrix[2, :2] + matrix[2, 2]
    return np.sqrt(np.abs(np.linalg.det(matrix) / w**3))


def draw_view(
    rng: np.random.Generator, index: int, size: int, max_zoom: float, max_tilt: float, exposure: float,
    white_balance: float,
) -> CameraView:
    """The camera of frame ``index``: zoom and tilt for frames after the first, exposure and colour for all.

    Parameters
    ----------
    rng : np.random.Generator
        The frame's camera generator.
    index : int
        Frame number (0 = the reference: no zoom, no tilt).
    size : int
        Image side (px).
    max_zoom : float
        Zoom factor drawn uniformly in ``[1 - max_zoom, 1 + max_zoom]``.
    max_tilt : float
        Corner displacement up to ``max_tilt * size`` px in x and in y, each corner on its own.
    exposure : float
        Gain drawn in ``[1 - exposure, 1 + exposure]``, offset in ``[-exposure / 4, exposure / 4]``.
    white_balance : float
        Colour temperature shift: R gain ``1 + white_balance * t``, B gain ``1 - white_balance * t``,
        G gain ``1 + 0.25 * white_balance * u``; ``t`` in [-1, -0.5] for frame 0 (bluish) and in
        [0.3, 1] later (yellowish), ``u`` in [-1, 1].

    Returns
    -------
    CameraView
    """
    zoom, tilt = 1.0, np.zeros((4, 2))
    if index > 0:
        zoom = float(rng.uniform(1 - max_zoom, 1 + max_zoom))
        tilt = rng.uniform(-1, 1, (4, 2)) * max_tilt * size
    matrix = zoom_matrix(zoom, size) @ tilt_matrix(tilt, size) if index > 0 else np.eye(3)
    gain = float(rng.uniform(1 - exposure, 1 + exposure))
    offset = float(rng.uniform(-0.25, 0.25) * exposure)
    t = rng.uniform(-1.0, -0.5) if index == 0 else rng.uniform(0.3, 1.0)
    tint = rng.uniform(-1, 1) * 0.25
    balance = np.array([1 + white_balance * t, 1 + white_balance * tint, 1 - white_balance * t])
    return CameraView(matrix=matrix, zoom=zoom, tilt_px=tilt, gain=gain, offset=offset, white_balance=balance)


def bench_pad(size: int, max_zoom: float, max_tilt: float) -> int:
    """Margin (px) the bench must reach beyond frame 0 so that every zoomed-out, tilted view is covered."""
    reach = (0.5 + 2 * max_tilt) * size / (1 - max_zoom) - 0.5 * size
    return int(np.ceil(max(reach, 0.0))) + 8


# ------------------------------------------------------------------------------------ pixels
def place_plate(
    layer: np.ndarray, alpha: np.ndarray, forward: np.ndarray, backdrop: np.ndarray,
) -> np.ndarray:
    """The plate ``layer`` (canonical px) with its coverage ``alpha`` (float32 0-1) moved by the 3 x 3
    ``forward`` homography and laid over ``backdrop`` (frame px, float32 RGB)."""
    size = backdrop.shape[1], backdrop.shape[0]
    moved = cv2.warpPerspective(layer, forward, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    cover = cv2.warpPerspective(alpha, forward, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    moved -= backdrop  # in place: moved * cover + backdrop * (1 - cover)
    moved *= cover[..., None]
    moved += backdrop
    return moved


def view_bench(bench: np.ndarray, pad: int, camera: np.ndarray, size: int) -> np.ndarray:
    """The part of the ``bench`` canvas (bench px shifted by ``pad``) that ``camera`` sees (float32 RGB)."""
    shift = np.array([[1.0, 0.0, -pad], [0.0, 1.0, -pad], [0.0, 0.0, 1.0]])
    return cv2.warpPerspective(bench, camera @ shift, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)


def expose(image: np.ndarray, view: CameraView) -> np.ndarray:
    """Apply exposure gain, white balance and offset to a float32 RGB image in place; returns it."""
    image *= (view.gain * view.white_balance).astype(np.float32)
    image += np.float32(view.offset)
    return image


# ------------------------------------------------------------------------------------ bench
_BENCHES = (  # (colour RGB, texture strength, wood grain)
    ((0.78, 0.78, 0.76), 0.03, False),  # light grey laminate
    ((0.72, 0.6, 0.45), 0.06, True),  # beech bench top
    ((0.9, 0.9, 0.88), 0.02, False),  # white scanner lid
    ((0.45, 0.52, 0.58), 0.04, False),  # blue-grey bench mat
)
_DARK_BENCHES = (((0.07, 0.07, 0.08), 0.08, False), ((0.16, 0.15, 0.14), 0.06, True))


def bench(
    rng: np.random.Generator, size: int, pad: int, px_per_mm: float, plate: tuple[float, float, float, float],
    colours: Palette,
) -> np.ndarray:
    """The bench around the plate: texture, pen marks, dots, tape and a note (float32 RGB).

    Parameters
    ----------
    rng : np.random.Generator
        The series' bench generator.
    size, pad : int
        The canvas is ``size + 2 * pad`` px square; canvas px ``(u, v)`` is bench px ``(u - pad, v - pad)``.
    px_per_mm : float
        Scale of frame 0 (px/mm).
    plate : tuple of float
        The plate's box (x0, y0, x1, y1) in bench px; marks are kept outside it.
    colours : Palette
        The plate's look: a dark look (light roots) gets a dark bench.

    Returns
    -------
    np.ndarray
        ``(size + 2 pad) x (size + 2 pad) x 3`` float32 in [0, 1].
    """
    side = size + 2 * pad
    choices = _BENCHES if colours.edge_dark else _DARK_BENCHES
    colour, strength, grain = choices[int(rng.integers(len(choices)))]
    rgb = _texture(rng, side, px_per_mm, strength, grain)[..., None] * np.asarray(colour, np.float32)
    box = tuple(v + pad for v in plate)
    mm = px_per_mm
    _tape(rng, rgb, box, mm)
    _pen_marks(rng, rgb, box, mm)
    _dots(rng, rgb, box, mm)
    _note(rng, rgb, box, mm)
    return np.clip(rgb, 0, 1, out=rgb)


def _texture(rng: np.random.Generator, side: int, mm: float, strength: float, grain: bool) -> np.ndarray:
    """Multiplicative bench texture about 1 (float32 ``side x side``): blotches, fine speckle, wood grain."""
    low = max(side // 4, 16)
    field = 1 + strength * (0.6 * smooth_noise(rng, (low, low), 3) + 0.4 * smooth_noise(rng, (low, low), 25))
    field = cv2.resize(field.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    speck = rng.standard_normal((side, side), dtype=np.float32)
    field += 0.5 * strength * cv2.GaussianBlur(speck, (0, 0), max(0.15 * mm, 0.6))
    if grain:
        rows = max(int(side / (0.6 * mm)), 8)
        streaks = rng.standard_normal((rows, 6)).astype(np.float32)
        field += strength * cv2.resize(streaks, (side, side), interpolation=cv2.INTER_CUBIC)
    return field


def _outside(rng: np.random.Generator, box, side: int, margin: float) -> np.ndarray:
    """A random point (x, y) of the canvas at least ``margin`` px outside the plate ``box``."""
    x0, y0, x1, y1 = box
    for _ in range(100):
        p = rng.uniform(0, side, 2)
        if not (x0 - margin < p[0] < x1 + margin and y0 - margin < p[1] < y1 + margin):
            return p
    return np.array([margin, margin])


def _stroke(canvas: np.ndarray, points: np.ndarray, value: int, width: int) -> None:
    cv2.polylines(canvas, [np.rint(points * _ONE).astype(np.int32)], False, value, width, cv2.LINE_AA, _SHIFT)


def _pen_marks(rng: np.random.Generator, rgb: np.ndarray, box, mm: float) -> None:
    """Marker lines, ticks and scribbles on the bench, in black, blue and red."""
    side = rgb.shape[0]
    inks = [np.zeros((side, side), np.uint8) for _ in range(3)]
    for _ in range(int(rng.integers(4, 10))):
        start = _outside(rng, box, side, 2 * mm)
        n = int(rng.integers(2, 7))
        steps = rng.uniform(2, 12, n) * mm
        turns = np.cumsum(rng.normal(0, 0.5, n)) + rng.uniform(0, 2 * np.pi)
        moves = np.column_stack([np.cos(turns), np.sin(turns)]) * steps[:, None]
        points = start + np.vstack([[0.0, 0.0], np.cumsum(moves, axis=0)])
        _stroke(inks[int(rng.integers(3))], points, 255, max(1, int(rng.uniform(0.25, 0.7) * mm)))
    for ink, colour in zip(inks, ((0.05, 0.05, 0.1), (0.1, 0.15, 0.5), (0.55, 0.08, 0.08))):
        paint(rgb, ink, colour, 0.8)


def _dots(rng: np.random.Generator, rgb: np.ndarray, box, mm: float) -> None:
    """Marker dots, stains and crumbs outside the plate."""
    side = rgb.shape[0]
    dark, light = np.zeros((side, side), np.uint8), np.zeros((side, side), np.uint8)
    for _ in range(int(rng.integers(30, 80))):
        centre = _outside(rng, box, side, 1 * mm)
        radius = rng.uniform(0.1, 1.2) ** 1.5 * mm + 0.7
        canvas = dark if rng.random() < 0.7 else light
        cv2.circle(canvas, tuple(int(v * _ONE) for v in centre), int(radius * _ONE), int(rng.integers(90, 255)), -1,
                   cv2.LINE_AA, _SHIFT)
    paint(rgb, dark, (0.1, 0.09, 0.08), 0.7)
    paint(rgb, light, (0.95, 0.95, 0.92), 0.6)


def _tape(rng: np.random.Generator, rgb: np.ndarray, box, mm: float) -> None:
    """One to three strips of masking tape (pale, translucent rotated rectangles)."""
    side = rgb.shape[0]
    strips = np.zeros((side, side), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        centre = _outside(rng, box, side, 8 * mm)
        rect = ((float(centre[0]), float(centre[1])), (rng.uniform(15, 40) * mm, rng.uniform(4, 8) * mm),
                rng.uniform(0, 180))
        cv2.fillPoly(strips, [np.rint(cv2.boxPoints(rect) * _ONE).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
    paint(rgb, strips, (0.88, 0.82, 0.62), 0.55)


def _note(rng: np.random.Generator, rgb: np.ndarray, box, mm: float) -> None:
    """A handwritten note on the bench beside the plate."""
    side = rgb.shape[0]
    text = f"EXP {int(rng.integers(1, 40))} day {int(rng.integers(3, 15))}"
    ink = np.zeros((side, side), np.uint8)
    x0, _, _, y1 = box
    origin = (max(x0 - 2 * mm, 0.0) + rng.uniform(0, 20) * mm, y1 + rng.uniform(4, 7) * mm)
    draw_text(ink, text, origin, 2.5 * mm, 255, max(1, int(0.4 * mm)), slant=0.2, wobble=0.3)
    paint(rgb, ink, (0.05, 0.05, 0.15), 0.85)
