"""Finding the plate (rootscope.plate): real photos, synthetic square plates, a drawn round plate, no plate."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rootscope import io, synth, synth_camera, synth_draw
from rootscope.errors import ConfigError, ShapeMismatchError
from rootscope.plate import PlateRegion, find_plate, plate_from_rectangle, whole_image
from rootscope.synth import SynthConfig, make_series

# Outer corners (x, y; full-resolution px; top-left, top-right, bottom-right, bottom-left) of the square
# plates in the RhizoScan photos, annotated by hand: the outermost edge of the plate (the lid's rim) was
# read at four points along each straight side on 2x crops (with the intensity profile across the edge
# to place it), a line fitted per side through the points clear of the rounded corners, and the corners
# taken where the lines meet (the plate's corners are rounded, radius about 14 % of the side).
REAL_CORNERS = {
    "J10/Photo_001.jpg": [[579.4, 311.5], [2900.9, 327.2], [2904.6, 2631.2], [570.7, 2651.4]],
    "J10/Photo_011.jpg": [[436.3, 312.1], [2760.9, 190.2], [2890.0, 2500.4], [554.9, 2647.9]],
    "J11/Photo_001.jpg": [[608.0, 154.3], [3076.0, 166.2], [3091.9, 2614.8], [615.5, 2648.1]],
    "J11/Photo_011.jpg": [[469.1, 161.1], [2938.8, 18.6], [3099.6, 2462.7], [624.1, 2648.4]],
}
# The five seedlings near the top of each plate (x, y of the cotyledons' base, full-resolution px).
SEEDLINGS = {
    "J10/Photo_001.jpg": [(1052, 524), (1428, 572), (1808, 580), (2076, 540), (2424, 568)],
    "J10/Photo_011.jpg": [(1020, 532), (1360, 508), (1660, 496), (1948, 488), (2172, 496)],
    "J11/Photo_001.jpg": [(1120, 388), (1520, 424), (1920, 424), (2200, 400), (2580, 424)],
    "J11/Photo_011.jpg": [(1100, 396), (1460, 368), (1780, 348), (2080, 340), (2320, 348)],
}


def side_px(corners: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)))


def corner_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Largest corner distance as a fraction of the true side."""
    return float(np.linalg.norm(np.asarray(found) - truth, axis=1).max() / side_px(truth))


def side_points(corners: np.ndarray, offset: float) -> np.ndarray:
    """The midpoint of each side moved ``offset`` (fraction of the side) outwards (negative: inwards)."""
    centre = corners.mean(axis=0)
    mids = 0.5 * (corners + np.roll(corners, -1, axis=0))
    outward = (mids - centre) / np.linalg.norm(mids - centre, axis=1, keepdims=True)
    return mids + offset * side_px(corners) * outward


def inside(mask: np.ndarray, points) -> list[bool]:
    return [bool(mask[int(round(y)), int(round(x))]) for x, y in points]


# ------------------------------------------------------------------------------------ real photos
@pytest.fixture(scope="module", params=sorted(REAL_CORNERS))
def real_photo(request, shared_data):
    scan = io.read_scan(shared_data / "rhizoscan-arabidopsis" / request.param, convert=False)
    return request.param, scan.pixels, find_plate(scan.pixels)


def test_real_photo_corners(real_photo):
    name, pixels, region = real_photo
    truth = np.array(REAL_CORNERS[name])
    assert region.kind == "square", region.message
    assert region.image_size == (pixels.shape[1], pixels.shape[0])
    assert corner_error(region.corners, truth) < 0.015, (name, region.corners.round(1).tolist())
    assert region.score >= 0.8
    assert 0.03 * side_px(truth) <= region.rim_px <= 0.08 * side_px(truth)  # the rim is measured, not guessed
    assert "measured" in region.message


def test_real_photo_inner_mask(real_photo):
    name, pixels, region = real_photo
    mask = region.inner_mask(pixels.shape)
    assert mask.shape == pixels.shape[:2] and mask.dtype == bool
    truth = np.array(REAL_CORNERS[name])
    h, w = mask.shape
    assert all(inside(mask, SEEDLINGS[name])), "every seedling is measured"
    assert not any(inside(mask, [(0, 0), (w - 1, 0), (w - 1, h - 1), (0, h - 1)])), "the bench is not"
    assert not any(inside(mask, side_points(truth, 0.01))), "nor the bench right outside the plate"
    assert not any(inside(mask, side_points(truth, -0.01))), "nor the plate's rim"
    assert inside(mask, [truth.mean(axis=0)]) == [True]


