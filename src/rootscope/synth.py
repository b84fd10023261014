"""Synthetic plate scans over time with exact ground truth.

A square agar plate with seedlings sown along a line; primary roots grow down with gravitropic
waviness, laterals (and a few second-order laterals) emerge over time, some roots cross. Each frame
is the plate at a later time, moved on the scanner by a known rotation and shift, and comes with its
class mask, RSML, branching points, tips, true lengths, the plate's corners and the matrix back to
the first frame. Camera effects (zoom, perspective tilt, exposure, white balance, a cluttered bench;
see :mod:`rootscope.synth_camera` and :meth:`SynthConfig.camera`) are off by default; the matrix
includes the zoom and the tilt exactly.

>>> frames = make_series(frames=3, seed=1, config=SynthConfig(size=512))
>>> frames[2].lengths.length_mm.sum() > frames[0].lengths.length_mm.sum()
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from . import io, rsml
from . import synth_camera
from . import synth_draw as draw
from .errors import ConfigError
from .synth_arch import Region, Seedling, grow_seedlings


@dataclass(frozen=True)
class SynthConfig:
    """Settings of a synthetic plate series. Sizes in mm or px as named, times in hours after sowing.

    ``size`` is the side of the square scan (px); the plate (``plate_mm``) sits in a field of
    ``plate_mm + 2 * margin_mm``, which sets ``px_per_mm``. Frame ``k`` is taken at
    ``start_h + k * interval_h`` (plus a few minutes of jitter). Frames after the first are moved by
    a rotation up to ``max_rotation_deg`` and a shift up to ``max_shift_px`` in x and y (default:
    5 % of ``size``, i.e. 100 px at 2000 px; at most 15 %, 300 px). Roots are grown up to
    ``horizon_h`` (or the last frame, if later), so the plants do not depend on the number of frames
    within that horizon.

    Camera effects, all off (0 / False) by default, so the default series stays as it always was:

    - ``max_zoom`` (relative, 0 to 0.25): frames after the first are scaled by a factor drawn in
      ``[1 - max_zoom, 1 + max_zoom]`` about the image centre;
    - ``max_tilt`` (fraction of ``size``, 0 to 0.015): frames after the first are tilted by the
      homography that moves each image corner by up to ``max_tilt * size`` px in x and in y;
    - ``exposure`` (0 to 0.3): every frame's gain is drawn in ``[1 - exposure, 1 + exposure]`` and
      an offset in ``[-exposure / 4, exposure / 4]`` (image units, 1 = white);
    - ``white_balance`` (0 to 0.3): R gain ``1 + white_balance * t``, B gain ``1 - white_balance * t``
      with ``t`` in [-1, -0.5] for frame 0 (bluish) and in [0.3, 1] later (yellowish);
    - ``clutter``: the plate lies on a textured bench with pen marks, dots, tape and a note.

    Zoom and tilt act after the plate motion (frame px = camera @ motion @ canonical px) and are in
    each frame's ``matrix``. :meth:`camera` switches all of them on.
    """

    size: int = 2000
    plate_mm: float = 120.0
    margin_mm: float = 8.0
    n_plants: int = 5
    crossings: int = 2
    start_h: float = 120.0
    interval_h: float = 24.0
    horizon_h: float = 336.0
    max_rotation_deg: float = 5.0
    max_shift_px: float | None = None
    light_roots: bool = False
    root_radius_mm: tuple[float, float, float] = (0.2, 0.12, 0.09)
    blur_px: float = 0.7
    noise: float = 0.012
    illumination: float = 0.08
    condensation: float = 1.0
    jpeg_quality: int | None = 90
    rsml_step_px: int = 3
    min_visible_px: float = 2.0
    sowing: datetime = datetime(2025, 10, 1, 9, 0)
    max_zoom: float = 0.0
    max_tilt: float = 0.0
    exposure: float = 0.0
    white_balance: float = 0.0
    clutter: bool = False

    @classmethod
    def camera(cls, **changes) -> SynthConfig:
        """Photos by a camera above a bench: zoom +-25 %, tilt 1.5 % of the side, exposure +-15 %, a clear
        white-balance change (bluish first photo, yellowish later: white_balance 0.12) and clutter.

        ``changes`` override any field, e.g. ``SynthConfig.camera(size=1024)``.
        """
        preset = cls(max_zoom=0.25, max_tilt=0.015, exposure=0.15, white_balance=0.12, clutter=True)
        return replace(preset, **changes)

    @property
    def moves_camera(self) -> bool:
        """True when frames are zoomed or tilted (the matrix is then a homography)."""
        return self.max_zoom > 0 or self.max_tilt > 0

    @property
    def camera_effects(self) -> bool:
        """True when any camera effect is on."""
        return self.moves_camera or self.exposure > 0 or self.white_balance > 0 or self.clutter

    @property
    def px_per_mm(self) -> float:
        return self.size / (self.plate_mm + 2 * self.margin_mm)

    @property
    def shift_px(self) -> float:
        return 0.05 * self.size if self.max_shift_px is None else float(self.max_shift_px)

    def check(self) -> SynthConfig:
        """Raise :class:`ConfigError` for settings that cannot make a sensible plate."""
        problems = []
        if self.size < 256:
            problems.append(f"size={self.size} px is too small; use at least 256")
        if not 1 <= self.n_plants <= 12:
            problems.append(f"n_plants={self.n_plants}; use 1 to 12 seedlings per plate")
        if not 0 <= self.max_rotation_deg <= 20 or not 0 <= self.shift_px <= 0.15 * self.size:
            problems.append("plate motion is limited to 20 degrees and a shift of 15 % of size (300 px at 2000)")
        if self.start_h <= 40 or self.interval_h <= 0 or self.horizon_h < self.start_h:
            problems.append("times must satisfy start_h > 40 (germination), interval_h > 0, horizon_h >= start_h")
        if not (0 <= self.max_zoom <= 0.25 and 0 <= self.max_tilt <= 0.015 and 0 <= self.exposure <= 0.3
                and 0 <= self.white_balance <= 0.3):
            problems.append("camera effects are limited to max_zoom 0.25, max_tilt 0.015, exposure 0.3 and "
                            "white_balance 0.3")
        if problems:
            raise ConfigError("synthetic plate settings: " + "; ".join(problems) + ".")
        return self


@dataclass
class SynthFrame:
    """One synthetic scan and its ground truth (all coordinates in this frame's pixels, x/y).

    ``image`` float32 H x W x 3 in [0, 1]; ``mask`` uint8 (0 background, 1 root, 2 seed, 3 shoot);
    ``scene`` the RSML of all plants; ``branch_points`` (plant, root, parent_root, order, x, y,
    emergence_h) for laterals present at this time; ``tips`` (plant, root, order, x, y,
    emergence_h); ``lengths`` (plant, root, parent_root, order, length_px, length_mm, emergence_h),
    equal to the RSML polyline lengths; ``matrix`` 3 x 3 maps this frame's (x, y, 1) to frame 0
    (a homography when the camera zooms or tilts; divide by the third coordinate); ``time_h`` hours
    after sowing; ``px_per_mm`` the scale (px/mm at the plate centre: times the zoom). Roots that the
    plate motion carries past the image edge stay in the RSML and tables (with coordinates outside
    the image). ``length_mm`` is the physical length; with a tilt it differs from
    ``length_px / px_per_mm`` by the tilt's uneven scale (a few %).

    ``plate_corners`` (4 x 2 float64, frame px) are the corners top-left, top-right, bottom-right,
    bottom-left (on the plate) of the plate's outer square box (the outline has rounded corners of
    5 mm radius); ``agar_corners`` those of the agar inside the 1.4 mm plastic wall (4 mm radius).
    :func:`plate_outline` draws either as a mask.
    ``camera`` is the frame's :class:`rootscope.synth_camera.CameraView` (zoom, tilt, exposure,
    white balance; neutral when the effects are off).
    """

    image: np.ndarray
    mask: np.ndarray
    scene: rsml.Scene
    branch_points: pd.DataFrame
    tips: pd.DataFrame
    lengths: pd.DataFrame
    matrix: np.ndarray
    time_h: float
    px_per_mm: float
    plate_corners: np.ndarray = field(default_factory=lambda: np.zeros((4, 2)))
    agar_corners: np.ndarray = field(default_factory=lambda: np.zeros((4, 2)))
    camera: synth_camera.CameraView = field(default_factory=synth_camera.CameraView)


MASK_CLASSES = {0: "background", 1: "root", 2: "seed", 3: "shoot"}


# ------------------------------------------------------------------------------------ layout
def _plate_box(cfg: SynthConfig) -> tuple[float, float, float, float]:
    m = cfg.margin_mm * cfg.px_per_mm
    return (m, m, m + cfg.plate_mm * cfg.px_per_mm, m + cfg.plate_mm * cfg.px_per_mm)


def _seedlings(rng: np.random.Generator, cfg: SynthConfig, horizon_h: float) -> list[Seedling]:
    mm = cfg.px_per_mm
    x0, y0, x1, y1 = _plate_box(cfg)
    label_left = x1 - 15 * mm  # the label (10 mm wide, 5 mm from the wall) is kept free of roots
    xs = np.linspace(x0 + 14 * mm, label_left - 10 * mm, cfg.n_plants) if cfg.n_plants > 1 else np.array(
        [0.5 * (x0 + label_left)])
    xs = xs + rng.uniform(-1.5, 1.5, cfg.n_plants) * mm
    ys = y0 + 18 * mm + rng.uniform(-0.8, 0.8, cfg.n_plants) * mm
    region = Region(x0 + 3 * mm, y0 + 3 * mm, label_left - 1.5 * mm, y1 - 3 * mm)
    n_cross = min(cfg.crossings, cfg.n_plants - 1) if cfg.n_plants > 1 else 0
    crossers = {int(p) for p in rng.choice(np.arange(1, cfg.n_plants + 1), n_cross, replace=False)}
    radius_px = (1.0, 4.0)
    return grow_seedlings(rng, np.column_stack([xs, ys]), region, mm, horizon_h, crossers,
                          cfg.root_radius_mm, *radius_px)


def _motion(rng: np.random.Generator, cfg: SynthConfig, index: int) -> np.ndarray:
    """3 x 3 matrix mapping canonical (frame 0) px to frame ``index`` px (identity for frame 0)."""
    if index == 0:
        return np.eye(3)
    angle = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
    shift = rng.uniform(-cfg.shift_px, cfg.shift_px, 2)
    c = (cfg.size - 1) / 2.0
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    forward = np.eye(3)
    forward[:2, :2] = rot
    forward[:2, 2] = np.array([c, c]) - rot @ np.array([c, c]) + shift
    return forward


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map N x 2 (x, y) points by a 3 x 3 matrix (affine, or a homography with the perspective division)."""
    if matrix[2, 0] != 0 or matrix[2, 1] != 0 or matrix[2, 2] != 1:
        return synth_camera.project(matrix, points)
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def _scale(cfg: SynthConfig, forward: np.ndarray, points: np.ndarray) -> np.ndarray | float:
    """Frame px per canonical px of ``forward`` at N x 2 canonical points (exactly 1.0 without zoom or tilt)."""
    return synth_camera.local_scale(forward, points) if cfg.moves_camera else 1.0


