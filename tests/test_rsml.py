"""RSML: round trip, both real dialects, spline geometry, helpers, masks and bad inputs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rootscope.errors import InputError
from rootscope.rsml import (
    Metadata,
    Plant,
    Root,
    Scene,
    branching_points,
    distance_to_polyline,
    plant_length,
    read_rsml,
    render_mask,
    root_length,
    root_table,
    scene_length,
    spline_through,
    tips,
    write_rsml,
)


def _scene(seed: int = 0) -> Scene:
    """Two plants with nested roots (orders 1-3), a 3D root, functions, properties, a bare root."""
    rng = np.random.default_rng(seed)

    def pts(n: int, dim: int = 2) -> np.ndarray:
        return np.cumsum(rng.normal(0.0, 7.3, size=(n, dim)), axis=0) + 500.123456789

    third = Root(pts(4), "1.1.1.1", "lateral", 3)
    lateral = Root(pts(6), "1.1.1", "lateral", 2, [third],
                   {"diameter": rng.uniform(1, 4, 6), "time": np.arange(6, dtype=float) / 3.0},
                   {"emergence": "12.5"})
    primary = Root(pts(12), "1.1", "primary", 1, [lateral, Root(np.zeros((0, 2)), "", "", 2)])
    deep = Root(pts(5, 3), "2.1", "primary", 1, functions={"diameter": np.full(5, 0.1)})
    metadata = Metadata(unit="pixel", resolution=1.0, software="rootscope", version="1",
                        last_modified="2026-01-02T03:04:05", user="tester", file_key="plate7",
                        time_sequence={"label": "plate7", "index": "2", "unified": "true"},
                        extra={"observation-hours": "0,24,48"})
    return Scene([Plant([primary], "1", "col-0", {"genotype": "col-0"}), Plant([deep], "2", "")], metadata)


def _assert_same(a: Scene, b: Scene) -> None:
    assert len(a.plants) == len(b.plants)
    for pa, pb in zip(a.plants, b.plants):
        assert (pa.id, pa.label, pa.properties) == (pb.id, pb.label, pb.properties)
        ra, rb = pa.all_roots(), pb.all_roots()
        assert len(ra) == len(rb)
        for x, y in zip(ra, rb):
            assert (x.id, x.label, x.order, len(x.children), x.properties) == (y.id, y.label, y.order,
                                                                                len(y.children), y.properties)
            assert x.points.shape == y.points.shape
            np.testing.assert_allclose(y.points, x.points, atol=1e-6, rtol=0)
            assert x.functions.keys() == y.functions.keys()
            for name in x.functions:
                np.testing.assert_allclose(y.functions[name], x.functions[name], atol=1e-6, rtol=0)


def test_round_trip_keeps_structure_coordinates_functions_and_z(tmp_path: Path) -> None:
    scene = _scene()
    path = write_rsml(tmp_path / "plate.rsml", scene)
    back = read_rsml(path)
    _assert_same(scene, back)
    assert back.plants[1].roots[0].points.shape == (5, 3)  # z kept
    assert back.plants[0].roots[0].children[1].points.shape == (0, 2)  # topology-only root kept
    assert back.metadata == scene.metadata
    write_rsml(tmp_path / "again.rsml", back)  # a second trip changes nothing
    assert (tmp_path / "again.rsml").read_text() == path.read_text()


def test_write_is_atomic_writes_z_only_when_present_and_names_metadata(tmp_path: Path) -> None:
    scene = _scene()
    scene.plants.pop()  # only 2D roots left
    scene.metadata.last_modified = ""
    write_rsml(tmp_path / "flat.rsml", scene)
    assert [p.name for p in tmp_path.iterdir()] == ["flat.rsml"]  # no temporary file left behind
    text = (tmp_path / "flat.rsml").read_text()
    assert " z=" not in text
    for tag in ("unit", "resolution", "software", "last-modified"):
        assert re.search(rf"<{tag}>[^<]+</{tag}>", text), tag
    assert read_rsml(tmp_path / "flat.rsml").metadata.last_modified  # filled with the write time


def test_lengths_in_2d_and_3d() -> None:
    flat = Root(np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 10.0]]))
    deep = Root(np.array([[0.0, 0.0, 0.0], [2.0, 3.0, 6.0]]), children=[flat])
    assert root_length(flat) == pytest.approx(11.0)
    assert root_length(deep) == pytest.approx(7.0)  # z counts
    assert root_length(Root(np.zeros((0, 2)))) == 0.0
    plant = Plant([deep])
    assert plant_length(plant) == pytest.approx(18.0)
    assert scene_length(Scene([plant, plant])) == pytest.approx(36.0)


def test_branching_points_tips_and_distance_to_parent() -> None:
    primary = Root(np.array([[10.0, 0.0], [10.0, 100.0]]), "p")
    lateral = Root(np.array([[12.0, 40.0], [50.0, 60.0]]), "l", order=2)
    primary.children.append(lateral)
    scene = Scene([Plant([primary])])
    bp = branching_points(scene)
    assert bp[["plant", "root", "parent", "order"]].values.tolist() == [[0, 1, 0, 2]]
    assert bp[["x", "y"]].to_numpy().tolist() == [[12.0, 40.0]]
    assert bp["distance_px"].iloc[0] == pytest.approx(2.0)  # to the segment, not its vertices
    assert tips(scene)[["x", "y"]].to_numpy().tolist() == [[10.0, 100.0], [50.0, 60.0]]
    assert distance_to_polyline([0.0, 0.0], np.array([[3.0, 4.0]])) == pytest.approx(5.0)
    table = root_table(scene)
    assert table["parent"].tolist() == [-1, 0] and table["length_px"].iloc[0] == pytest.approx(100.0)


def test_spline_passes_through_control_points_smoothly() -> None:
    control = np.array([[0.0, 0.0], [20.0, 30.0], [25.0, 80.0], [60.0, 90.0], [60.0, 90.0], [61.0, 140.0]])
    curve = spline_through(control)
    for point in control:  # every control point lies on the curve
        assert np.min(np.linalg.norm(curve - point, axis=1)) < 1e-9
    steps = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    assert 1.5 < steps.min() and steps.max() < 2.25  # sampled about every 2 px of arc
    chord = np.linalg.norm(np.diff(control, axis=0), axis=1).sum()
    assert chord <= root_length(Root(curve)) < 1.1 * chord
    turn = np.diff(np.unwrap(np.arctan2(*np.diff(curve, axis=0).T[::-1])))
    assert np.abs(turn).max() < 0.35  # no kinks: heading changes by < 20 degrees per 2 px step
    line = spline_through(np.array([[0.0, 0.0], [10.0, 0.0], [30.0, 0.0]]))
    assert np.all(line[:, 1] == 0.0) and np.all(np.diff(line[:, 0]) > 0)


def test_spline_barely_overshoots_after_a_long_segment() -> None:
    # control points of a TILLMore root (638R.rsml): a 640 px segment into a bend at x = 1624
    control = np.array([[1205.0, 381.0], [1624.0, 863.0], [1621.0, 1070.0], [1619.0, 1434.0], [1606.0, 1471.0]])
    curve = spline_through(control)
    assert curve[:, 0].max() - control[:, 0].max() < 15.0  # uniform Catmull-Rom goes about 30 px beyond


def test_render_mask_of_a_horizontal_line_has_the_given_width() -> None:
    scene = Scene([Plant([Root(np.array([[10.0, 50.0], [90.0, 50.0]]))])])
    mask = render_mask(scene, (100, 120), width_px=5.0, value=3)
    assert mask.dtype == np.uint8 and mask.shape == (100, 120)
    assert set(np.unique(mask)) == {0, 3}
    rows = np.flatnonzero(mask[:, 50])
    assert rows.tolist() == [48, 49, 50, 51, 52]
    area = np.count_nonzero(mask)
    assert 80 * 5 <= area <= 80 * 5 + np.pi * 2.5**2 + 10  # body plus two round caps
    assert mask[50, 6:9].tolist() == [0, 0, 3] and mask[50, 91:94].tolist() == [3, 3, 0]  # caps: 2 px


@pytest.mark.parametrize("degrees", [10, 30, 45, 70])
def test_render_mask_width_holds_at_any_angle(degrees: float) -> None:
    turn = np.deg2rad(degrees)
    start = np.array([100.0, 100.0])
    end = start + 300.0 * np.array([np.cos(turn), np.sin(turn)])
    mask = render_mask(Scene([Plant([Root(np.array([start, end]))])]), (450, 450), width_px=7.0)
    mean_width = (np.count_nonzero(mask) - np.pi * 3.5**2) / 300.0
    assert mean_width == pytest.approx(7.0, rel=0.12)


def test_render_mask_can_use_the_diameter_function() -> None:
    root = Root(np.array([[10.0, 50.0], [50.0, 50.0], [90.0, 50.0]]), functions={"diameter": np.full(3, 9.0)})
    mask = render_mask(Scene([Plant([root])]), (100, 100), width_px=3.0, use_diameter=True)
    assert np.count_nonzero(mask[:, 30]) == 9
    assert np.count_nonzero(render_mask(Scene([Plant([root])]), (100, 100), width_px=3.0)[:, 30]) == 3


def test_dialect_details_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "odd.rsml"
    path.write_text("""<?xml version="1.0"?>