def test_real_photo_region_round_trip(real_photo):
    _, _, region = real_photo
    again = PlateRegion.from_dict(json.loads(json.dumps(region.to_dict())))
    assert again == region
    assert again.outline().shape[1] == 2


def test_real_photo_float_input_matches(shared_data):
    """read_scan's default float32 pixels give the same plate as its uint8 pixels."""
    path = shared_data / "rhizoscan-arabidopsis" / "J11" / "Photo_001.jpg"
    region = find_plate(io.read_scan(path).pixels)
    assert corner_error(region.corners, np.array(REAL_CORNERS["J11/Photo_001.jpg"])) < 0.015


# -------------------------------------------------------------------------------- synthetic squares
WALL_MM = synth_draw.WALL_MM  # the synthetic plate's plastic wall (mm)


def in_image(corners: np.ndarray, size: int) -> bool:
    return bool((corners >= 0).all() and (corners <= size - 1).all())


@pytest.mark.parametrize("seed, rotation", [(0, 5.0), (1, 5.0), (2, 5.0), (3, 12.0), (4, 20.0)])
def test_synthetic_square(seed, rotation):
    config = SynthConfig(size=640, max_rotation_deg=rotation)
    frames = make_series(frames=3, seed=seed, config=config)
    checked = 0
    for frame in frames:
        truth = frame.plate_corners
        region = find_plate(frame.image)
        if not in_image(truth, config.size):  # moved partly out of the picture: whole or a fit, never wrong
            assert region.kind == "whole" or corner_error(region.corners, truth) < 0.015
            continue
        checked += 1
        assert region.kind == "square", region.message
        assert corner_error(region.corners, truth) < 0.01, (seed, region.corners.round(1).tolist(), truth.round(1))
        mask = region.inner_mask(frame.image.shape)
        roots = frame.mask == 1
        assert mask[roots].mean() > 0.99  # the roots are measured
        assert not mask[~outline_mask(truth, frame.image.shape, -WALL_MM * frame.px_per_mm)].any()  # wall, bench not
    assert checked >= 1