def _densify(arrays: list[np.ndarray], factor: int) -> list[np.ndarray]:
    """Linearly interpolate ``factor - 1`` extra samples between consecutive entries of each array."""
    n = len(arrays[0])
    if factor <= 1 or n < 2:
        return arrays
    t = np.linspace(0, n - 1, (n - 1) * factor + 1)
    out = []
    for a in arrays:
        cols = a.reshape(n, -1)
        dense = np.column_stack([np.interp(t, np.arange(n), c) for c in cols.T])
        out.append(dense.reshape(-1, *a.shape[1:]))
    return out


# ------------------------------------------------------------------------------------ truth
@dataclass
class _Strokes:
    """Dense centre lines of the visible roots (frame px) with per-point radius (px), opacity and
    root-hair density, ready for :func:`synth_draw.draw_roots`."""

    lines: list[np.ndarray]
    radii: list[np.ndarray]
    opacity: list[np.ndarray]
    hairs: list[np.ndarray]


def _truth(
    seedlings: list[Seedling], time_h: float, forward: np.ndarray, cfg: SynthConfig, root_opacity: float,
    frame_ppm: float,
) -> tuple[rsml.Scene, pd.DataFrame, pd.DataFrame, pd.DataFrame, _Strokes]:
    """RSML scene, tables and drawing strokes of the roots visible at ``time_h`` (frame px).

    ``forward`` maps canonical to frame px; ``frame_ppm`` is the frame's px/mm (RSML metadata).
    """
    ppm = cfg.px_per_mm
    taper = 1.0 * ppm
    plants, rows = [], []
    strokes = _Strokes([], [], [], [])
    for seedling in seedlings:
        lengths = [r.length_at(time_h) for r in seedling.roots]
        visible = [ln >= cfg.min_visible_px for ln in lengths]
        nodes: dict[int, rsml.Root] = {}
        for root, length, shown in zip(seedling.roots, lengths, visible):
            if not shown or (root.parent >= 0 and root.parent not in nodes):
                continue
            dense = root.prefix(length)
            keep = np.unique(np.r_[np.arange(0, len(dense), cfg.rsml_step_px), len(dense) - 1, [
                c.insert_index for c, ln, s in zip(seedling.roots, lengths, visible)
                if s and c.parent == root.root and c.insert_index < len(dense)]].astype(np.int64))
            frame_dense = _apply(forward, dense)
            s = np.minimum(np.arange(len(dense), dtype=np.float64), length)
            scale = _scale(cfg, forward, dense)
            radius = np.maximum(root.radius * np.clip(0.35 + 0.65 * (length - s) / taper, 0.35, 1.0) * scale, 0.8)
            node = rsml.Root(points=frame_dense[keep], id=f"{seedling.plant}.{root.root}",
                             label="primary" if root.order == 1 else "lateral", order=root.order,
                             functions={"diameter": 2 * radius[keep]})
            nodes[root.root] = node
            if root.parent >= 0:
                nodes[root.parent].children.append(node)
            rows.append((seedling.plant, root.root, root.parent, root.order, root.emergence_h, node.points,
                         rsml.polyline_length(dense[keep])))
            to_tip = length - s
            phase = (seedling.plant * 7.3 + root.root * 2.1) % (2 * np.pi)
            tone = (1.0 if root.order == 1 else 0.85) * (1 + 0.12 * np.sin(s / (7 * ppm) * 2 * np.pi + phase))
            tone *= 1 + 0.2 * np.exp(-to_tip / (0.4 * ppm))  # the root cap is denser
            hair = seedling.hairiness * np.clip((to_tip - 0.4 * ppm) / (0.8 * ppm), 0, 1) / root.order
            stroke = [frame_dense, radius, root_opacity * tone, hair * (0.6 + 0.4 * np.exp(-to_tip / (8 * ppm)))]
            if cfg.moves_camera:  # keep the drawn centre line <= 1 px apart when zoomed in
                stroke = _densify(stroke, int(np.ceil(np.max(scale))))
            for target, values in zip((strokes.lines, strokes.radii, strokes.opacity, strokes.hairs), stroke):
                target.append(values)
        primary = [nodes[0]] if 0 in nodes else []
        plants.append(rsml.Plant(roots=primary, id=str(seedling.plant), label=f"plant {seedling.plant}"))
    meta = rsml.Metadata(unit="pixel", resolution=1.0, software="rootscope.synth",
                         extra={"px_per_mm": f"{frame_ppm:.6f}", "time_h": f"{time_h:.4f}"})
    scene = rsml.Scene(plants=plants, metadata=meta)
    cols = ["plant", "root", "parent_root", "order"]
    lengths = pd.DataFrame([(*r[:4], rsml.polyline_length(r[5]), r[4]) for r in rows],
                           columns=[*cols, "length_px", "emergence_h"])
    physical = pd.Series([r[6] for r in rows], dtype=np.float64) / ppm
    lengths.insert(5, "length_mm", physical if cfg.moves_camera else lengths.length_px / ppm)
    branch = pd.DataFrame([(*r[:4], *r[5][0], r[4]) for r in rows if r[2] >= 0],
                          columns=[*cols, "x", "y", "emergence_h"])
    tips = pd.DataFrame([(r[0], r[1], r[3], *r[5][-1], r[4]) for r in rows],
                        columns=["plant", "root", "order", "x", "y", "emergence_h"])
    return scene, branch, tips, lengths, strokes