<rsml xmlns:po="http://www.plantontology.org/xml-dtd/po.dtd">
  <metadata><version/><unit>pixel</unit><resolution>xxx dpi</resolution><software>X</software>
    <image><label>scan.png</label><sha256>ab</sha256></image></metadata>
  <scene><weather>sunny</weather>
    <plant ID="" label="">
      <annotations>annotation</annotations>
      <root ID="??" po:accession="PO:0020127">
        <geometry><polyline><point x="1" y="2" z="3"/><point x="4" y="6" z="3"/></polyline></geometry>
        <functions><function name="diameter" domain="polyline"><sample value="2.5"/><sample value="3"/></function></functions>
        <properties><colour value="white"/><depth>4</depth></properties>
        <root><geometry><polyline><point><x>2</x><y>4</y></point><point><x>9</x><y>4</y></point></polyline>
          <rootnavspline><point x="0" y="0"/><point x="99" y="99"/></rootnavspline></geometry></root>
        <root ID="bare"><note>no geometry</note></root>
      </root>
    </plant>
  </scene>
</rsml>""")
    scene = read_rsml(path)
    root = scene.plants[0].roots[0]
    assert root.id == "??" and root.points.tolist() == [[1, 2, 3], [4, 6, 3]]
    assert root.functions["diameter"].tolist() == [2.5, 3.0]
    assert root.properties == {"colour": "white", "depth": "4"}
    assert root.children[0].points.tolist() == [[2, 4], [9, 4]]  # polyline wins over the spline
    assert root.children[0].order == 2 and root.children[1].points.shape == (0, 2)
    assert scene.metadata.extra["resolution"] == "xxx dpi"
    assert scene.metadata.extra["image"] == "<label>scan.png</label><sha256>ab</sha256>"
    write_rsml(tmp_path / "back.rsml", scene)
    assert read_rsml(tmp_path / "back.rsml").metadata.extra["image"] == scene.metadata.extra["image"]


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing.rsml", None, "not found"),
        ("empty.rsml", b"", "empty"),
        ("text.rsml", b"this is not xml at all", "not well-formed"),
        ("cut.rsml", b"<rsml><scene><plant>", "not well-formed"),
        ("other.rsml", b"<svg><g/></svg>", "not RSML"),
        ("laughs.rsml", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "ha">]><rsml>&a;</rsml>', "DTD"),
        ("system.rsml", b'<!DOCTYPE rsml SYSTEM "http://example.org/x.dtd"><rsml/>', "DTD"),
        ("nan.rsml", b'<rsml><scene><plant><root><geometry><polyline><point x="1" y="two"/>'
                     b"</polyline></geometry></root></plant></scene></rsml>", "not a number"),
    ],
)
def test_bad_inputs_raise_input_error_naming_the_file(tmp_path: Path, name: str, content: bytes | None,
                                                       says: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=says) as info:
        read_rsml(path)
    assert name in str(info.value)


def _fits_its_image(scene: Scene, image: Path, margin_px: float = 10.0, min_cover: float = 0.6) -> None:
    """Points lie on the image (x to the right, y down), within a margin for spline overshoot, and a
    mask drawn 5 px wide covers about 5 px per px of length (less where roots overlap)."""
    with Image.open(image) as im:
        width, height = im.size
    points = np.vstack([r.points for r in scene.all_roots() if len(r.points)])
    assert points.min() >= -margin_px and points[:, 0].max() < width + margin_px, image
    assert points[:, 1].max() < height + margin_px, image
    area = np.count_nonzero(render_mask(scene, (height, width), width_px=5.0))
    assert min_cover < area / (5.0 * scene_length(scene)) < 1.05, image


def _real(shared_data: Path, pattern: str) -> list[Path]:
    files = sorted(shared_data.glob(pattern))
    assert files, f"no RSML files match {pattern} in {shared_data}"
    return files


def test_every_rootnav_file_parses_with_one_plant_primary_and_order_2_laterals(shared_data: Path) -> None:
    files = _real(shared_data, "rootnav-osr/*/*.rsml")
    assert len(files) == 15
    for path in files:
        scene = read_rsml(path)
        text = path.read_text()
        table = root_table(scene)
        assert len(scene.plants) == 1 and len(scene.plants[0].roots) == 1, path
        assert len(table) == text.count("<root ") and sorted(set(table["order"])) == [1, 2], path
        assert (table["length_px"] > 0).all() and scene_length(scene) > 0, path
        first = re.search(r"<polyline>\s*<point x=\"([\d.]+)\" y=\"([\d.]+)\" />\s*<point x=\"([\d.]+)\" "
                          r"y=\"([\d.]+)\"", text)
        expected = np.array(first.groups(), dtype=float).reshape(2, 2)
        np.testing.assert_array_equal(scene.plants[0].roots[0].points[:2], expected)  # polyline, not spline
        assert branching_points(scene)["distance_px"].max() < 15.0, path  # laterals start at the parent
        _fits_its_image(scene, path.with_suffix(".jpg"))


def test_every_tillmore_file_parses_with_first_order_spline_roots(shared_data: Path) -> None:
    files = _real(shared_data, "tillmore-barley/train/rsml/*.rsml")
    assert len(files) == 89
    rooted, duplicated = [], []
    for path in files:
        scene = read_rsml(path)
        text = path.read_text()
        table = root_table(scene)
        assert len(scene.plants) == text.count("<plant "), path
        assert len(table) == text.count("<root ") and set(table["order"]) == {1}, path
        assert (table["length_px"] > 0).all(), path
        rooted.append(sum(bool(p.roots) for p in scene.plants))
        controls = re.search(r"<rootnavspline[^>]*>(.*?)</rootnavspline>", text, re.S).group(1)
        control = np.array(re.findall(r'x="([-\d.]+)" y="([-\d.]+)"', controls), dtype=float)
        curve = scene.plants[[bool(p.roots) for p in scene.plants].index(True)].roots[0].points
        assert len(curve) >= len(control)
        assert max(np.min(np.linalg.norm(curve - c, axis=1)) for c in control) < 1e-9, path
        tip_sets = [frozenset(map(tuple, tips(Scene([p]))[["x", "y"]].to_numpy()))
                    for p in scene.plants if p.roots]
        shared_tips = len(set(tip_sets)) < len(tip_sets)  # 426.rsml: its 3 plants end at the same 9 tips
        image = path.parent.parent / "imgs" / f"{path.stem}.jpg"
        _fits_its_image(scene, image, min_cover=0.2 if shared_tips else 0.6)
        duplicated.extend([path.name] if shared_tips else [])
    # plants that have roots: 1 to 3 per image, 3 in most (some files also list plants without roots)
    assert min(rooted) >= 1 and max(rooted) <= 3 and np.mean(np.array(rooted) == 3) > 0.8
    assert duplicated == ["426.rsml"]  # the one annotation error of the set, read as written