def outline_mask(corners: np.ndarray, shape, grow_px: float = 0.0) -> np.ndarray:
    """Boolean mask of the quadrilateral ``corners`` grown by ``grow_px`` (negative: shrunk)."""
    centre = corners.mean(axis=0)
    scaled = centre + (corners - centre) * (1 + 2 * grow_px / side_px(corners))
    out = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(out, [np.rint(scaled * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return out.astype(bool)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_camera_photo(seed):
    """Zoom, perspective tilt, exposure, white balance and a cluttered bench (pen marks, dots, tape,
    wood grain). Where the plate's wall is as bright as the bench the wall's inner edge may be taken
    for the outline: corners within 1.5 % then, and the measured area still inside the agar."""
    config = SynthConfig.camera(size=640)
    for frame in make_series(frames=3, seed=seed, config=config):
        truth = frame.plate_corners
        region = find_plate(frame.image)
        if not in_image(truth, config.size):
            assert region.kind == "whole" or corner_error(region.corners, truth) < 0.015
            continue
        assert region.kind == "square", region.message
        assert corner_error(region.corners, truth) < 0.015
        mask = region.inner_mask(frame.image.shape)
        assert not mask[~outline_mask(truth, frame.image.shape, -WALL_MM * frame.px_per_mm)].any()


def test_synthetic_truth_from_matrix():
    """The frames' plate_corners are the canonical plate box (synth._plate_box) moved by the inverse of
    each frame's matrix (frame px -> frame 0): the truth the tests above compare with is consistent."""
    config = SynthConfig(size=512)
    x0, y0, x1, y1 = synth._plate_box(config)
    box = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    for frame in make_series(frames=3, seed=4, config=config):
        moved = synth_camera.project(np.linalg.inv(frame.matrix), box)
        assert np.allclose(moved, frame.plate_corners, atol=1e-6)


def test_input_types_agree():
    """uint8, uint16, float, grey and RGBA versions of one image give the same plate."""
    frame = make_series(frames=1, seed=5, config=SynthConfig(size=512))[0]
    rgb = frame.image
    reference = find_plate(rgb)
    variants = [
        np.rint(rgb * 255).astype(np.uint8),
        np.rint(rgb * 65535).astype(np.uint16),
        rgb.astype(np.float64),
        cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY),
        np.dstack([rgb, np.ones(rgb.shape[:2], np.float32)]),
    ]
    for image in variants:
        region = find_plate(image)
        assert region.kind == "square"
        assert corner_error(region.corners, reference.corners) < 0.005


def test_reduced_scale_maps_back():
    """The search runs at max_side px; corners come back in full-resolution px."""
    config = SynthConfig(size=1200)
    frame = make_series(frames=1, seed=2, config=config)[0]
    truth = frame.plate_corners
    for max_side in (256, 512, 1024):
        region = find_plate(frame.image, max_side=max_side)
        assert corner_error(region.corners, truth) < (0.01 if max_side >= 512 else 0.015), max_side


# ------------------------------------------------------------------------------------- round plate
def round_plate(seed: int, size=(700, 900), centre=(470.0, 340.0), radius=290.0, rim=8.0) -> np.ndarray:
    """A round plate drawn here: a pale agar disc with a grey rim ring on a textured blue-grey bench,
    five dark roots inside, a pen stroke and a dot outside (float32 RGB)."""
    rng = np.random.default_rng(seed)
    h, w = size
    texture = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 5) * 0.3
    bench = np.dstack([0.52 + texture, 0.56 + texture, 0.62 + texture])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist = np.hypot(xx - centre[0], yy - centre[1])
    disc = np.clip(radius - dist + 0.5, 0, 1)[..., None]
    ring = disc * np.clip(dist - (radius - rim) + 0.5, 0, 1)[..., None]
    image = bench * (1 - disc) + disc * np.array([0.80, 0.78, 0.62], np.float32)
    image = image * (1 - ring) + ring * np.array([0.66, 0.66, 0.60], np.float32)
    canvas = np.clip(image * 255, 0, 255).astype(np.uint8)
    for k in range(5):
        x, y = centre[0] + (k - 2) * 0.25 * radius, centre[1] - 0.6 * radius
        points = [(x, y)]
        for _ in range(40):
            x, y = x + rng.normal(0, 2.0), y + 0.025 * radius
            points.append((x, y))
        cv2.polylines(canvas, [np.rint(np.array(points) * 16).astype(np.int32)], False, (95, 80, 60), 2,
                      cv2.LINE_AA, 4)
    cv2.line(canvas, (30, 40), (160, 90), (40, 40, 170), 3, cv2.LINE_AA)
    cv2.circle(canvas, (w - 50, h - 60), 10, (40, 40, 40), -1, cv2.LINE_AA)
    noisy = canvas.astype(np.float32) / 255 + rng.normal(0, 0.01, canvas.shape).astype(np.float32)
    return np.clip(noisy, 0, 1)


@pytest.mark.parametrize("seed, centre, radius", [(0, (470.0, 340.0), 290.0), (1, (420.0, 360.0), 220.0),
                                                  (2, (500.0, 330.0), 320.0)])
def test_round_plate(seed, centre, radius):
    image = round_plate(seed, centre=centre, radius=radius)
    for shape in ("auto", "round"):
        region = find_plate(image, shape=shape)
        assert region.kind == "round", region.message
        assert np.hypot(region.centre[0] - centre[0], region.centre[1] - centre[1]) < 0.01 * radius
        assert abs(region.radius - radius) < 0.01 * radius
        assert region.score >= 0.8
    mask = region.inner_mask(image.shape)
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx - centre[0], yy - centre[1])
    assert not mask[dist > radius - 8.0].any()  # neither the rim ring nor the bench
    assert mask[dist < 0.9 * radius].all()
    box = region.corners
    assert np.allclose(box[0], [region.centre[0] - region.radius, region.centre[1] - region.radius])
    assert PlateRegion.from_dict(region.to_dict()) == region
    assert find_plate(image, shape="square").kind == "whole"  # a circle has no four straight sides