def _shoot(seedling: Seedling, time_h: float, forward: np.ndarray, scale: float = 1.0):
    """Hypocotyl top and cotyledon ellipses (centre, half-axes, degrees) in frame px at ``time_h``;
    ``scale`` is the frame px per canonical px at the seed."""
    grow = float(np.clip((time_h - seedling.germination_h) / 72.0, 0.3, 1.0))
    up = np.array([np.sin(seedling.shoot_dir), -np.cos(seedling.shoot_dir)])
    top = seedling.seed + up * seedling.hypocotyl_px * grow
    size = seedling.cotyledon_px * (0.5 + 0.5 * grow)
    cotyledons = []
    for side in (-1.0, 1.0):
        a = seedling.shoot_dir + side * 1.0
        direction = np.array([np.sin(a), -np.cos(a)])
        centre = top + direction * size * 1.25
        ends = _apply(forward, np.array([centre, centre + direction]))
        d = ends[1] - ends[0]
        cotyledons.append((ends[0], (size * scale, 0.62 * size * scale), float(np.degrees(np.arctan2(d[1], d[0])))))
    return _apply(forward, top[None])[0], cotyledons


# ----------------------------------------------------------------------------------- public
@dataclass
class _Look:
    """What every frame of a series shares: colours, the canonical plate layer and its coverage, the
    scanner background, illumination, the canonical corners of the plate and of its agar (4 x 2 px) and
    the bench (with its pad, px)."""

    colours: draw.Palette
    layer: np.ndarray
    background: np.ndarray
    light: np.ndarray
    corners: np.ndarray
    agar: np.ndarray
    alpha: np.ndarray | None = None
    bench: np.ndarray | None = None
    pad: int = 0


