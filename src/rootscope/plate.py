"""Find the agar plate in a scan or photo, so that nothing outside it is measured as roots.

Users photograph or scan square plates (120 mm, rounded corners) and round Petri dishes (90 mm) on a
bench or a scanner. Nothing outside the plate (bench, scanner lid, pen marks, dots) and not the plate's
rim itself may be measured as roots. :func:`find_plate` finds the plate's outer outline and returns a
:class:`PlateRegion`, whose :meth:`~PlateRegion.inner_mask` is the area to measure: inside the plate,
minus the rim band. When no plate is found with confidence the region is the whole image (kind
``"whole"``), with a message saying why: a plate is never cropped on a guess.
:func:`plate_from_rectangle` builds a region from a rectangle given in the configuration.

Method, on the image reduced to at most ``max_side`` px (results in full-resolution px):

1. Edges: the colour gradient (Di Zenzo: largest eigenvalue of the colour structure tensor) of the
   lightly smoothed image, thinned by Canny with thresholds from its median (the noise).
2. Square plates: the dominant edge direction (modulo 90 degrees) gives two families of lines; a
   Hough transform per family (within 4 degrees: perspective is allowed) gives candidate lines. Of all
   quadrilaterals of two lines per family that are square (width / height within 7 %: plates are
   square, perspective makes them a little less so) and cover 15-95 % of the image, each
   side is scored by its edge support along its central part (away from the rounded corners) minus
   the support where the line runs on past the corners (a plate's side stops there, a line of the
   bench goes on); the outermost of the well-scored ones is kept (the rim is a set of nested outlines).
3. Each side is then moved to the plate's outer edge on the image itself: the derivative across the
   side is sampled over a band, pieces of it are reduced to median profiles, lines across the pieces
   (tilts up to 1.5 degrees) are scored by the median of the pieces along them, and the outermost
   clear peak that runs along the side, stands out from what lies outside it and does not run on past
   the corners is the outer edge; a straight line is fitted to its sub-px position in each piece.
   Corners are the intersections of the fitted sides (a general quadrilateral), so rounded corners do
   not pull them in.
4. The rim is the busy band of parallel edges inside the outer edge (wall, lid, meniscus) measured on
   the same profiles; the corner radius from where rays from each corner first meet the outer edge.
   An outline with sharp corners is a sheet of paper, a tray or a frame, not a plate.
5. Round plates: a gradient Hough transform for centres and the best-covered radius, refined the same
   way on radial profiles with a circle fitted through the outer edge.

The score (0..1) is the fraction of the outline's central parts along which the image shows the edge.
Coordinates are OpenCV's: ``(x, y)`` px, pixel centres at integer positions.

Limits: where the plate's wall is as bright as the bench, the wall's inner edge can be taken for the
outline (about 1 % of the side inside; the measured area stays on the agar). A plate that runs out of
the picture has sides that cannot be seen: the outline is fitted to what is visible, or the whole
image is kept. benchmarks/bench_plate.py measures accuracy and speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from .errors import ConfigError, ShapeMismatchError
from .io import to_float

PlateShape = Literal["auto", "square", "round"]
KINDS = ("square", "round", "whole")

#: The plate's outer outline must cover this fraction of the image (area) to be taken.
MIN_AREA, MAX_AREA = 0.15, 0.95
#: Confidence (0..1) below which the whole image is used instead.
MIN_SCORE = 0.5
#: Rim width (fraction of the plate's side or diameter) when it cannot be measured.
DEFAULT_RIM = 0.03
#: Corner radius of square plates (fraction of the side) when it cannot be measured.
DEFAULT_CORNER = 0.08
#: Square plates have rounded corners: an outline whose corners measure below this radius (fraction
#: of the side) is a sheet of paper, a tray or a frame, and is not taken for a plate.
MIN_CORNER = 0.008
_CENTRAL = 0.2  # fraction of a side at each end left out of supports and fits (rounded corners)
_TILT_DEG = 4.0  # half-range (degrees) of line angles about each family's direction (perspective)
_MIN_SIDE = 0.25  # weakest side quality (support minus support beyond the corners) of a candidate
_ASPECT = 0.07  # plates are square: |log(width / height)| of an outline below this (perspective)
_STEP = 0.5  # px between samples across an edge
_SURE = 0.9  # a square found with this score ends the search (four straight sides are no circle)


# ---------------------------------------------------------------------------------- the region
@dataclass(frozen=True, eq=False)
class PlateRegion:
    """Where the plate lies in an image (full-resolution px, ``(x, y)``, pixel centres at integers).

    Attributes
    ----------
    kind : str
        ``"square"``, ``"round"``, or ``"whole"`` (no plate found: the whole image is measured).
    corners : np.ndarray
        4 x 2 float64 (x, y) px, top-left, top-right, bottom-right, bottom-left: for ``"square"`` the
        corners of the plate's outer outline (intersections of its straight sides, so outside the
        rounded corners); for ``"round"`` the square box around the circle; for ``"whole"`` the
        image's outer pixel edges.
    rim_px : float
        Width (px) of the band inside the outer outline that is left out of the measured area: the
        plastic wall, the lid's edge and the meniscus.
    score : float
        Confidence 0..1: the fraction of the outline with edge support (1 for a user rectangle, 0 for
        ``"whole"``).
    message : str
        How the region was found, or why the whole image is used.
    image_size : tuple of int
        ``(width, height)`` px of the image the region belongs to.
    centre : tuple of float or None
        Round plates: centre ``(x, y)`` px.
    radius : float or None
        Round plates: outer radius (px).
    corner_radius_px : float
        Square plates: radius (px) of the rounded corners of the outer outline.
    """

    kind: str
    corners: np.ndarray
    rim_px: float
    score: float
    message: str
    image_size: tuple[int, int]
    centre: tuple[float, float] | None = None
    radius: float | None = None
    corner_radius_px: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"plate kind {self.kind!r} is unknown; use one of {', '.join(KINDS)}.")
        corners = np.array(self.corners, dtype=np.float64).reshape(4, 2)
        corners.setflags(write=False)
        object.__setattr__(self, "corners", corners)
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))
        if self.kind == "round" and (self.centre is None or self.radius is None):
            raise ConfigError("a round plate needs its centre and radius.")

    # ------------------------------------------------------------------------------ geometry
    @property
    def side_px(self) -> float:
        """Mean side length (px) of the outer outline (the diameter for a round plate)."""
        if self.kind == "round":
            return 2.0 * float(self.radius)
        return float(np.mean(np.linalg.norm(self.corners - np.roll(self.corners, -1, axis=0), axis=1)))

    def outline(self, inner: bool = False, points_per_corner: int = 16) -> np.ndarray:
        """The outer outline (or, with ``inner``, the edge of the measured area) as an N x 2 float64
        polygon of (x, y) px, for drawing on overlays (``cv2.polylines`` after rounding).

        Square plates have rounded corners (``corner_radius_px``), mapped through the perspective of
        the four corners; round plates are a circle of ``4 * points_per_corner`` points.
        """
        inset = self.rim_px if inner else 0.0
        if self.kind == "whole":
            return self.corners.copy()
        if self.kind == "round":
            angles = np.linspace(0.0, 2 * np.pi, 4 * points_per_corner, endpoint=False)
            r = max(float(self.radius) - inset, 0.0)
            return np.column_stack([self.centre[0] + r * np.cos(angles), self.centre[1] + r * np.sin(angles)])
        c = self.corners
        width = 0.5 * float(np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3]))
        height = 0.5 * float(np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1]))
        scale = np.array([width, height])
        unit = _rounded_square(inset / scale, self.corner_radius_px / scale, points_per_corner)
        return _project(_unit_homography(c), unit)

    def inner_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Boolean ``H x W`` mask (``shape[:2]``) of the area to measure: inside the plate, minus the rim.

        For ``"whole"`` every pixel is True. The region's coordinates are used as they are: pass the
        shape of the image the region was found in.
        """
        height, width = int(shape[0]), int(shape[1])
        if self.kind == "whole":
            return np.ones((height, width), bool)
        out = np.zeros((height, width), np.uint8)
        polygon = np.rint(self.outline(inner=True) * 16).astype(np.int32)
        cv2.fillPoly(out, [polygon], 1, cv2.LINE_8, 4)
        return out.astype(bool)

    # ---------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists and floats); :meth:`from_dict` reads it back."""
        return {
            "kind": self.kind,
            "corners": [[float(x), float(y)] for x, y in self.corners],
            "rim_px": float(self.rim_px),
            "score": float(self.score),
            "message": self.message,
            "image_size": list(self.image_size),
            "centre": None if self.centre is None else [float(v) for v in self.centre],
            "radius": None if self.radius is None else float(self.radius),
            "corner_radius_px": float(self.corner_radius_px),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlateRegion:
        """Rebuild a region from :meth:`to_dict`'s output. Raises :class:`ConfigError` when a field is
        missing or malformed."""
        try:
            centre = data.get("centre")
            return cls(
                kind=str(data["kind"]), corners=np.asarray(data["corners"], np.float64),
                rim_px=float(data["rim_px"]), score=float(data["score"]), message=str(data.get("message", "")),
                image_size=tuple(data["image_size"]),
                centre=None if centre is None else (float(centre[0]), float(centre[1])),
                radius=None if data.get("radius") is None else float(data["radius"]),
                corner_radius_px=float(data.get("corner_radius_px", 0.0)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ConfigError(f"plate region {data!r} is malformed ({error}); write it with PlateRegion.to_dict.") \
                from error

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlateRegion):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def whole_image(image_size: tuple[int, int], message: str) -> PlateRegion:
    """The region of an image with no plate found: all of it (``image_size`` = (width, height) px)."""
    w, h = image_size
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    return PlateRegion("whole", corners, 0.0, 0.0, message, (w, h))


def plate_from_rectangle(
    x: float, y: float, width: float, height: float, image_size: tuple[int, int] | None = None, *,
    rim_px: float | None = None, corner_radius_px: float | None = None,
) -> PlateRegion:
    """A square-kind region from a user rectangle (a ``[plate]`` table with x, y, width, height in px).

    Parameters
    ----------
    x, y : float
        Left and top edge of the plate's outer outline (px).
    width, height : float
        Its size (px), both positive.
    image_size : tuple of int, optional
        ``(width, height)`` of the image (px); defaults to the rectangle's far corner.
    rim_px : float, optional
        Rim band left out (px); default 3 % of the shorter side.
    corner_radius_px : float, optional
        Radius of the rounded corners (px); default 8 % of the shorter side.

    Raises
    ------
    ConfigError
        When the rectangle is empty or the rim leaves nothing to measure.
    """
    if not (width > 0 and height > 0):
        raise ConfigError(f"[plate] rectangle width={width}, height={height}: both must be positive (px).")
    short = min(width, height)
    rim = DEFAULT_RIM * short if rim_px is None else float(rim_px)
    if not 0 <= rim < short / 2:
        raise ConfigError(f"[plate] rim_px={rim_px} must lie in [0, {short / 2:g}) px for this rectangle.")
    x0, y0 = x - 0.5, y - 0.5  # pixel edges of the rectangle's first pixel
    corners = np.array([[x0, y0], [x0 + width, y0], [x0 + width, y0 + height], [x0, y0 + height]])
    size = image_size or (int(np.ceil(x + width)), int(np.ceil(y + height)))
    radius = DEFAULT_CORNER * short if corner_radius_px is None else float(corner_radius_px)
    return PlateRegion("square", corners, rim, 1.0, f"plate from the [plate] rectangle x={x:g}, y={y:g}, "
                       f"width={width:g}, height={height:g} px", size, corner_radius_px=radius)


# ------------------------------------------------------------------------------------- finding
def find_plate(image: np.ndarray, *, shape: PlateShape = "auto", max_side: int = 1024) -> PlateRegion:
    """Find the plate in a scan or photo.

    Parameters
    ----------
    image : np.ndarray
        ``H x W`` or ``H x W x 3/4`` (RGB(A)), float in [0, 1] or uint8 / uint16 (converted as
        :func:`rootscope.io.to_float` does).
    shape : {"auto", "square", "round"}
        Which plates to look for; ``"auto"`` tries square (and, unless one is found with a score of at
        least 0.9, round) and keeps the more confident.
    max_side : int
        The search runs on the image reduced to at most this many px on its long side (>= 256); about
        0.15 s for a 4288 x 2848 photo at the default.

    Returns
    -------
    PlateRegion
        In full-resolution px. Kind ``"whole"`` (the whole image, score 0) with a message saying why
        when no plate is found with a confidence of at least :data:`MIN_SCORE`.

    Raises
    ------
    ConfigError
        For an unknown ``shape`` or a ``max_side`` below 256.
    ShapeMismatchError
        When ``image`` is not an image.
    """
    if shape not in ("auto", "square", "round"):
        raise ConfigError(f"plate shape {shape!r} is unknown; use 'auto', 'square' or 'round'.")
    if max_side < 256:
        raise ConfigError(f"max_side={max_side} px is too small to find a plate; use at least 256.")
    small = _prepare(image, int(max_side))
    found: list[PlateRegion | str] = []
    if shape in ("auto", "square"):
        found.append(_find_square(small))
    sure = bool(found) and isinstance(found[-1], PlateRegion) and found[-1].score >= _SURE
    if shape == "round" or (shape == "auto" and not sure):
        found.append(_find_round(small))
    regions = [r for r in found if isinstance(r, PlateRegion)]
    best = max(regions, key=lambda r: r.score, default=None)
    if best is not None and best.score >= MIN_SCORE:
        return best
    reasons = [r if isinstance(r, str) else f"the best {r.kind} outline has only {r.score:.0%} edge support"
               for r in found]
    return whole_image(small.full_size, "no plate found (" + "; ".join(reasons) + "): the whole image is measured")


# ---------------------------------------------------------------------------- unit-square maps
def _unit_homography(corners: np.ndarray) -> np.ndarray:
    """3 x 3 homography from the unit square (TL, TR, BR, BL = (0,0), (1,0), (1,1), (0,1)) to ``corners``."""
    unit = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    return cv2.getPerspectiveTransform(unit.astype(np.float32), np.asarray(corners, np.float32)).astype(np.float64)


def _project(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """N x 2 points mapped by a 3 x 3 homography (with the perspective division)."""
    h = np.column_stack([points, np.ones(len(points))]) @ matrix.T
    return h[:, :2] / h[:, 2:3]


def _rounded_square(inset: np.ndarray, radius: np.ndarray, points_per_corner: int) -> np.ndarray:
    """Polygon (unit-square coordinates) of the outline ``inset`` inside the unit square with rounded
    corners of ``radius``; both are (u, v) pairs in unit-square units (a length in px divided by the
    width and the height), so that the corners are round once mapped onto the plate. The corners of
    the inner outline keep the same centres (radius less the inset, at least 0)."""
    inset, radius = np.asarray(inset, np.float64), np.asarray(radius, np.float64)
    r = np.maximum(radius - inset, 0.0)
    lo, hi = inset + r, 1.0 - inset - r
    centres = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    starts = np.deg2rad([180.0, 270.0, 0.0, 90.0])
    steps = np.linspace(0.0, np.pi / 2, max(points_per_corner, 2))
    angles = starts[:, None] + steps[None, :]
    pts = centres[:, None, :] + r * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return pts.reshape(-1, 2)


def _area(polygon: np.ndarray) -> float:
    """Area of a simple polygon (N x 2), shoelace formula."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


# ------------------------------------------------------------------------------ image at scale
@dataclass(frozen=True)
class _Small:
    """The image at the working scale: smoothed float32 channels (H x W x C) and edge pixels.

    ``scale`` = (sx, sy), small px per full px; ``full_size`` (width, height) of the full image (px);
    ``noise`` the median colour-gradient magnitude (image units per px); ``ex, ey`` (px, float64) and
    ``eangle`` (radians, gradient direction modulo pi) the edge pixels.
    """

    pixels: np.ndarray
    scale: tuple[float, float]
    full_size: tuple[int, int]
    noise: float
    ex: np.ndarray
    ey: np.ndarray
    eangle: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) px at the working scale."""
        return self.pixels.shape[1], self.pixels.shape[0]

    def to_full(self, points: np.ndarray) -> np.ndarray:
        """N x 2 small-scale (x, y) px to full-resolution px (pixel centres)."""
        s = np.asarray(self.scale)
        return (np.asarray(points, np.float64) + 0.5) / s - 0.5

    @property
    def px(self) -> float:
        """Full-resolution px per small px (mean of x and y)."""
        return 0.5 * (1 / self.scale[0] + 1 / self.scale[1])


def _reduce(image: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    """``image`` (H x W (x C), float in [0, 1] or uint8/uint16) at most ``max_side`` px on its long
    side, float32 H' x W' x C in [0, 1] (C = 1 or 3; alpha dropped); returns it and (sx, sy), small px
    per full px (full x = (small x + 0.5) / sx - 0.5).

    Area averaging; a whole factor first (OpenCV's fast path, on the image cropped to a multiple of it:
    at most factor - 1 px are dropped at the right and bottom), then the rest on the small image."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., :3] if array.shape[2] >= 3 else array[..., :1]
    elif array.ndim != 2:
        raise ShapeMismatchError(f"image of shape {array.shape} is not an image (expected H x W or H x W x 1/3/4).")
    h, w = array.shape[:2]
    if min(h, w) < 32:
        raise ShapeMismatchError(f"image of {w}x{h} px is too small to find a plate in (min 32 px).")
    if array.dtype == bool:
        array = array.astype(np.uint8) * np.uint8(255)
    elif array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32)
    factor = max(int(max(h, w) // max_side), 1)
    if factor > 1:
        cropped = np.ascontiguousarray(array[: h - h % factor, : w - w % factor])
        array = cv2.resize(cropped, (cropped.shape[1] // factor, cropped.shape[0] // factor),
                           interpolation=cv2.INTER_AREA)
    step_h, step_w = array.shape[:2]
    scale = min(1.0, max_side / max(step_h, step_w))
    if scale < 1.0:
        size = (max(int(round(step_w * scale)), 1), max(int(round(step_h * scale)), 1))
        array = cv2.resize(np.ascontiguousarray(array), size, interpolation=cv2.INTER_AREA)
    small, _ = to_float(np.ascontiguousarray(array))
    if small.ndim == 2:
        small = small[..., None]
    return small, (small.shape[1] / (step_w * factor), small.shape[0] / (step_h * factor))


def _gradients(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Di Zenzo colour gradient of H x W x C float32: its x and y components (the direction of the
    largest change, sign arbitrary) and magnitude, float32 per px."""
    jxx = jyy = jxy = None
    for channel in cv2.split(pixels):
        gx = cv2.Sobel(channel, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
        gy = cv2.Sobel(channel, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
        if jxx is None:
            jxx, jyy, jxy = gx * gx, gy * gy, gx * gy
        else:
            jxx += gx * gx
            jyy += gy * gy
            jxy += gx * gy
    half = 0.5 * (jxx - jyy)
    root = np.sqrt(half * half + jxy * jxy)
    magnitude = np.sqrt(0.5 * (jxx + jyy) + root)
    # half-angle formulas: cos 2a = half / root, sin 2a = jxy / root
    safe = np.maximum(root, np.float32(1e-12))
    cos2 = half / safe
    cos = np.sqrt(np.maximum(0.5 * (1 + cos2), 0))
    sin = np.sqrt(np.maximum(0.5 * (1 - cos2), 0)) * np.where(jxy < 0, np.float32(-1), np.float32(1))
    return magnitude * cos, magnitude * sin, magnitude


def _prepare(image: np.ndarray, max_side: int) -> _Small:
    """Reduce, smooth, take the colour gradient and its Canny edge pixels."""
    small, scale = _reduce(image, max_side)
    h, w = small.shape[:2]
    pixels = cv2.GaussianBlur(small, (0, 0), 1.0).reshape(h, w, -1)
    gx, gy, magnitude = _gradients(pixels)
    noise = max(float(np.median(magnitude[::2, ::2])), 2e-4)
    gain = np.float32(20.0 / noise)
    clip = np.maximum(magnitude * gain / np.float32(30000.0), np.float32(1.0))
    dx = np.rint(gx * gain / clip).astype(np.int16)
    dy = np.rint(gy * gain / clip).astype(np.int16)
    edges = cv2.Canny(dx, dy, 2.5 * 20.0, 5.0 * 20.0, L2gradient=True)
    ey, ex = np.nonzero(edges)
    angle = np.mod(np.arctan2(gy[ey, ex], gx[ey, ex]).astype(np.float64), np.pi)
    full = np.shape(image)
    return _Small(pixels, scale, (int(full[1]), int(full[0])), noise, ex.astype(np.float64), ey.astype(np.float64),
                  angle)


# ------------------------------------------------------------------------- lines and quadrilaterals
@dataclass(frozen=True)
class _Lines:
    """Candidate lines of one family: normal angle ``phi`` (radians), offset ``rho`` (px, x cos phi +
    y sin phi = rho), ``votes`` (edge px on the line) and each line's edge coverage along it
    (cumulative counts ``cover[line, t + offset]`` at integer positions t = -x sin phi + y cos phi)."""

    phi: np.ndarray
    rho: np.ndarray
    votes: np.ndarray
    cover: np.ndarray
    offset: int


def _orientation(small: _Small) -> float:
    """Dominant edge direction modulo 90 degrees (radians in [0, pi/2)): the plate's sides."""
    bins = 180
    index = np.floor(np.mod(small.eangle, np.pi / 2) / (np.pi / 2) * bins).astype(np.int64) % bins
    hist = np.bincount(index, minlength=bins).astype(np.float64)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    smooth = np.convolve(np.concatenate([hist[-6:], hist, hist[:6]]), kernel, mode="valid")
    return (int(np.argmax(smooth)) + 0.5) / bins * (np.pi / 2)


def _hough(small: _Small, phi0: float, count: int = 16) -> _Lines:
    """The ``count`` strongest lines whose normal lies within ``_TILT_DEG`` of ``phi0`` (count-weighted
    Hough of the edge pixels whose gradient points the same way, 1 px x 0.25 degree bins)."""
    diff = np.abs(np.mod(small.eangle - phi0 + np.pi / 2, np.pi) - np.pi / 2)
    keep = diff < np.deg2rad(_TILT_DEG + 8.0)
    x, y = small.ex[keep], small.ey[keep]
    w, h = small.size
    diag = int(np.ceil(np.hypot(w, h))) + 2
    angles = phi0 + np.deg2rad(np.arange(-_TILT_DEG, _TILT_DEG + 1e-9, 0.25))
    rho = np.rint(np.cos(angles)[:, None] * x[None, :] + np.sin(angles)[:, None] * y[None, :]).astype(np.int64) + diag
    flat = (np.arange(len(angles))[:, None] * (2 * diag + 1) + rho).ravel()
    acc = np.bincount(flat, minlength=len(angles) * (2 * diag + 1)).reshape(len(angles), 2 * diag + 1)
    acc = acc.astype(np.float64)
    acc[:, 1:-1] = 0.25 * acc[:, :-2] + 0.5 * acc[:, 1:-1] + 0.25 * acc[:, 2:]
    best = acc.argmax(axis=0)
    profile = acc[best, np.arange(acc.shape[1])]
    peaks = _peaks(profile, 2, 0.08 * min(w, h))
    peaks = peaks[np.argsort(profile[peaks])[::-1][:count]]
    phi, offsets = angles[best[peaks]], peaks.astype(np.float64) - diag
    return _Lines(phi, offsets, profile[peaks], *_coverage(x, y, phi, offsets, diag))


def _peaks(profile: np.ndarray, radius: int, floor: float) -> np.ndarray:
    """Indices of local maxima of a 1-D profile (the largest within ``radius`` samples) at least ``floor``."""
    profile = np.where(np.isfinite(profile), profile, -np.inf)
    padded = np.pad(profile, radius, mode="constant", constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    is_peak = (profile >= windows.max(axis=1)) & (profile >= floor)
    index = np.flatnonzero(is_peak)
    return index[np.concatenate([[True], np.diff(index) > radius])] if len(index) else index


def _coverage(x: np.ndarray, y: np.ndarray, phi: np.ndarray, rho: np.ndarray, diag: int) -> tuple[np.ndarray, int]:
    """Cumulative edge coverage along each line (edge px within 1.5 px of it), see :class:`_Lines`."""
    cos, sin = np.cos(phi)[:, None], np.sin(phi)[:, None]
    near = np.abs(cos * x[None, :] + sin * y[None, :] - rho[:, None]) <= 1.5
    t = np.rint(-sin * x[None, :] + cos * y[None, :]).astype(np.int64) + diag
    covered = np.zeros((len(phi), 2 * diag + 2), bool)
    line_index = np.broadcast_to(np.arange(len(phi))[:, None], near.shape)
    covered[line_index[near], t[near]] = True
    cover = np.zeros((len(phi), 2 * diag + 3), np.float64)
    cover[:, 1:] = np.cumsum(covered, axis=1)
    return cover, diag


def _intersections(a: _Lines, b: _Lines) -> np.ndarray:
    """K_a x K_b x 2 intersection points of every line of ``a`` with every line of ``b``."""
    ca, sa = np.cos(a.phi)[:, None], np.sin(a.phi)[:, None]
    cb, sb = np.cos(b.phi)[None, :], np.sin(b.phi)[None, :]
    det = ca * sb - sa * cb
    det = np.where(np.abs(det) < 1e-9, 1e-9, det)
    x = (a.rho[:, None] * sb - sa * b.rho[None, :]) / det
    y = (ca * b.rho[None, :] - a.rho[:, None] * cb) / det
    return np.stack([x, y], axis=-1)


def _side_support(lines: _Lines, index: np.ndarray, p: np.ndarray, q: np.ndarray,
                  size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge support (0..1) of the central part of segments p-q on lines ``index``, support of the lines'
    continuation beyond both ends (0.15 of the length each way, the part inside the image), and the
    segments' lengths. A plate's side stops at its rounded corners; a line of the bench goes on."""
    phi = lines.phi[index]
    u = np.stack([-np.sin(phi), np.cos(phi)], axis=-1)
    tp, tq = (p * u).sum(-1), (q * u).sum(-1)
    lo, hi = np.minimum(tp, tq), np.maximum(tp, tq)
    length = hi - lo
    central = _count(lines, index, lo + _CENTRAL * length, hi - _CENTRAL * length)
    support = central / np.maximum((1 - 2 * _CENTRAL) * length, 1.0)
    rho = lines.rho[index]
    normal = np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    ends = []
    for a, b in ((lo - 0.15 * length, lo), (hi, hi + 0.15 * length)):
        a, b = _clip_to_image(rho, normal, u, a, b, size)
        ends.append((_count(lines, index, a, b), np.maximum(b - a, 0.0)))
    beyond = (ends[0][0] + ends[1][0]) / np.maximum(ends[0][1] + ends[1][1], 1.0)
    beyond = np.where(ends[0][1] + ends[1][1] >= 0.05 * length, beyond, 0.0)
    return support, beyond, length


def _count(lines: _Lines, index: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Number of covered integer positions in [lo, hi] on lines ``index``."""
    top = lines.cover.shape[1] - 1
    i0 = np.clip(np.rint(lo).astype(np.int64) + lines.offset, 0, top)
    i1 = np.clip(np.rint(hi).astype(np.int64) + lines.offset + 1, 0, top)
    return np.maximum(lines.cover[index, i1] - lines.cover[index, i0], 0.0)


def _clip_to_image(rho: np.ndarray, normal: np.ndarray, u: np.ndarray, a: np.ndarray, b: np.ndarray,
                   size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The part [a, b] (positions t along lines x = rho n + t u) that lies inside the image."""
    lo, hi = a.copy(), b.copy()
    for axis, extent in ((0, size[0] - 1), (1, size[1] - 1)):
        base, step = rho * normal[..., axis], u[..., axis]
        safe = np.where(np.abs(step) < 1e-9, 1e-9, step)
        t0, t1 = (0 - base) / safe, (extent - base) / safe
        first, last = np.minimum(t0, t1), np.maximum(t0, t1)
        flat = np.abs(step) < 1e-9
        inside = (base >= 0) & (base <= extent)
        first = np.where(flat, np.where(inside, -np.inf, np.inf), first)
        last = np.where(flat, np.where(inside, np.inf, -np.inf), last)
        lo, hi = np.maximum(lo, first), np.minimum(hi, last)
    return lo, np.maximum(hi, lo)


def _best_quad(a: _Lines, b: _Lines, size: tuple[int, int]) -> tuple[np.ndarray, float] | None:
    """Corners (4 x 2, small px: TL, TR, BR, BL) and mean side support of the plate's outline among the
    quadrilaterals of two lines of each family, or None when none is square, large and supported
    enough. A side's quality is its central support minus its support past the corners; of the
    quadrilaterals within 85 % of the best mean quality (and 80 % of the best weakest side) the largest
    is taken (the rim is a set of nested outlines: the outermost)."""
    if len(a.rho) < 2 or len(b.rho) < 2:
        return None
    quad, support, beyond, lengths = _quadrilaterals(a, b, size)
    xs, ys = quad[..., 0], quad[..., 1]
    area = 0.5 * np.abs((xs * np.roll(ys, -1, 2) - np.roll(xs, -1, 2) * ys).sum(-1)) / (size[0] * size[1])
    n_i, n_j, n_k, n_l = np.maximum(lengths, 1e-9)
    aspect = np.abs(np.log((n_i + n_j) / (n_k + n_l)))
    parallel = np.minimum(np.minimum(n_i, n_j) / np.maximum(n_i, n_j), np.minimum(n_k, n_l) / np.maximum(n_k, n_l))
    quality = (support - beyond).mean(0)
    weakest = (support - beyond).min(0)
    ok = ((area >= MIN_AREA) & (area <= MAX_AREA) & (aspect < _ASPECT) & (parallel > 0.9) & (weakest >= _MIN_SIDE))
    if not ok.any():
        return None
    good = ok & (quality >= 0.85 * quality[ok].max()) & (weakest >= 0.8 * weakest[ok].max())
    r, c = np.unravel_index(int(np.argmax(np.where(good, area, -np.inf))), area.shape)
    return _order_corners(quad[r, c]), float(support[:, r, c].mean())


def _quadrilaterals(a: _Lines, b: _Lines,
                    size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every quadrilateral of lines i < j of ``a`` and k < l of ``b`` (P_a x P_b grids): corners
    (P_a x P_b x 4 x 2, in order ik, il, jl, jk), and per side (i, j, k, l; leading axis 4) the central
    support, the support past the corners and the length (px)."""
    x = _intersections(a, b)
    ia, ja = np.triu_indices(len(a.rho), 1)
    kb, lb = np.triu_indices(len(b.rho), 1)
    i, j, k, l = ia[:, None], ja[:, None], kb[None, :], lb[None, :]
    p_ik, p_il, p_jk, p_jl = x[i, k], x[i, l], x[j, k], x[j, l]
    shape = p_ik.shape[:2]
    sides = [_side_support(a, np.broadcast_to(i, shape), p_ik, p_il, size),
             _side_support(a, np.broadcast_to(j, shape), p_jk, p_jl, size),
             _side_support(b, np.broadcast_to(k, shape), p_ik, p_jk, size),
             _side_support(b, np.broadcast_to(l, shape), p_il, p_jl, size)]
    support, beyond, lengths = (np.stack([side[m] for side in sides]) for m in range(3))
    return np.stack([p_ik, p_il, p_jl, p_jk], axis=2), np.clip(support, 0, 1), np.clip(beyond, 0, 1), lengths


def _order_corners(quad: np.ndarray) -> np.ndarray:
    """4 x 2 corners reordered top-left, top-right, bottom-right, bottom-left (clockwise on screen)."""
    centre = quad.mean(axis=0)
    angle = np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0])
    quad = quad[np.argsort(angle)]  # clockwise on screen (y down), starting near -pi (left)
    first = int(np.argmin(quad.sum(axis=1)))
    return np.roll(quad, -first, axis=0)


# ----------------------------------------------------------------------------- profiles across edges
@dataclass(frozen=True)
class _Band:
    """Derivative across an edge sampled over a band: ``g[d, t]`` (sum over channels of |dI/dd|, image
    units per px; NaN outside the image) at offsets ``d`` (px, positive outwards) and positions ``t``
    (px along the edge). Offsets first, so that medians along the edge run over contiguous memory."""

    t: np.ndarray
    d: np.ndarray
    g: np.ndarray

    def profile(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Median over positions ``rows`` along the edge of the derivative at each offset (NaN where fewer
        than a third of those positions lie in the image)."""
        g = self.g[:, rows]
        if g.shape[1] == 0:
            return np.full(len(self.d), np.nan)
        nan = np.isnan(g)
        if not nan.any():
            return np.median(g, axis=1)
        counts = (~nan).sum(axis=1)
        ordered = np.sort(np.where(nan, -np.inf, g), axis=1)  # -inf (outside) first
        middle = np.minimum(g.shape[1] - counts + np.maximum(counts - 1, 0) // 2, g.shape[1] - 1)
        values = ordered[np.arange(len(self.d)), middle]
        return np.where(counts >= g.shape[1] / 3, values, np.nan)


def _sample(pixels: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples (N x C float32) of H x W x C ``pixels`` at N x 2 (x, y) px (edge pixels repeated
    outside the image)."""
    n = len(points)
    cols = min(max(n, 1), 4096)
    rows = -(-n // cols)
    grid = np.zeros((rows * cols, 2), np.float32)
    grid[:n] = points
    grid = grid.reshape(rows, cols, 2)
    values = cv2.remap(pixels, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return values.reshape(rows * cols, -1)[:n]


def _sample_band(pixels: np.ndarray, origins: np.ndarray, normals: np.ndarray, t: np.ndarray,
                 inside: float, outside: float) -> _Band:
    """Sample ``pixels`` at ``origins[i] + d * normals[i]`` for d in [-inside, outside] (px) and take the
    derivative along d (NaN where a sample leaves the image; positions wholly outside are dropped)."""
    d = np.arange(-inside, outside + 1e-9, _STEP, dtype=np.float32)
    origins, normals = origins.astype(np.float32), np.asarray(normals, np.float32)
    map_x = origins[None, :, 0] + d[:, None] * normals[None, :, 0]
    map_y = origins[None, :, 1] + d[:, None] * normals[None, :, 1]
    h, w = pixels.shape[:2]
    valid = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    values = cv2.remap(pixels, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    g = _derivative(values.reshape(len(d), len(t), -1))
    if not valid.all():
        g[~(valid[1:] & valid[:-1])] = np.nan
        rows = valid.any(axis=0)
        g, t = np.ascontiguousarray(g[:, rows]), t[rows]
    return _Band(t, (0.5 * (d[1:] + d[:-1])).astype(np.float64), g)


def _derivative(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sum over channels (last axis) of |finite difference| along ``axis``, per px (samples ``_STEP`` apart)."""
    total = None
    for c in range(values.shape[-1]):
        step = np.abs(np.diff(values[..., c], axis=axis))
        total = step if total is None else total + step
    return total * np.float32(1 / _STEP)


def _floor(profile: np.ndarray) -> float:
    """Background level of a profile (its 10th percentile: flat bench and agar), at least 1e-4."""
    finite = profile[np.isfinite(profile)]
    return max(float(np.percentile(finite, 10)), 1e-4) if len(finite) else 1e-4


def _outer_peaks(profile: np.ndarray, d: np.ndarray, limit: float,
                 beyond: np.ndarray | None = None) -> list[tuple[int, float]]:
    """Clear peaks of ``profile`` at d <= ``limit``, outermost first: (index, height).

    A clear peak stands above the profile's background (4 x its 10th percentile), at least 3 times
    above the median of the profile just outside it (up to 6 px: the bench's own texture repeats
    outside itself), and, when the profile ``beyond`` the side's ends is given, is not continued there
    at half its height or more (a line of the bench runs on past the plate's corners)."""
    level = 4.0 * _floor(profile)
    found = []
    for k in _peaks(np.where(d <= limit, profile, np.nan), 2, level)[::-1]:
        outside = profile[(d > d[k] + 2.0) & (d <= d[k] + 8.0)]
        outside = outside[np.isfinite(outside)]
        if len(outside) >= 3 and profile[k] < 3.0 * float(np.median(outside)):
            continue
        if beyond is not None and np.nanmax(np.append(beyond[max(k - 2, 0):k + 3], 0.0)) >= 0.5 * profile[k]:
            continue
        found.append((int(k), float(profile[k])))
    return found


def _subpixel(profile: np.ndarray, d: np.ndarray, k: int) -> float:
    """Parabolic sub-sample position of the peak at index ``k``."""
    if 0 < k < len(profile) - 1:
        a, b, c = profile[k - 1], profile[k], profile[k + 1]
        den = a - 2 * b + c
        if den < 0:
            return float(d[k] + _STEP * np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return float(d[k])


def _is_peak(profile: np.ndarray, k: int) -> bool:
    """True when sample ``k`` is a local maximum (not lower than either neighbour)."""
    left = profile[k - 1] if k > 0 else -np.inf
    right = profile[k + 1] if k < len(profile) - 1 else -np.inf
    return bool(np.isfinite(profile[k]) and not profile[k] < left and not profile[k] < right)


def _locate(profiles: np.ndarray, centres: np.ndarray, d: np.ndarray, expected: np.ndarray,
            level: float, tolerance: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Sub-px peak of each piece's profile within ``tolerance`` px of its ``expected`` offset (the
    highest there, a local maximum of at least ``level``)."""
    ts, ds = [], []
    for profile, centre, where in zip(profiles, centres, expected):
        window = np.flatnonzero(np.abs(d - where) <= tolerance)
        if len(window) == 0:
            continue
        k = int(window[np.argmax(np.nan_to_num(profile[window], nan=-np.inf))])
        if profile[k] >= level and _is_peak(profile, k):
            ts.append(float(centre))
            ds.append(_subpixel(profile, d, k))
    return np.asarray(ts), np.asarray(ds)


def _support(band: _Band, rows: np.ndarray, expected: np.ndarray, level: float) -> float:
    """Fraction of the band's ``rows`` with a derivative of at least ``level`` within 1.5 px of the
    ``expected`` offset (one per row): how much of an outline the image shows."""
    near = np.abs(band.d[:, None] - expected[None, :]) <= 1.5
    strongest = np.where(near, np.nan_to_num(band.g[:, rows], nan=0.0), 0.0).max(axis=0)
    return float(np.mean(strongest >= level)) if len(rows) else 0.0


def _band_width(profile: np.ndarray, d: np.ndarray, edge: float, reach: float, gap: float) -> float:
    """Width (px) of the busy band of edges inside ``edge``: from the edge inwards until a stretch of at
    least ``gap`` px without edges (at most ``reach`` px)."""
    floor = _floor(profile)
    busy = profile > 3.0 * floor
    inside = (d <= edge) & (d >= edge - reach)
    offsets = edge - d[inside & busy]
    if len(offsets) == 0:
        return 0.0
    offsets = np.sort(offsets)
    breaks = np.flatnonzero(np.diff(np.concatenate([[0.0], offsets])) > gap)
    end = offsets[breaks[0] - 1] if len(breaks) and breaks[0] > 0 else (0.0 if len(breaks) else offsets[-1])
    return float(min(end, reach))


# ----------------------------------------------------------------------------------- square plates
@dataclass(frozen=True)
class _Side:
    """A fitted side: a point on it and its unit direction (small px), the rim band width (px) and the
    fraction of its central part with the outer edge present; ``height`` the outer edge's strength
    (median derivative across it)."""

    point: np.ndarray
    direction: np.ndarray
    rim: float
    support: float
    height: float


def _fit_side(small: _Small, p: np.ndarray, q: np.ndarray, outward: np.ndarray, side: float,
              reach: float, pieces: int = 12) -> _Side | None:
    """Refit the side p-q (small px) to the outermost clear edge within ``reach`` px outside it.

    The derivative across the side is sampled over a band along its central part (cut into
    ``pieces``, each reduced to its median profile) and along its continuation past both ends. Lines
    across the pieces at tilts up to 1.5 degrees are scored by the median of the pieces' profiles along
    them (a Hough transform with a median: robust to texture and to gaps); the outermost clear peak
    of the best-tilt profile (see :func:`_outer_peaks`) that can be followed through 60 % of the
    pieces along a straight line is the outer edge; the line is fitted to its sub-px position in each
    piece. Without one (a side running out of the image, say) the side is kept where it is and its
    support halved. None when too little of the side lies in the image."""
    length = float(np.linalg.norm(q - p))
    u = (q - p) / length
    t_mid = np.arange(_CENTRAL * length, (1 - _CENTRAL) * length, 1.0)
    t_out = np.concatenate([np.arange(-0.12 * length, 0.0, 1.0), np.arange(length, 1.12 * length, 1.0)])
    t = np.concatenate([t_mid, t_out])
    band = _sample_band(small.pixels, p + t[:, None] * u, np.broadcast_to(outward, (len(t), 2)), t,
                        0.1 * side + 4, reach + 8)
    central = np.flatnonzero((band.t >= 0) & (band.t <= length))
    parts = [part for part in np.array_split(central, pieces) if len(part) >= 4]
    if len(central) < 0.3 * len(t_mid) or len(parts) < 4:
        return None
    ends = [e for e in (np.flatnonzero(band.t < 0), np.flatnonzero(band.t > length)) if len(e) >= 0.04 * length]
    pieces_at = _Pieces(band, parts, ends)
    d0, height, a, b, doubt = _edge_line(pieces_at, reach)
    point = p + pieces_at.t0 * u + a * outward
    direction = (u + b * outward) / np.linalg.norm(u + b * outward)
    level = max(3.0 * _floor(pieces_at.profile), 0.3 * height)
    support = doubt * _support(band, central, a + b * (band.t[central] - pieces_at.t0), level)
    rim = _band_width(pieces_at.profile, band.d, d0, 0.08 * side, max(0.015 * side, 3.0))
    return _Side(point, direction, rim, support, height)


_SLOPES = np.tan(np.deg2rad(np.arange(-1.5, 1.501, 0.1)))  # tilts tried across a side's pieces


class _Pieces:
    """A side's band cut into pieces: their median profiles (K x D) and centres ``t`` (px), the best
    tilt (index into ``_SLOPES``) for each offset, the median profile along it (``profile``) and, when
    the band reaches past the side's ends, the strongest of the end pieces along it (``beyond``)."""

    def __init__(self, band: _Band, parts: list[np.ndarray], ends: list[np.ndarray]) -> None:
        self.d = band.d
        self.profiles = np.stack([band.profile(part) for part in parts])
        self.centres = np.array([band.t[part].mean() for part in parts])
        self.t0 = float(self.centres.mean())
        scores = _median_of_valid(_tilted(self.profiles, self.centres - self.t0, _SLOPES, self.d))  # B x D
        self.tilt = np.nan_to_num(scores, nan=-np.inf).argmax(axis=0)
        columns = np.arange(len(self.d))
        self.profile = scores[self.tilt, columns]
        self.beyond = None
        if ends:
            outer = np.stack([band.profile(e) for e in ends])
            at = _tilted(outer, np.array([band.t[e].mean() for e in ends]) - self.t0, _SLOPES, self.d)
            self.beyond = np.nan_to_num(at, nan=0.0).max(axis=1)[self.tilt, columns]


def _edge_line(pieces: _Pieces, reach: float) -> tuple[float, float, float, float, float]:
    """The outer edge of a side's band: its offset d0 and height on the best-tilt profile, the fitted
    line ``d = a + b (t - t0)`` (px) and a factor for the side's support (1, or 0.5 where no clear edge
    was found and the line is kept as it was)."""
    needed = max(4, 0.6 * len(pieces.centres))
    dt = pieces.centres - pieces.t0
    for k, height in _outer_peaks(pieces.profile, pieces.d, reach, pieces.beyond)[:4]:
        d0 = _subpixel(pieces.profile, pieces.d, k)
        ts, ds = _locate(pieces.profiles, dt, pieces.d, d0 + _SLOPES[pieces.tilt[k]] * dt, 0.4 * height)
        if len(ts) >= needed:
            b, a, inliers = _line_fit(ts, ds)
            if inliers >= needed:  # a straight edge along the side, not a mark or a texture
                return d0, height, a, b, 1.0
    middle = int(np.argmin(np.abs(pieces.d)))
    return 0.0, float(np.nan_to_num(pieces.profile[middle])), 0.0, 0.0, 0.5


def _tilted(profiles: np.ndarray, dt: np.ndarray, slopes: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Profiles (K x D, offsets ``d`` at even steps) read along tilted lines: ``out[b, k, i]`` is profile
    k at offset ``d[i] + slopes[b] * dt[k]`` (linear interpolation, NaN outside), shape B x K x D."""
    position = (d[None, None, :] + slopes[:, None, None] * dt[None, :, None] - d[0]) / (d[1] - d[0])
    low = np.floor(position).astype(np.int64)
    frac = position - low
    count = profiles.shape[1]
    k = np.arange(profiles.shape[0])[None, :, None]
    left = np.where((low >= 0) & (low < count), profiles[k, np.clip(low, 0, count - 1)], np.nan)
    right = np.where((low + 1 >= 0) & (low + 1 < count), profiles[k, np.clip(low + 1, 0, count - 1)], np.nan)
    return left * (1 - frac) + right * frac


def _median_of_valid(values: np.ndarray) -> np.ndarray:
    """Median over axis 1 of B x K x D values, ignoring NaN; NaN where fewer than half are valid."""
    valid = np.isfinite(values)
    if valid.all():
        return np.median(values, axis=1)
    count = valid.sum(axis=1)
    ordered = np.sort(np.where(valid, values, np.inf), axis=1)  # NaN (as +inf) last
    low = np.take_along_axis(ordered, (np.maximum(count - 1, 0) // 2)[:, None, :], axis=1)[:, 0, :]
    high = np.take_along_axis(ordered, np.minimum(count // 2, values.shape[1] - 1)[:, None, :], axis=1)[:, 0, :]
    median = 0.5 * (low + high)
    return np.where(count >= 0.5 * values.shape[1], median, np.nan)


def _line_fit(t: np.ndarray, d: np.ndarray) -> tuple[float, float, int]:
    """Least-squares slope and offset of d = a + b t, refitted once without the points more than 1 px
    off; returns them and the number of points within 1 px of the final line."""
    b, a = np.polyfit(t, d, 1)
    keep = np.abs(d - (a + b * t)) <= 1.0
    if keep.sum() >= 3 and not keep.all():
        b, a = np.polyfit(t[keep], d[keep], 1)
    return float(b), float(a), int((np.abs(d - (a + b * t)) <= 1.0).sum())


def _meet(p1: np.ndarray, d1: np.ndarray, p2: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Intersection of the lines p1 + s d1 and p2 + r d2."""
    matrix = np.column_stack([d1, -d2])
    if abs(np.linalg.det(matrix)) < 1e-9:
        return 0.5 * (p1 + p2)
    s, _ = np.linalg.solve(matrix, p2 - p1)
    return p1 + s * d1


def _outward(p: np.ndarray, q: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Unit normal of the segment p-q pointing away from ``centre``."""
    u = (q - p) / np.linalg.norm(q - p)
    n = np.array([u[1], -u[0]])
    return n if np.dot(n, 0.5 * (p + q) - centre) >= 0 else -n


def _refine_quad(small: _Small, corners: np.ndarray) -> tuple[np.ndarray, list[_Side]] | None:
    """Move each side of ``corners`` (small px) to the plate's outer edge and refit it (two passes: the
    first looks up to 6 % of the side outwards, the second 1.5 %)."""
    sides: list[_Side] = []
    for reach in (0.06, 0.015):
        side = float(np.mean(np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)))
        centre = corners.mean(axis=0)
        sides = []
        for i in range(4):
            p, q = corners[i], corners[(i + 1) % 4]
            fitted = _fit_side(small, p, q, _outward(p, q, centre), side, reach * side + 2)
            if fitted is None:
                return None
            sides.append(fitted)
        corners = np.array([_meet(sides[i - 1].point, sides[i - 1].direction, sides[i].point, sides[i].direction)
                            for i in range(4)])
    return corners, sides


def _corner_radius(small: _Small, corners: np.ndarray, level: float) -> float | None:
    """Radius of the rounded corners as a fraction of the side, or None when it cannot be seen.

    Rays from each (virtual) corner into the plate, 20 to 70 degrees from the sides (in the plate's
    perspective), meet the outer edge first (the first derivative of at least ``level``); the arc
    tangent to both sides through that point gives a radius; the median over the corners (of at least
    two where a third of the rays meet an edge) of each corner's median is returned.
    """
    side = float(np.mean(np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)))
    s = np.arange(0.0, 0.4 * side, _STEP) / side  # distance from the corner, unit-square units
    angles = np.deg2rad(np.linspace(20.0, 70.0, 21))
    inward = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])  # TL, TR, BR, BL
    anchors = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    direction = inward[:, None, :] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)[None]  # (4, A, 2)
    unit = anchors[:, None, None, :] + s[None, None, :, None] * direction[:, :, None, :]  # (4, A, S, 2)
    points = _project(_unit_homography(corners), unit.reshape(-1, 2))
    values = _sample(small.pixels, points).reshape(*unit.shape[:3], -1)
    g = _derivative(values, axis=2)  # (4, A, S-1)
    h, w = small.pixels.shape[:2]
    inside = ((points[:, 0] >= 0) & (points[:, 0] <= w - 1) & (points[:, 1] >= 0) & (points[:, 1] <= h - 1))
    inside = inside.reshape(unit.shape[:3])[:, :, 1:]
    hit = (g >= level) & inside
    found = hit.any(axis=2)
    first = np.argmax(hit, axis=2)
    if found.mean() < 0.3:
        return None
    dist = 0.5 * (s[first] + s[first + 1])  # (4, A)
    px, py = dist * np.cos(angles)[None], dist * np.sin(angles)[None]
    total = px + py
    radius = total + np.sqrt(np.maximum(total * total - (px * px + py * py), 0.0))  # the arc near the corner
    per_corner = [np.median(r[f]) for r, f in zip(radius, found) if f.mean() >= 0.3]
    return float(np.median(per_corner)) if len(per_corner) >= 2 else None


def _rim(sides: list[float], side: float) -> tuple[float, bool]:
    """Rim width (px) from the four measured band widths: the second largest (one side may carry a
    label or a mark right inside the wall) plus 0.5 % of the side, within 1-8 % of the side; the
    default 3 % when nothing was measured. Returns the width and whether it was measured."""
    widths = np.sort(np.asarray(sides, np.float64))
    if widths[-2] <= 0:
        return DEFAULT_RIM * side, False
    return float(np.clip(widths[-2] + 0.005 * side, 0.01 * side, 0.08 * side)), True


def _find_square(small: _Small) -> PlateRegion | str:
    """The square plate in ``small``, or the reason why none was found."""
    if len(small.ex) < 0.2 * min(small.size):
        return "too few edges for a square plate"
    phi0 = _orientation(small)
    quad = _best_quad(_hough(small, phi0), _hough(small, phi0 + np.pi / 2), small.size)
    if quad is None:
        return "no square outline of long straight edges covering 15-95 % of the image"
    refined = _refine_quad(small, quad[0])
    if refined is None:
        return "the sides of a square outline could not be followed"
    corners, sides = refined
    lengths = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)
    side = float(lengths.mean())
    area = _area(corners) / (small.size[0] * small.size[1])
    if not (MIN_AREA <= area <= MAX_AREA and lengths.min() > 0.85 * lengths.max()
            and abs(np.log((lengths[0] + lengths[2]) / (lengths[1] + lengths[3]))) < _ASPECT):
        return f"the square outline found ({area:.0%} of the image) is not a plate"
    score = float(np.mean([s.support for s in sides]))
    rim, measured = _rim([s.rim for s in sides], side)
    corner = _corner_radius(small, corners, 0.5 * float(np.median([s.height for s in sides])))
    if corner is not None and corner < MIN_CORNER:
        return (f"the square outline found has sharp corners (radius {corner:.1%} of the side): a sheet, tray "
                "or frame, not a plate")
    full = small.to_full(corners)
    full_side = side * small.px
    radius = (DEFAULT_CORNER if corner is None else corner) * full_side
    message = (f"square plate, side {full_side:.0f} px, edge support {score:.0%}, rim {rim * small.px:.0f} px"
               f" ({'measured' if measured else 'default'}), corner radius {radius:.0f} px"
               f" ({'measured' if corner is not None else 'default'})")
    return PlateRegion("square", full, rim * small.px, score, message, small.full_size, corner_radius_px=radius)


# ------------------------------------------------------------------------------------ round plates
def _circle_candidates(small: _Small, count: int = 3) -> list[tuple[np.ndarray, float]]:
    """Candidate circles (centre, radius; small px) with radii for 15-95 % of the image area.

    A gradient Hough transform: every edge pixel votes for centres along its gradient, both ways, at
    the radii allowed (4 px cells); for the best ``count`` centres the distances of the edge pixels
    whose gradient points at the centre give the radius (the best-covered circle)."""
    w, h = small.size
    r_min = np.sqrt(MIN_AREA * w * h / np.pi)
    r_max = min(np.sqrt(MAX_AREA * w * h / np.pi), 0.6 * max(w, h))
    step = max(len(small.ex) // 5000, 1)
    x, y, angle = (v[::step].astype(np.float32) for v in (small.ex, small.ey, small.eangle))
    radii = np.arange(r_min, r_max, 4.0, dtype=np.float32)
    cell = 4.0
    nx, ny = int(w // cell) + 1, int(h // cell) + 1
    votes = []
    for sign in (1.0, -1.0):
        cx = x[:, None] + sign * np.cos(angle)[:, None] * radii[None, :]
        cy = y[:, None] + sign * np.sin(angle)[:, None] * radii[None, :]
        inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        votes.append((cy[inside] // cell).astype(np.int64) * nx + (cx[inside] // cell).astype(np.int64))
    acc = np.bincount(np.concatenate(votes), minlength=nx * ny).reshape(ny, nx).astype(np.float32)
    acc = cv2.GaussianBlur(acc, (0, 0), 1.0)
    peaks = (acc == cv2.dilate(acc, np.ones((5, 5), np.uint8))) & (acc > 0)
    order = np.argsort(acc[peaks])[::-1][:count]
    py, px = np.nonzero(peaks)
    found = []
    for i in order:
        centre = (np.array([px[i], py[i]], np.float64) + 0.5) * cell
        dx, dy = small.ex - centre[0], small.ey - centre[1]
        dist = np.hypot(dx, dy)
        radial = np.abs(np.cos(small.eangle) * dx + np.sin(small.eangle) * dy) > 0.95 * np.maximum(dist, 1e-9)
        use = radial & (dist >= r_min) & (dist <= r_max)
        if use.sum() < 20:
            continue
        hist = np.bincount(np.rint(dist[use]).astype(np.int64), minlength=int(r_max) + 2).astype(np.float64)
        hist = np.convolve(hist, np.ones(3), mode="same") / np.maximum(2 * np.pi * np.arange(len(hist)), 1.0)
        best = int(np.argmax(hist))
        if hist[best] >= 0.2:  # edge pixels on at least a fifth of the circle
            found.append((hist[best], centre, float(best)))
    return [(centre, radius) for _, centre, radius in sorted(found, key=lambda f: -f[0])]


def _fit_circle(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares (Kasa) circle through N x 2 points: centre and radius."""
    x, y = points[:, 0], points[:, 1]
    design = np.column_stack([x, y, np.ones_like(x)])
    solution, *_ = np.linalg.lstsq(design, x * x + y * y, rcond=None)
    centre = 0.5 * solution[:2]
    return centre, float(np.sqrt(max(solution[2] + centre @ centre, 0.0)))


def _refine_circle(small: _Small, centre: np.ndarray, radius: float,
                   sectors: int = 24) -> tuple[np.ndarray, float, float, float] | None:
    """Move a circle (small px) to the plate's outer edge: centre, radius, support and rim (px).

    As for square sides (:func:`_fit_side`): the radial derivative is sampled over a band around the
    circle, the outermost clear peak of its median over ``sectors`` is the outer edge, each sector's
    peak near it is a point and a circle is fitted through them (two passes: 6 % then 1.5 % of the
    diameter outwards)."""
    support, rim = 0.0, 0.0
    for reach in (0.06, 0.015):
        diameter = 2 * radius
        n = max(int(2 * np.pi * radius), 64)
        angles = np.arange(n) * (2 * np.pi / n)
        normals = np.column_stack([np.cos(angles), np.sin(angles)])
        t = angles * radius
        band = _sample_band(small.pixels, centre + radius * normals, normals, t, 0.1 * diameter + 4,
                            reach * diameter + 10)
        if len(band.t) < 0.5 * n:
            return None
        profile = band.profile()
        peaks = _outer_peaks(profile, band.d, reach * diameter + 2)
        if not peaks:
            return None
        k, height = peaks[0]
        d0 = _subpixel(profile, band.d, k)
        parts = [part for part in np.array_split(np.arange(len(band.t)), sectors) if len(part) >= 4]
        profiles = np.stack([band.profile(part) for part in parts])
        centres_t = np.array([band.t[part].mean() for part in parts])
        ts, ds = _locate(profiles, centres_t, band.d, np.full(len(parts), d0), 0.4 * height,
                         4.0 if reach > 0.02 else 1.5)
        if len(ts) < 0.6 * sectors:
            return None
        theta = ts / radius
        points = centre + (radius + ds)[:, None] * np.column_stack([np.cos(theta), np.sin(theta)])
        new_centre, new_radius = _fit_circle(points)
        residual = np.abs(np.linalg.norm(points - new_centre, axis=1) - new_radius)
        if (residual > 1.0).any() and (residual <= 1.0).sum() >= 0.6 * sectors:
            new_centre, new_radius = _fit_circle(points[residual <= 1.0])
        theta = band.t / radius
        expected = new_radius - radius + np.column_stack([np.cos(theta), np.sin(theta)]) @ (new_centre - centre)
        support = _support(band, np.arange(len(band.t)), expected, max(3.0 * _floor(profile), 0.3 * height))
        rim = _band_width(profile, band.d, d0, 0.08 * diameter, max(0.015 * diameter, 3.0))
        centre, radius = new_centre, new_radius
    return centre, radius, support, rim


def _find_round(small: _Small) -> PlateRegion | str:
    """The round plate in ``small``, or the reason why none was found."""
    best = None
    for centre, r in _circle_candidates(small):
        fitted = _refine_circle(small, centre, r)
        if fitted is not None and (best is None or fitted[2] > best[2]):
            best = fitted
    if best is None:
        return "no circle with a followable outer edge"
    centre, radius, score, rim_small = best
    w, h = small.size
    area = np.pi * radius * radius / (w * h)
    if not MIN_AREA <= area <= MAX_AREA:
        return f"the circle found ({area:.0%} of the image) is not a plate"
    diameter = 2 * radius
    rim, measured = (rim_small + 0.005 * diameter, True) if rim_small > 0 else (DEFAULT_RIM * diameter, False)
    rim = float(np.clip(rim, 0.01 * diameter, 0.08 * diameter))
    full_centre = small.to_full(centre[None])[0]
    full_radius = radius * small.px
    box = full_centre + full_radius * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    message = (f"round plate, diameter {2 * full_radius:.0f} px, edge support {score:.0%}, rim {rim * small.px:.0f} px"
               f" ({'measured' if measured else 'default'})")
    return PlateRegion("round", box, rim * small.px, score, message, small.full_size,
                       centre=(float(full_centre[0]), float(full_centre[1])), radius=float(full_radius))