# ------------------------------------------------------------------------------------- no plate
def no_plate_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(rng.standard_normal((600, 800)).astype(np.float32), (0, 0), 6)
    paper = np.full((600, 800, 3), (0.25, 0.3, 0.8), np.float32)  # a sheet of germination paper, a root
    cv2.rectangle(paper, (60, 40), (740, 560), (0.15, 0.2, 0.65), -1)
    cv2.polylines(paper, [np.array([[400, 40], [410, 200], [395, 400], [405, 540]], np.int32)], False,
                  (0.9, 0.9, 0.9), 2)
    return {
        "blank": np.full((600, 800, 3), 0.7, np.float32),
        "black uint8": np.zeros((500, 500), np.uint8),
        "noise": rng.random((600, 800, 3)).astype(np.float32),
        "texture": np.clip(0.5 + 2.0 * texture, 0, 1),
        "ramp": np.tile(np.linspace(0, 1, 800, dtype=np.float32), (600, 1)),
        "paper sheet": paper,
    }


@pytest.mark.parametrize("name", sorted(no_plate_images()))
def test_no_plate_gives_whole_image(name):
    image = no_plate_images()[name]
    region = find_plate(image)
    assert region.kind == "whole", region.message
    assert region.score == 0.0 and region.rim_px == 0.0
    assert region.message.startswith("no plate found (") and "whole image" in region.message
    assert region.inner_mask(image.shape).all()
    h, w = image.shape[:2]
    assert region.image_size == (w, h)
    assert np.allclose(region.outline(), [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])


# ------------------------------------------------------------------------------- region, rectangle
def test_plate_from_rectangle():
    region = plate_from_rectangle(100, 50, 400, 380, (640, 480))
    assert region.kind == "square" and region.score == 1.0
    assert np.allclose(region.corners, [[99.5, 49.5], [499.5, 49.5], [499.5, 429.5], [99.5, 429.5]])
    assert region.rim_px == pytest.approx(0.03 * 380)
    mask = region.inner_mask((480, 640))
    assert mask[240, 300] and not mask[49, 300] and not mask[60, 300] and not mask[240, 105]
    assert not mask[55, 105]  # the rounded corner
    assert mask.sum() < 400 * 380
    exact = plate_from_rectangle(10, 10, 50, 40, rim_px=0, corner_radius_px=0)
    assert exact.image_size == (60, 50)
    assert exact.inner_mask((50, 60)).sum() == 50 * 40
    assert PlateRegion.from_dict(json.loads(json.dumps(region.to_dict()))) == region


@pytest.mark.parametrize("args, kwargs", [((0, 0, 0, 10), {}), ((0, 0, 10, -5), {}),
                                          ((0, 0, 100, 100), {"rim_px": 60})])
def test_plate_from_rectangle_refuses(args, kwargs):
    with pytest.raises(ConfigError):
        plate_from_rectangle(*args, **kwargs)


def test_region_validation_and_equality():
    whole = whole_image((40, 30), "nothing here")
    assert whole.inner_mask((30, 40)).all() and whole.score == 0.0
    assert whole == PlateRegion.from_dict(whole.to_dict())
    assert whole != whole_image((40, 31), "nothing here")
    with pytest.raises(ConfigError):
        PlateRegion("oval", np.zeros((4, 2)), 0.0, 0.0, "", (10, 10))
    with pytest.raises(ConfigError):
        PlateRegion("round", np.zeros((4, 2)), 0.0, 0.0, "", (10, 10))  # no centre and radius
    with pytest.raises(ConfigError):
        PlateRegion.from_dict({"kind": "square"})
    with pytest.raises(AttributeError):
        whole.rim_px = 3.0  # frozen
    assert not whole.corners.flags.writeable


def test_bad_arguments():
    image = np.zeros((64, 64), np.float32)
    with pytest.raises(ConfigError):
        find_plate(image, shape="oval")
    with pytest.raises(ConfigError):
        find_plate(image, max_side=100)
    with pytest.raises(ShapeMismatchError):
        find_plate(np.zeros((10, 10, 10, 3)))
    with pytest.raises(ShapeMismatchError):
        find_plate(np.zeros((20, 20)))