def make_series(frames: int = 4, seed: int = 0, config: SynthConfig | None = None) -> list[SynthFrame]:
    """Render one plate at ``frames`` times, each with exact ground truth (see :class:`SynthFrame`).

    Deterministic for a given ``seed``; the architecture does not depend on ``frames``. Frame 0 is
    the canonical position (``matrix`` = identity); later frames are moved on the scanner (and, with
    camera effects, zoomed and tilted). Camera effects and the bench draw from their own generators,
    so they never change the plants or the plate.
    """
    cfg = (config or SynthConfig()).check()
    if frames < 1:
        raise ConfigError(f"frames={frames}: ask for at least one frame.")
    horizon = max(cfg.horizon_h, cfg.start_h + frames * cfg.interval_h)
    seedlings = _seedlings(np.random.default_rng([seed, 0]), cfg, horizon)
    look = _make_look(cfg, seed)
    out = []
    for k in range(frames):
        rng = np.random.default_rng([seed, 2, k])
        forward = _motion(rng, cfg, k)
        time_h = cfg.start_h + k * cfg.interval_h + round(rng.uniform(0, 12)) / 60.0
        view = _camera_view(cfg, seed, k)
        if cfg.moves_camera:
            forward = view.matrix @ forward
            forward = forward / forward[2, 2]
        out.append(_render(cfg, seedlings, look, forward, view, time_h, rng))
    return out


