"""RSML: round trip, the real dialects (RootNav, TILLMore, 2D+t), spline geometry, helpers, masks, bad inputs."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
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
    observation_index,
    plant_length,
    read_rsml,
    render_mask,
    root_length,
    root_table,
    scene_at,
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
        ("time.rsml", b'<rsml><scene><plant><root><geometry><polyline><point coord_x="1" coord_y="2" coord_th="x"/>'
                      b"</polyline></geometry></root></plant></scene></rsml>", "point 0 coord_th: 'x' is not a number"),
        ("ragged.rsml", b'<rsml><scene><plant><root ID="r"><geometry><polyline><point coord_x="1" coord_y="2" '
                        b'coord_th="0" diameter="1"/><point coord_x="1" coord_y="3" coord_th="6"/>'
                        b"</polyline></geometry></root></plant></scene></rsml>", "root 'r', point 1: no 'diameter'"),
        ("hours.rsml", b"<rsml><metadata><observation-hours>0,6,six</observation-hours></metadata></rsml>",
         "observation-hours"),
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


# ------------------------------------------------------------------------------------- 2D+t RSML
def _raw_roots(path: Path) -> list[ET.Element]:
    """The file's <root> elements, parsed independently of rootscope, in document (depth-first) order."""
    return list(ET.parse(path).getroot().iter("root"))


def _raw(root: ET.Element, attribute: str) -> np.ndarray:
    return np.array([float(p.get(attribute)) for p in root.findall("geometry/polyline/point")])


def test_rootsystemtracker_2dt_file_reads_roots_points_times_and_diameters(rst_path: Path) -> None:
    scene = read_rsml(rst_path)
    raw = _raw_roots(rst_path)
    roots = scene.all_roots()
    assert len(roots) == len(raw) == 89 and len(scene.plants) == 5
    hours = scene.metadata.observation_hours
    assert len(hours) == 18 and hours[0] == 0.0 and hours[-1] == 101.9982
    np.testing.assert_allclose(np.diff(hours), 6.0, atol=0.005)
    for root, element in zip(roots, raw):
        assert root.id == element.get("ID")
        np.testing.assert_array_equal(root.points, np.c_[_raw(element, "coord_x"), _raw(element, "coord_y")])
        for name, attribute in (("time", "coord_th"), ("time_index", "coord_t"), ("diameter", "diameter")):
            np.testing.assert_array_equal(root.functions[name], _raw(element, attribute))
        assert np.all(np.diff(_raw(element, "coord_th")) >= 0) and np.all(np.diff(_raw(element, "coord_t")) >= 0)
        assert np.all(np.diff(root.times_h) >= 0) and np.all(np.diff(root.time_index) >= 0)
    last = roots[-1]  # a late lateral; its base has coord_th 0 though coord_t is 15, as written
    assert (last.id, last.order) == ("5.1.12", 2)
    assert last.points.tolist() == [[1204, 488], [1206, 489], [1207, 491], [1208, 499], [1209, 508]]
    assert last.times_h.tolist() == [0.0, 83.997, 89.9986, 96.0, 101.9982]
    assert last.time_index.tolist() == [15.0, 15.0, 16.0, 17.0, 18.0]
    assert sorted(last.functions) == ["diameter", "time", "time_index", "vx", "vy"]
    # diameters here are 0 (not measured) or 0.01, never negative: not all positive as one might expect
    diameters = np.concatenate([r.diameters for r in roots])
    assert len(diameters) == 1286 and set(np.unique(diameters).tolist()) == {0.0, 0.01}
    assert roots[0].diameters[:3].tolist() == [0.0, 0.01, 0.01]


def test_rootsystemtracker_file_survives_read_write_read(rst_path: Path, tmp_path: Path) -> None:
    scene = read_rsml(rst_path)
    back = read_rsml(write_rsml(tmp_path / "back.rsml", scene))
    _assert_same(scene, back)
    assert back.metadata == scene.metadata  # observation hours, unit, size, image kept as written
    text = (tmp_path / "back.rsml").read_text()
    assert text.count("<point ") == 1286 and ' x="' not in text
    assert '<point coord_t="15" coord_th="0" coord_x="1204" coord_y="488" diameter="0" vx="0" vy="0" />' in text
    assert "<functions>" not in text  # per-point values stay on the points, as RootSystemTracker writes them


