"""Synthetic plate series: the ground truth agrees with the pixels, with itself, and over time."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pandas as pd
import pytest

from rootscope import io, rsml
from rootscope.cli import main
from rootscope.errors import ConfigError
from rootscope.metrics import match_points
from rootscope.synth import SynthConfig, make_series, plate_outline, write_experiment
from rootscope.synth_camera import image_corners, project

SMALL = SynthConfig(size=640)


@pytest.fixture(scope="module")
def series():
    return make_series(frames=4, seed=7, config=SMALL)


def _polyline_distance(scene: rsml.Scene, shape: tuple[int, int]) -> np.ndarray:
    """Distance (px) of every pixel to the nearest RSML polyline (drawn 1 px wide)."""
    lines = rsml.render_mask(scene, shape, width_px=1)
    return cv2.distanceTransform((lines == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _dense(points: np.ndarray, step: float = 0.5) -> np.ndarray:
    seg = np.diff(points, axis=0)
    out = [points[:1]]
    for start, d in zip(points[:-1], seg):
        n = max(1, int(np.ceil(np.hypot(*d) / step)))
        out.append(start + d * (np.arange(1, n + 1)[:, None] / n))
    return np.vstack(out)


def test_same_seed_gives_the_same_series_and_another_seed_does_not():
    a = make_series(frames=2, seed=3, config=SMALL)
    b = make_series(frames=2, seed=3, config=SMALL)
    c = make_series(frames=2, seed=4, config=SMALL)
    for fa, fb in zip(a, b):
        assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.mask, fb.mask)
        pd.testing.assert_frame_equal(fa.lengths, fb.lengths)
        assert np.array_equal(fa.matrix, fb.matrix)
    assert not np.array_equal(a[1].mask, c[1].mask)


def test_architecture_does_not_depend_on_the_number_of_frames(series):
    two = make_series(frames=2, seed=7, config=SMALL)
    pd.testing.assert_frame_equal(two[1].lengths, series[1].lengths)


def test_roots_keep_growing_past_the_default_horizon():
    cfg = SynthConfig(size=400, interval_h=72)  # 6 frames: day 5 to day 20
    totals = [f.lengths.length_px.sum() for f in make_series(frames=6, seed=2, config=cfg)]
    assert all(b > a for a, b in zip(totals, totals[1:]))


def _assert_mask_and_rsml_agree(frame) -> None:
    """Root pixels lie on the RSML polylines, and every polyline point inside the image is on (or next
    to) a root, seed or shoot pixel."""
    radius = max(r.functions["diameter"].max() for r in frame.scene.all_roots()) / 2
    dist = _polyline_distance(frame.scene, frame.mask.shape)
    assert dist[frame.mask == 1].max() <= radius + 1.5
    plant_mask = cv2.distanceTransform((frame.mask == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    h, w = frame.mask.shape
    for root in frame.scene.all_roots():
        pts = _dense(root.points)
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] < h - 1)
        rc = np.rint(pts[inside][:, ::-1]).astype(int)
        if len(rc):  # a root may leave a zoomed-in photo
            assert plant_mask[rc[:, 0], rc[:, 1]].max() <= 1.5, root.id


def test_root_pixels_lie_on_the_rsml_polylines_and_polylines_on_root_pixels(series):
    for frame in series:
        _assert_mask_and_rsml_agree(frame)


def test_mask_has_all_four_classes_in_plausible_amounts(series):
    counts = np.bincount(series[-1].mask.ravel(), minlength=4)
    assert counts[1] > 20 * counts[2] > 0 and counts[3] > counts[2]
    assert counts[1] < 0.05 * series[-1].mask.size


def test_branching_points_lie_on_parent_and_child(series):
    frame = series[-1]
    roots = {r.id: r for r in frame.scene.all_roots()}
    assert len(frame.branch_points) >= 10
    for row in frame.branch_points.itertuples():
        child = roots[f"{row.plant}.{row.root}"]
        parent = roots[f"{row.plant}.{row.parent_root}"]
        point = np.array([row.x, row.y])
        assert np.hypot(*(child.points[0] - point)) < 1e-9
        assert rsml.distance_to_polyline(point, parent.points) < 1e-6
        assert frame.mask[int(round(row.y)), int(round(row.x))] in (1, 2)


def test_matrix_maps_frame_landmarks_onto_the_first_frame(series):
    first = series[0]
    seeds0 = _seed_centres(first.mask)
    base0 = first.branch_points.set_index(["plant", "root"])[["x", "y"]]
    for frame in series[1:]:
        assert not np.allclose(frame.matrix, np.eye(3))
        # seeds seen in the image of frame t land on the seeds of frame 0
        seeds = _seed_centres(frame.mask)
        mapped = seeds @ frame.matrix[:2, :2].T + frame.matrix[:2, 2]
        match = _match(mapped, seeds0)
        assert match.tp == len(seeds0) and match.mean_error < 0.5
        # branching points do not move on the plate
        bp = frame.branch_points.set_index(["plant", "root"])[["x", "y"]]
        common = base0.index.intersection(bp.index)
        moved = bp.loc[common].to_numpy() @ frame.matrix[:2, :2].T + frame.matrix[:2, 2]
        assert np.abs(moved - base0.loc[common].to_numpy()).max() < 1e-6


def _match(pred: np.ndarray, truth: np.ndarray):
    return match_points(pred, truth, radius=3.0)


def _seed_centres(mask: np.ndarray) -> np.ndarray:
    """Centroids (x, y) of the seed blobs of a class mask."""
    _, _, _, centroids = cv2.connectedComponentsWithStats((mask == 2).astype(np.uint8), connectivity=8)
    return centroids[1:]


def test_large_plate_motion_is_still_mapped_exactly():
    cfg = SynthConfig(size=512, max_rotation_deg=20, max_shift_px=0.15 * 512)
    frames = make_series(frames=3, seed=1, config=cfg)
    seeds0 = _seed_centres(frames[0].mask)
    for frame in frames[1:]:
        angle = abs(np.degrees(np.arctan2(frame.matrix[1, 0], frame.matrix[0, 0])))
        assert angle <= 20
        expected = seeds0 @ np.linalg.inv(frame.matrix)[:2, :2].T + np.linalg.inv(frame.matrix)[:2, 2]
        whole = np.all((expected > 12) & (expected < 500), axis=1)  # seeds the move keeps in the image
        match = _match(_seed_centres(frame.mask), expected[whole])
        assert match.tp == whole.sum() > 0 and match.mean_error < 0.5


def test_plate_motion_stays_within_the_configured_limits(series):
    for frame in series[1:]:
        m = frame.matrix
        assert abs(np.degrees(np.arctan2(m[1, 0], m[0, 0]))) <= SMALL.max_rotation_deg
        assert np.isclose(np.linalg.det(m[:2, :2]), 1.0)  # rigid: lengths are kept


def test_lengths_table_equals_rsml_polyline_lengths(series):
    for frame in series:
        roots = {r.id: r for r in frame.scene.all_roots()}
        assert len(roots) == len(frame.lengths)
        for row in frame.lengths.itertuples():
            assert row.length_px == pytest.approx(rsml.root_length(roots[f"{row.plant}.{row.root}"]), abs=1e-9)
            assert row.length_mm == pytest.approx(row.length_px / frame.px_per_mm)


def test_roots_grow_and_laterals_appear_over_time(series):
    tables = [f.lengths.set_index(["plant", "root"]).length_px for f in series]
    for before, after in zip(tables, tables[1:]):
        assert set(before.index) <= set(after.index) and len(after) > len(before)
        assert (after.loc[before.index] >= before - 1e-9).all()
        assert after.sum() > before.sum()
    times = [f.time_h for f in series]
    assert times == sorted(times)


def test_last_frame_has_second_order_laterals_and_crossing_roots(series):
    frame = series[-1]
    assert (frame.lengths.order == 3).sum() >= 1
    assert _crossings_between_plants(frame.scene) >= 1


def _crossings_between_plants(scene: rsml.Scene) -> int:
    """Number of segment pairs of roots of different plants that intersect."""
    segs, owner = [], []
    for k, plant in enumerate(scene.plants):
        for root in plant.all_roots():
            segs.append(np.stack([root.points[:-1], root.points[1:]], axis=1))
            owner.append(np.full(len(root.points) - 1, k))
    s, o = np.concatenate(segs), np.concatenate(owner)
    p, r = s[:, 0], s[:, 1] - s[:, 0]
    count = 0
    for i in range(len(s)):
        other = o != o[i]
        q, d = p[other], r[other]
        denom = r[i, 0] * d[:, 1] - r[i, 1] * d[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((q[:, 0] - p[i, 0]) * d[:, 1] - (q[:, 1] - p[i, 1]) * d[:, 0]) / denom
            u = ((q[:, 0] - p[i, 0]) * r[i, 1] - (q[:, 1] - p[i, 1]) * r[i, 0]) / denom
        count += int(np.sum((t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)))
    return count // 2


@pytest.mark.parametrize("light", [False, True])
def test_roots_contrast_with_the_agar_in_both_looks(light):
    frame = make_series(frames=1, seed=2, config=SynthConfig(size=640, light_roots=light))[0]
    grey = frame.image.mean(axis=2)
    roots = frame.mask == 1
    near = cv2.dilate(roots.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & (frame.mask == 0)
    contrast = np.median(grey[roots]) - np.median(grey[near])
    assert (contrast > 0.04) if light else (contrast < -0.04)


def test_write_experiment_makes_a_readable_experiment_folder(tmp_path):
    cfg = SynthConfig(size=400)
    scans = write_experiment(tmp_path, plates=2, frames=2, seed=5, config=cfg, overlays=True)
    assert len(scans) == 4 and all(p.parent.parent == tmp_path / "raw" for p in scans)
    frames = make_series(frames=2, seed=5 * 1000 + 1, config=cfg)  # plate 2
    plate2 = io.sort_by_time(io.list_images(tmp_path / "raw" / "plate02"))
    for frame, path in zip(frames, plate2):
        scan = io.read_scan(path)
        assert scan.px_per_mm == pytest.approx(frame.px_per_mm, abs=1e-3)
        assert abs((scan.time - cfg.sowing).total_seconds() / 3600 - frame.time_h) < 1 / 60
        truth = tmp_path / "truth" / "plate02"
        assert np.array_equal(io.read_labels(truth / f"{path.stem}_mask.png"), frame.mask)
        scene = rsml.read_rsml(truth / f"{path.stem}.rsml")
        table = pd.read_csv(truth / f"{path.stem}_lengths.csv")
        lengths = {r.id: rsml.root_length(r) for r in scene.all_roots()}
        assert np.allclose([lengths[f"{p}.{r}"] for p, r in zip(table.plant, table.root)], table.length_px)
        matrix = np.array(json.loads((truth / f"{path.stem}_matrix.json").read_text())["matrix"])
        assert np.allclose(matrix, frame.matrix)
        overlay = io.read_image(truth / f"{path.stem}_overlay.png")
        assert overlay.shape == frame.image.shape and not np.allclose(overlay, frame.image, atol=0.05)
        for name in ("branch_points", "tips"):
            assert set(pd.read_csv(truth / f"{path.stem}_{name}.csv").columns) >= {"plant", "root", "x", "y"}


@pytest.mark.parametrize("settings", [dict(size=100), dict(max_rotation_deg=30), dict(n_plants=0),
                                      dict(size=2000, max_shift_px=500), dict(max_zoom=0.3), dict(max_tilt=0.02),
                                      dict(exposure=-0.1), dict(white_balance=0.5)])
def test_impossible_settings_are_refused(settings):
    with pytest.raises(ConfigError):
        make_series(frames=1, config=SynthConfig(**settings))


def test_cli_synth_writes_scans_and_refuses_bad_settings(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "exp"), "--plates", "1", "--frames", "1", "--size", "300"]) == 0
    assert len(list((tmp_path / "exp" / "raw" / "plate01").glob("*.png"))) == 1
    assert main(["synth", str(tmp_path / "bad"), "--size", "100"]) == 2
    assert "size" in capsys.readouterr().err


def test_plate_text_is_drawn_alike_under_every_opencv_release():
    """The stroke font draws the pixels it drew under OpenCV 5.0.0 (cv2.putText changed its glyphs in 5.1)."""
    import sys
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    sys.path.insert(0, str(fixtures))
    try:
        from make_opencv_fixtures import text_sample
    finally:
        sys.path.remove(str(fixtures))
    assert np.array_equal(text_sample(), cv2.imread(str(fixtures / "synth_text.png"), cv2.IMREAD_UNCHANGED))


def test_stroke_font_puts_capitals_between_cap_line_and_baseline_and_refuses_unknown_glyphs():
    from rootscope.synth_text import ADVANCE, draw_text, text_strokes

    points = np.vstack(text_strokes("HI", height=12.0))
    assert points[:, 1].min() == -12.0 and points[:, 1].max() == 0.0  # baseline at y = 0, cap line at -12
    assert points[:, 0].min() == 0.0 and points[:, 0].max() == (ADVANCE + 3) * 2.0  # 'I' ends at x = 3 units
    ink = draw_text(np.zeros((30, 60), np.uint8), "H", (10, 20), 12.0, 255)
    rows, cols = np.nonzero(ink > 127)
    assert rows.min() >= 7 and rows.max() <= 21 and cols.min() >= 9 and cols.max() <= 19
    with pytest.raises(ValueError, match="no glyph"):
        text_strokes("Ω", 10.0)


# ------------------------------------------------------------------------------------ camera effects
CAMERA = SynthConfig.camera(size=768)
#: sha256 (first 16 hex) of image (float32) + mask bytes of make_series(3, seed=0, SynthConfig(size=512)),
#: computed with the code before camera effects existed, under OpenCV 5.0.0 and 5.1.0 alike.
DEFAULT_FINGERPRINT = ("d1dda1cb4d6c1c1f", "aca599e556edc7e4", "6077775085a1dcdf")


@pytest.fixture(scope="module")
def photos():
    return make_series(frames=3, seed=3, config=CAMERA)


def test_default_series_is_what_it_was_before_camera_effects():
    frames = make_series(frames=3, seed=0, config=SynthConfig(size=512))
    prints = tuple(hashlib.sha256(f.image.tobytes() + f.mask.tobytes()).hexdigest()[:16] for f in frames)
    assert prints == DEFAULT_FINGERPRINT
    for f in frames:
        assert f.camera.zoom == 1.0 and np.array_equal(f.camera.matrix, np.eye(3))
        assert f.px_per_mm == SynthConfig(size=512).px_per_mm
        assert np.array_equal(f.camera.white_balance, np.ones(3)) and f.camera.gain == 1.0


def test_camera_preset_switches_every_effect_on_at_realistic_levels():
    cfg = SynthConfig.camera(size=1024)
    assert (cfg.size, cfg.max_zoom, cfg.max_tilt, cfg.clutter) == (1024, 0.25, 0.015, True)
    assert cfg.exposure > 0 and cfg.white_balance >= 0.1 and cfg.moves_camera and cfg.camera_effects
    assert not SynthConfig().camera_effects


def test_camera_matrix_maps_every_frame_onto_the_first(photos):
    first = photos[0]
    assert np.array_equal(first.matrix, np.eye(3))
    size = (CAMERA.size, CAMERA.size)
    bases0 = {r.id: r.points[0] for r in first.scene.all_roots()}
    seeds0 = _seed_centres(first.mask)
    for frame in photos[1:]:
        assert frame.image.shape == (*size, 3) and frame.mask.shape == size  # cut to the configured size
        assert np.abs(frame.matrix[2, :2]).max() > 1e-7  # a true homography
        # truth: the bases of the roots (seeds and branching points) of frame k land exactly on frame 0's
        bases = {r.id: r.points[0] for r in frame.scene.all_roots()}
        common = sorted(set(bases0) & set(bases))
        assert len(common) >= 6
        moved = project(frame.matrix, np.array([bases[i] for i in common]))
        assert np.abs(moved - np.array([bases0[i] for i in common])).max() < 1e-6
        # pixels: the seeds, the plate outline and the plate's content land where frame 0 has them
        seen = _warp(np.ones(size, np.uint8), frame.matrix).astype(bool)
        near = _seed_centres(frame.mask)
        near = near[_inside(near, np.ones(size, bool))]  # whole seeds only
        match = _match(project(frame.matrix, near), seeds0[_inside(seeds0, seen)])
        assert match.tp == len(near) > 0 and match.mean_error < 0.7
        outline = _warp(plate_outline(frame), frame.matrix).astype(bool) & seen
        outline0 = plate_outline(first).astype(bool) & seen
        assert (outline & outline0).sum() / (outline | outline0).sum() > 0.98
        inner = cv2.erode(plate_outline(first, agar=True) * seen.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        warped = _band(cv2.warpPerspective(frame.image, frame.matrix, size, flags=cv2.INTER_LINEAR))
        assert np.corrcoef(warped[inner], _band(first.image)[inner])[0, 1] > 0.8
        assert np.corrcoef(_band(frame.image)[inner], _band(first.image)[inner])[0, 1] < 0.3  # it did move


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return cv2.warpPerspective(image, matrix, image.shape[1::-1], flags=cv2.INTER_NEAREST)


def _band(image: np.ndarray, sigma: float = 6.0) -> np.ndarray:
    """Band-pass (difference of Gaussians, 1 px and ``sigma`` px) of the grey image."""
    grey = image.mean(axis=2)
    return cv2.GaussianBlur(grey, (0, 0), 1.0) - cv2.GaussianBlur(grey, (0, 0), sigma)


def _inside(points: np.ndarray, area: np.ndarray, margin: int = 8) -> np.ndarray:
    """Which (x, y) points lie at least ``margin`` px inside the True part of ``area``."""
    core = cv2.erode(area.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8),
                     borderType=cv2.BORDER_CONSTANT, borderValue=0)
    xy = np.rint(points).astype(int)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < area.shape[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < area.shape[0])
    ok[ok] = core[xy[ok, 1], xy[ok, 0]] > 0
    return ok


def test_zoom_and_tilt_stay_within_the_configured_bounds(photos):
    size = CAMERA.size
    zooms = []
    for frame in photos[1:]:
        view = frame.camera
        assert 1 - CAMERA.max_zoom <= view.zoom <= 1 + CAMERA.max_zoom
        assert np.abs(view.tilt_px).max() <= CAMERA.max_tilt * size
        # the camera moves the image corners by the zoom and at most the (zoomed) tilt
        corners = image_corners(size)
        centre = (size - 1) / 2
        zoomed = centre + (corners - centre) * view.zoom
        assert np.abs(project(view.matrix, corners) - zoomed).max() <= CAMERA.max_tilt * size * view.zoom + 1e-6
        # what is left of the matrix after the camera is the rigid plate motion
        motion = np.linalg.inv(view.matrix) @ np.linalg.inv(frame.matrix)
        motion /= motion[2, 2]
        assert np.allclose(motion[2, :2], 0, atol=1e-12) and np.isclose(np.linalg.det(motion[:2, :2]), 1.0)
        assert abs(np.degrees(np.arctan2(motion[1, 0], motion[0, 0]))) <= CAMERA.max_rotation_deg
        assert frame.px_per_mm == pytest.approx(photos[0].px_per_mm * view.zoom, rel=0.05)
        zooms.append(view.zoom)
    assert len(set(zooms)) == len(zooms)
    tilt_only = make_series(frames=2, seed=1, config=SynthConfig(size=512, max_tilt=0.015))[1]
    assert tilt_only.camera.zoom == 1.0 and np.abs(tilt_only.matrix[2, :2]).max() > 0


def test_white_balance_and_exposure_change_the_colours_as_configured():
    cfg = SynthConfig(size=512, white_balance=0.12)
    frames = make_series(frames=3, seed=2, config=cfg)
    agar = (cv2.erode(plate_outline(frames[0], agar=True), np.ones((25, 25), np.uint8)) > 0) & (frames[0].mask == 0)
    ratios = [np.median(f.image[..., 0][agar]) / np.median(f.image[..., 2][agar]) for f in frames]
    balance = [f.camera.white_balance[0] / f.camera.white_balance[2] for f in frames]
    assert balance[0] < 0.95 and min(balance[1:]) > 1.05  # bluish first photo, yellowish later
    for k in (1, 2):
        assert ratios[k] / ratios[0] == pytest.approx(balance[k] / balance[0], rel=0.03)
    bright = make_series(frames=3, seed=2, config=SynthConfig(size=512, exposure=0.25))
    views = [f.camera for f in bright]
    assert all(0.75 <= v.gain <= 1.25 and abs(v.offset) <= 0.25 / 4 for v in views)
    raw = [(np.median(f.image.mean(axis=2)[agar]) - v.offset) / v.gain for f, v in zip(bright, views)]
    assert max(raw) / min(raw) < 1.08  # undoing the exposure brings the frames together (lamp flicker: 3 %)
    assert max(v.gain for v in views) - min(v.gain for v in views) > 0.1


def test_plate_corners_agree_with_the_mask_the_matrix_and_the_plate_box(photos, series):
    from rootscope.synth import _plate_box

    x0, y0, x1, y1 = _plate_box(SMALL)
    wall = 1.4 * SMALL.px_per_mm
    assert np.allclose(series[0].plate_corners, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    assert np.allclose(series[0].agar_corners - series[0].plate_corners, [[wall, wall], [-wall, wall],
                                                                          [-wall, -wall], [wall, -wall]])
    for frames in (series, photos):
        for frame in frames:
            plants = frame.mask > 0
            assert plants.any() and not (plants & (plate_outline(frame, agar=True) == 0)).any()
            for name in ("plate_corners", "agar_corners"):
                back = project(frame.matrix, getattr(frame, name))
                assert np.allclose(back, getattr(frames[0], name), atol=1e-6)


def test_clutter_draws_the_bench_outside_the_plate_only(photos):
    plain = make_series(frames=3, seed=3, config=SynthConfig.camera(size=768, clutter=False))
    compared = 0
    for frame, bare in zip(photos, plain):
        assert np.array_equal(frame.mask, bare.mask) and np.array_equal(frame.matrix, bare.matrix)
        inner = cv2.erode(plate_outline(frame, agar=True), np.ones((25, 25), np.uint8)) > 0
        assert np.abs(frame.image - bare.image)[inner].mean() < 0.01
        outside = cv2.dilate(plate_outline(frame), np.ones((31, 31), np.uint8)) == 0
        if outside.sum() > 20000:  # the bench shows (not zoomed in too far)
            assert np.abs(frame.image - bare.image)[outside].mean() > 0.02
            compared += 1
    assert compared >= 2


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("light", [False, True])
def test_bench_has_texture_marks_and_dots_around_the_plate(seed, light):
    from rootscope import synth_camera, synth_draw
    from rootscope.synth import _plate_box

    pad = synth_camera.bench_pad(CAMERA.size, CAMERA.max_zoom, CAMERA.max_tilt)
    assert pad >= CAMERA.size * (0.5 / 0.75 - 0.5)  # a view zoomed out by 25 % still sees bench
    colours = synth_draw.palette(np.random.default_rng([seed, 1]), light)
    bench = synth_camera.bench(np.random.default_rng([seed, 4]), CAMERA.size, pad, CAMERA.px_per_mm,
                               _plate_box(CAMERA), colours)
    assert bench.shape == (CAMERA.size + 2 * pad,) * 2 + (3,) and bench.dtype == np.float32
    grey = bench.mean(axis=2)
    local = cv2.medianBlur(np.rint(grey * 255).astype(np.uint8), 31).astype(np.float32) / 255
    ink = np.abs(grey - local) > 0.12
    x0, y0, x1, y1 = (int(v) + pad for v in _plate_box(CAMERA))
    outside = np.ones_like(ink)
    outside[y0:y1, x0:x1] = False
    assert ink[outside].mean() > max(0.002, 2 * ink[~outside].mean())
    assert (np.median(grey) < 0.3) == light  # a dark bench behind the dark (light-root) look


def test_camera_frames_keep_the_plants_times_and_physical_lengths(photos):
    rigid = make_series(frames=3, seed=3, config=SynthConfig(size=768))
    for frame, same in zip(photos, rigid):
        assert frame.time_h == same.time_h
        pd.testing.assert_frame_equal(frame.lengths[["plant", "root", "length_mm"]],
                                      same.lengths[["plant", "root", "length_mm"]], atol=1e-9, rtol=0)
        zoom = frame.px_per_mm / same.px_per_mm
        assert frame.lengths.length_px.sum() == pytest.approx(same.lengths.length_px.sum() * zoom, rel=0.03)


def test_root_pixels_and_rsml_agree_under_zoom_and_tilt(photos):
    for frame in photos:
        _assert_mask_and_rsml_agree(frame)


def test_homography_helpers_are_exact():
    from rootscope.synth_camera import homography, local_scale, tilt_matrix, zoom_matrix

    rng = np.random.default_rng(0)
    src = image_corners(500)
    dst = src + rng.uniform(-7, 7, (4, 2))
    h = homography(src, dst)
    assert np.allclose(project(h, src), dst, atol=1e-9)
    assert np.array_equal(tilt_matrix(np.zeros((4, 2)), 500), np.eye(3))
    # the local scale is the square root of the Jacobian determinant (finite differences)
    p, e = np.array([[123.0, 321.0]]), 1e-4
    jac = np.column_stack([(project(h, p + [e, 0]) - project(h, p - [e, 0]))[0],
                           (project(h, p + [0, e]) - project(h, p - [0, e]))[0]]) / (2 * e)
    assert local_scale(h, p)[0] == pytest.approx(np.sqrt(abs(np.linalg.det(jac))), rel=1e-6)
    assert local_scale(zoom_matrix(0.8, 500), p)[0] == pytest.approx(0.8)