def _box_corners(box: tuple[float, float, float, float], inset: float = 0.0) -> np.ndarray:
    """4 x 2 corners (TL, TR, BR, BL) of the box (x0, y0, x1, y1) px moved ``inset`` px inwards."""
    x0, y0, x1, y1 = box[0] + inset, box[1] + inset, box[2] - inset, box[3] - inset
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _camera_view(cfg: SynthConfig, seed: int, index: int) -> synth_camera.CameraView:
    """Frame ``index``'s camera (neutral without camera effects), from its own generator."""
    if not cfg.camera_effects:
        return synth_camera.CameraView()
    rng = np.random.default_rng([seed, 3, index])
    return synth_camera.draw_view(rng, index, cfg.size, cfg.max_zoom, cfg.max_tilt, cfg.exposure, cfg.white_balance)


def _make_look(cfg: SynthConfig, seed: int) -> _Look:
    """Colours, plate layer, background, illumination (one generator, as always) and, with camera
    effects, the plate's coverage and the bench (their own generator)."""
    rng = np.random.default_rng([seed, 1])
    colours = draw.palette(rng, cfg.light_roots)
    plate = _plate_box(cfg)
    background = draw.scanner_background(rng, cfg.size, colours)
    layer = draw.plate_layer(rng, cfg.size, plate, cfg.px_per_mm, colours, f"Col-0 #{seed % 1000}", background)
    light = draw.illumination(rng, cfg.size, cfg.illumination)
    agar = _box_corners(plate, draw.WALL_MM * cfg.px_per_mm)
    look = _Look(colours, layer, background, light, _box_corners(plate), agar)
    if cfg.moves_camera or cfg.clutter:
        look.alpha = draw.plate_alpha(cfg.size, plate, cfg.px_per_mm)
    if cfg.clutter:
        look.pad = synth_camera.bench_pad(cfg.size, cfg.max_zoom, cfg.max_tilt)
        look.bench = synth_camera.bench(np.random.default_rng([seed, 4]), cfg.size, look.pad, cfg.px_per_mm,
                                        plate, colours)
    return look