def _timed() -> Scene:
    """A primary seen at 0, 6 and 12 h (obs 1-3) with a lateral from 6 h, and an untimed root."""
    lateral = Root(np.array([[11.0, 25.0], [14.0, 26.0], [18.0, 27.5]]), "1.2", order=2,
                   functions={"time": np.array([6.0, 6.0, 12.0]), "time_index": np.array([2.0, 2.0, 3.0])})
    primary = Root(np.array([[10.0, 20.0], [10.0, 30.0], [10.5, 40.25]]), "1.1", children=[lateral],
                   functions={"time_index": np.array([1.0, 2.0, 3.0]), "time": np.array([0.0, 6.0, 12.0]),
                              "diameter": np.array([2.0, 1.5, 1.0]), "length": np.array([0.0, 10.0])},
                   function_domains={"length": "length"})
    metadata = Metadata(last_modified="2026-01-02T03:04:05", extra={"px_per_mm": "20"})
    metadata.observation_hours = np.array([0.0, 6.0, 12.0])
    return Scene([Plant([primary], "1"), Plant([Root(np.array([[50.0, 5.0], [50.0, 9.0]]), "2.1")], "2")], metadata)


def test_rootscope_writes_2dt_rsml_as_rootsystemtracker_does_and_reads_it_back(tmp_path: Path) -> None:
    scene = _timed()
    text = write_rsml(tmp_path / "t.rsml", scene).read_text()
    assert "<observation-hours>0,6,12</observation-hours>" in text
    assert '<point coord_t="3" coord_th="12" coord_x="10.5" coord_y="40.25" diameter="1" />' in text
    assert '<point coord_t="2" coord_th="6" coord_x="11" coord_y="25" />' in text
    assert '<point x="50" y="5" />' in text  # an untimed root is written as before
    assert '<function name="length" domain="length">' in text  # not one value per point: kept a function
    back = read_rsml(tmp_path / "t.rsml")
    _assert_same(scene, back)
    assert back.metadata == scene.metadata and back.metadata.observation_hours.tolist() == [0.0, 6.0, 12.0]
    assert back.plants[0].roots[0].function_domains == {"time_index": "polyline", "time": "polyline",
                                                        "diameter": "polyline", "length": "length"}
    assert back.plants[1].roots[0].times_h is None and back.plants[1].roots[0].functions == {}


def test_scene_at_cuts_roots_back_to_what_had_grown() -> None:
    scene = _timed()
    at_0, at_6, at_12 = (scene_at(scene, h) for h in (0.0, 6.0, 12.0))
    assert at_0.plants[0].roots == [] and at_0.plants[0].id == "1"  # one point reached is not yet a root
    assert at_0.plants[1].roots[0].points.tolist() == [[50.0, 5.0], [50.0, 9.0]]  # untimed: whole
    primary = at_6.plants[0].roots[0]
    assert primary.points.tolist() == [[10.0, 20.0], [10.0, 30.0]] and primary.times_h.tolist() == [0.0, 6.0]
    assert primary.diameters.tolist() == [2.0, 1.5] and primary.functions["length"].tolist() == [0.0, 10.0]
    lateral = primary.children[0]
    assert lateral.points.tolist() == [[11.0, 25.0], [14.0, 26.0]] and lateral.time_index.tolist() == [2.0, 2.0]
    assert scene_at(scene, 5.9).plants[0].roots == []
    _assert_same(scene, at_12)  # everything by the last observation
    assert at_12.metadata == scene.metadata and at_12.metadata is not scene.metadata
    assert scene.plants[0].roots[0].points.shape == (3, 2)  # the input is not changed


def test_scene_at_on_the_real_file_grows_to_the_whole_scene(rst_path: Path) -> None:
    scene = read_rsml(rst_path)
    hours = scene.metadata.observation_hours
    counts = [sum(len(r.points) for r in scene_at(scene, h).all_roots()) for h in hours]
    assert counts[0] == 147 and counts[-1] == 1286 and np.all(np.diff(counts) >= 0)
    first = scene_at(scene, hours[0])
    assert len(first.all_roots()) == 8 and [len(p.roots) for p in first.plants] == [1] * 5  # 5 primaries
    full = {r.id: r for r in scene.all_roots()}
    for root in scene_at(scene, hours[8]).all_roots():  # each root then is the base of the root now
        np.testing.assert_array_equal(root.points, full[root.id].points[: len(root.points)])
    _assert_same(scene, scene_at(scene, hours[-1]))


def test_observation_index_is_rootsystemtracker_coord_t(rst_path: Path) -> None:
    hours = np.array([0.0, 6.0, 12.0])
    assert observation_index([-100.0, -3.0, 0.0, 3.0, 12.0, 15.0], hours).tolist() == [0.0, 0.5, 1.0, 1.5, 3.0, 3.5]
    assert observation_index(np.array(7.0), np.array([5.0])).tolist() == 1.0
    with pytest.raises(ValueError, match="strictly increasing"):
        observation_index(1.0, [0.0, 0.0])
    scene = read_rsml(rst_path)
    th = np.concatenate([r.times_h for r in scene.all_roots()])
    t = np.concatenate([r.time_index for r in scene.all_roots()])
    reached = th > 0  # coord_th is 0 before the first observation and on some laterals' bases
    np.testing.assert_allclose(observation_index(th[reached], scene.metadata.observation_hours), t[reached], atol=0.01)