def _backdrop_and_plate(
    cfg: SynthConfig, look: _Look, forward: np.ndarray, view: synth_camera.CameraView,
) -> np.ndarray:
    """The frame's image before the plants: the moved plate over the scanner background or the bench."""
    if look.alpha is None:
        return draw.place_plate(look.layer, forward[:2], look.background)
    backdrop = look.background
    if look.bench is not None:
        backdrop = synth_camera.view_bench(look.bench, look.pad, view.matrix, cfg.size)
    return synth_camera.place_plate(look.layer, look.alpha, forward, backdrop)


def _render(
    cfg: SynthConfig, seedlings: list[Seedling], look: _Look, forward: np.ndarray, view: synth_camera.CameraView,
    time_h: float, rng: np.random.Generator,
) -> SynthFrame:
    """One frame: the plate moved by ``forward`` (canonical -> frame px) at ``time_h``, and its truth."""
    ppm = cfg.px_per_mm
    centre = np.full((1, 2), (cfg.size - 1) / 2.0)
    frame_ppm = ppm * float(np.max(_scale(cfg, forward, centre)))  # exactly ppm without zoom or tilt
    colours = look.colours
    scene, branch, tips, lengths, strokes = _truth(seedlings, time_h, forward, cfg, colours.root_opacity, frame_ppm)
    image = _backdrop_and_plate(cfg, look, forward, view)
    mask = np.zeros((cfg.size, cfg.size), np.uint8)
    draw.draw_roots(image, mask, strokes.lines, strokes.radii, strokes.opacity, strokes.hairs, 0.15 * frame_ppm,
                    colours, rng)
    rotation = float(np.degrees(np.arctan2(forward[1, 0], forward[0, 0])))
    for s in seedlings:
        if time_h <= s.germination_h:
            continue
        scale = float(np.max(_scale(cfg, forward, s.seed[None])))
        top, cotyledons = _shoot(s, time_h, forward, scale)
        axes = (s.seed_axes[0] * scale, s.seed_axes[1] * scale)
        draw.draw_seedling(image, mask, _apply(forward, s.seed[None])[0], axes, s.seed_angle + rotation,
                           top, cotyledons, 0.35 * ppm * scale, colours)
    frame_corners = _apply(forward, look.corners)
    draw.condensation(rng, image, frame_corners, frame_ppm, cfg.condensation * rng.uniform(0.2, 1.0))
    draw.smudges(rng, image, frame_corners, frame_ppm)
    if cfg.exposure > 0 or cfg.white_balance > 0:
        synth_camera.expose(image, view)
    image = draw.finish(rng, image, look.light, cfg.blur_px, cfg.noise, cfg.jpeg_quality)
    return SynthFrame(image=image, mask=mask, scene=scene, branch_points=branch, tips=tips, lengths=lengths,
                      matrix=_inverse(forward), time_h=time_h, px_per_mm=frame_ppm, plate_corners=frame_corners,
                      agar_corners=_apply(forward, look.agar), camera=view)


def _inverse(forward: np.ndarray) -> np.ndarray:
    """Inverse of a 3 x 3 matrix; a homography's is normalised to a last entry of 1."""
    inverse = np.linalg.inv(forward)
    if forward[2, 0] != 0 or forward[2, 1] != 0:
        inverse = inverse / inverse[2, 2]
    return inverse


def plate_outline(frame: SynthFrame, agar: bool = False) -> np.ndarray:
    """The plate's area in ``frame`` (uint8 0/1, image size): inside ``plate_corners``, or with ``agar``
    inside ``agar_corners`` (the wall left out). Corners are drawn square (the plate's are rounded)."""
    corners = frame.agar_corners if agar else frame.plate_corners
    out = np.zeros(frame.mask.shape, np.uint8)
    cv2.fillPoly(out, [np.rint(corners * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return out


def truth_overlay(frame: SynthFrame) -> np.ndarray:
    """The frame with its ground truth drawn over it (uint8 RGB), for looking at."""
    return draw.overlay(frame.image, frame.mask, frame.branch_points[["x", "y"]].to_numpy(),
                        frame.tips[["x", "y"]].to_numpy())


def frame_stem(plate: str, frame: SynthFrame, cfg: SynthConfig) -> str:
    """File stem ``<plate>_<YYYY-MM-DD_HHhMM>`` that :func:`rootscope.io.parse_time` reads."""
    when = cfg.sowing + timedelta(hours=frame.time_h)
    return f"{plate}_{when:%Y-%m-%d_%Hh%M}"


def write_experiment(
    out: str | os.PathLike, plates: int = 2, frames: int = 4, seed: int = 0, config: SynthConfig | None = None,
    overlays: bool = False,
) -> list[Path]:
    """Write a synthetic experiment folder; returns the scan paths.

    Scans go to ``out/raw/<plate>/<plate>_<time>.png`` (8-bit RGB, px/mm in the PNG), truth to
    ``out/truth/<plate>/<stem>_mask.png``, ``<stem>.rsml``, ``<stem>_branch_points.csv``,
    ``<stem>_tips.csv``, ``<stem>_lengths.csv`` (mm and px), ``<stem>_matrix.json`` (3 x 3 to the
    first frame) and, with ``overlays``, ``<stem>_overlay.png``. Plate ``i`` uses seed
    ``seed * 1000 + i``.
    """
    cfg = config or SynthConfig()
    if plates < 1:
        raise ConfigError(f"plates={plates}: ask for at least one plate.")
    out = Path(out)
    written = []
    for i in range(plates):
        name = f"plate{i + 1:02d}"
        series = make_series(frames, seed * 1000 + i, cfg)
        raw, truth = out / "raw" / name, out / "truth" / name
        first = frame_stem(name, series[0], cfg)
        for frame in series:
            stem = frame_stem(name, frame, cfg)
            written.append(io.write_image(raw / f"{stem}.png", frame.image, px_per_mm=frame.px_per_mm))
            io.write_image(truth / f"{stem}_mask.png", frame.mask)
            rsml.write_rsml(truth / f"{stem}.rsml", frame.scene)
            io.write_table(truth / f"{stem}_branch_points.csv", _mm(frame.branch_points, frame.px_per_mm))
            io.write_table(truth / f"{stem}_tips.csv", _mm(frame.tips, frame.px_per_mm))
            io.write_table(truth / f"{stem}_lengths.csv", frame.lengths)
            io.write_json(truth / f"{stem}_matrix.json", {
                "matrix": frame.matrix, "maps": f"{stem} (x, y, 1) -> {first} (x, y, 1)", "reference": first,
                "time_h": frame.time_h, "px_per_mm": frame.px_per_mm})
            if overlays:
                io.write_image(truth / f"{stem}_overlay.png", truth_overlay(frame))
    return written


def _mm(table: pd.DataFrame, px_per_mm: float) -> pd.DataFrame:
    """Add x_mm, y_mm beside the pixel columns x, y."""
    return table.assign(x_mm=table.x / px_per_mm, y_mm=table.y / px_per_mm)

