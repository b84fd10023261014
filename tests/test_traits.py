"""Trait tables in mm on drawn plants with known geometry, the analyze command, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rootscope import io, rsml
from rootscope.architecture import find_architecture
from rootscope.cli import main
from rootscope.errors import InputError
from rootscope.report import overlay
from rootscope.traits import class_table, depth_table, measure, plant_table, root_table

from test_architecture import arc, draw, plant_with_laterals

PX_PER_MM = 10.0


@pytest.fixture(scope="module")
def drawn():
    """A plant with four 120 px laterals inserted 55 degrees off a gently turning primary."""
    mask, primary, laterals = plant_with_laterals()
    arch = find_architecture(mask > 0, seed_points=np.array([primary[0][::-1]]))
    return mask, primary, laterals, arch


def test_plant_row_in_mm(drawn):
    mask, primary, laterals, arch = drawn
    row = plant_table(arch, PX_PER_MM, "a", mask > 0).iloc[0]
    assert row.primary_length_mm == pytest.approx(55.0, rel=0.01)
    assert row.total_length_mm == pytest.approx(55.0 + 4 * 12.0, rel=0.02)
    assert row.lateral_count == 4 and row.lateral_count_order3 == 0
    assert row.mean_lateral_length_mm == pytest.approx(12.0, rel=0.03)
    zone_mm = (290 - 80) / PX_PER_MM  # laterals drawn at 80 ... 290 px along the primary
    assert row.branched_zone_mm == pytest.approx(zone_mm, abs=0.5)
    assert row.lateral_density_per_cm == pytest.approx(4 / (zone_mm / 10), rel=0.05)
    xy = np.vstack([primary, *laterals])
    assert row.depth_mm == pytest.approx(np.ptp(xy[:, 1]) / PX_PER_MM, abs=0.5)
    assert row.width_mm == pytest.approx(np.ptp(xy[:, 0]) / PX_PER_MM, abs=0.5)
    assert row.network_area_mm2 == pytest.approx((mask > 0).sum() / PX_PER_MM**2)
    assert row.median_diameter_mm == pytest.approx(0.7, abs=0.12)  # drawn 7 px wide


def test_angles_of_laterals_and_primary_tip(drawn):
    _, primary, _, arch = drawn
    roots = root_table(arch, PX_PER_MM, "a")
    # laterals are drawn 55 degrees off vertical (turning away by 0.3 rad over 120 px); the primary turns
    # 0.4 rad over 550 px towards -x, so at insertion k px the angle to it is 55 +- degrees(0.4) * k / 550
    expected = [55 + side * np.degrees(0.4) * k / 550 for k, side in zip((80, 150, 220, 290), (1, -1, 1, -1))]
    assert np.allclose(roots.emergence_angle_deg.dropna(), expected, atol=4)
    # the primary turns by 0.4 rad over its length: its tip points 0.4 rad off gravity
    assert roots.tip_angle_deg[roots.is_primary].iloc[0] == pytest.approx(np.degrees(0.4), abs=4)


def test_total_length_counts_a_band_of_two_roots_twice_and_says_how_much():
    mask = np.zeros((660, 400), np.uint8)
    a = arc(200, 20, 600, 90)
    draw(mask, a, 5)
    draw(mask, arc(204, 250, 150, 90), 5)  # a second root lying along the first: one band 9 px wide
    arch = find_architecture(mask > 0, seed_points=a[:1, ::-1])
    row = plant_table(arch, PX_PER_MM, "band").iloc[0]
    roots = root_table(arch, PX_PER_MM, "band")
    assert row.overlap_length_mm == pytest.approx(15.0, abs=2.0)
    assert row.total_length_mm == pytest.approx(roots.length_mm.sum() + row.overlap_length_mm)
    assert row.total_length_mm == pytest.approx(75.0, rel=0.03)


def test_depth_bins_add_up_to_the_total_length(drawn):
    _, _, _, arch = drawn
    bins = depth_table(arch, PX_PER_MM, "a", bin_mm=5.0)
    total = plant_table(arch, PX_PER_MM, "a").total_length_mm.iloc[0]
    assert bins.length_mm.sum() == pytest.approx(total, rel=1e-6)
    assert (bins.depth_to_mm - bins.depth_from_mm == 5.0).all()


def test_convex_hull_of_an_l_shaped_root_system():
    mask = np.zeros((300, 300), np.uint8)
    draw(mask, arc(50, 20, 200, 90), 5)
    draw(mask, arc(50, 220, 200, 0), 5)
    arch = find_architecture(mask > 0, seed_points=np.array([[20, 50]]))
    row = plant_table(arch, PX_PER_MM, "l").iloc[0]
    assert row.hull_area_mm2 == pytest.approx(200 * 200 / 2 / PX_PER_MM**2, rel=0.05)
    assert row.hull_perimeter_mm == pytest.approx((400 + 200 * np.sqrt(2)) / PX_PER_MM, rel=0.03)


def test_class_table_measures_each_class():
    mask = np.zeros((100, 200), np.uint8)
    mask[10:30, 20:120] = 1  # 20 x 100 px
    mask[50:60, 150:160] = 2
    mask[70:80, 150:160] = 2
    table = class_table(mask, PX_PER_MM, "c").set_index("name")
    assert table.loc["root", "area_mm2"] == pytest.approx(20.0)
    assert table.loc["root", "width_mm"] == pytest.approx(10.0) and table.loc["root", "depth_mm"] == pytest.approx(2.0)
    assert table.loc["root", "hull_area_mm2"] == pytest.approx(19 * 99 / PX_PER_MM**2, rel=0.01)
    assert table.loc["seed", "n_objects"] == 2 and table.loc["seed", "area_mm2"] == pytest.approx(2.0)


def test_empty_image_gives_a_row_of_zeros_with_a_warning():
    arch = find_architecture(np.zeros((64, 64), bool), name="blank.png")
    tables = measure(arch, PX_PER_MM, "blank", np.zeros((64, 64), np.uint8))
    row = tables["plants"].iloc[0]
    assert len(tables["plants"]) == 1 and row.plant == 0 and row.total_length_mm == 0 and row.lateral_count == 0
    assert "blank.png" in row.warning
    assert tables["roots"].empty and tables["classes"].empty


@pytest.mark.parametrize("scale", [None, 0.0, -3.0, float("nan")])
def test_no_scale_is_refused(drawn, scale):
    with pytest.raises(InputError, match="--px-per-mm"):
        plant_table(drawn[3], scale, "a.png")


def test_overlay_is_an_rgb_picture_of_the_plant(drawn):
    mask, _, _, arch = drawn
    pic = overlay(arch, mask, PX_PER_MM)
    assert pic.shape == mask.shape + (3,) and pic.dtype == np.uint8
    primary = arch.plants[0].roots[arch.plants[0].primary]
    r, c = np.rint(primary.points[len(primary.points) // 2]).astype(int)
    assert pic[r, c, 0] > 150 and pic[r, c, 2] < 120  # primary roots are drawn red


def test_analyze_command_writes_tables_rsml_and_overlays(tmp_path, drawn):
    mask, _, _, arch = drawn
    two = mask.copy()
    two[45:56, 294:307] = 2  # a seed at the top of the primary
    io.write_image(tmp_path / "in" / "plate.png", two)
    io.write_image(tmp_path / "in" / "blank.png", np.zeros_like(mask))
    out = tmp_path / "out" / "traits.csv"
    code = main(["analyze", str(tmp_path / "in"), "--px-per-mm", "10", "-o", str(out),
                 "--rsml", str(tmp_path / "rsml"), "--overlay", str(tmp_path / "ov")])
    assert code == 0
    plants = pd.read_csv(out)
    for column in ("image", "plant", "primary_length_mm", "total_length_mm", "lateral_count",
                   "lateral_density_per_cm", "mean_lateral_length_mm"):
        assert column in plants
    row = plants[plants.image == "plate"].iloc[0]
    assert row.lateral_count == 4 and row.primary_length_mm == pytest.approx(55.0, rel=0.02)
    assert plants[plants.image == "blank"].plant.tolist() == [0]
    assert pd.read_parquet(out.with_suffix(".parquet")).shape == plants.shape
    for name in ("traits_roots", "traits_depth", "traits_classes"):
        assert (out.parent / f"{name}.csv").exists() and (out.parent / f"{name}.parquet").exists()
    scene = rsml.read_rsml(tmp_path / "rsml" / "plate.rsml")
    assert rsml.scene_length(scene) / PX_PER_MM == pytest.approx(row.total_length_mm, rel=1e-4)
    assert (tmp_path / "ov" / "plate_overlay.png").exists()


def test_analyze_without_a_scale_or_with_a_grey_image_fails_clearly(tmp_path, capsys):
    io.write_image(tmp_path / "m.png", np.zeros((32, 32), np.uint8))
    assert main(["analyze", str(tmp_path / "m.png"), "-o", str(tmp_path / "t.csv")]) == 2
    assert "--px-per-mm" in capsys.readouterr().err
    grey = (np.arange(64 * 64).reshape(64, 64) % 200).astype(np.uint8)
    io.write_image(tmp_path / "g.png", grey)
    assert main(["analyze", str(tmp_path / "g.png"), "--px-per-mm", "5", "-o", str(tmp_path / "t.csv")]) == 2
    assert "not binary" in capsys.readouterr().err


def _segmented(folder, mask, sidecar: bool):
    """The drawn plant as `rootscope segment` writes it for a model of classes background, root, seed,
    shoot: 1 = background, 2 = root, 3 = seed, with (or without) the class names beside it."""
    coded = (mask > 0).astype(np.uint8) + 1
    coded[45:56, 294:307] = 3
    path = io.write_image(folder / "plate_mask.png", coded)
    if sidecar:
        io.write_json(folder / "plate_mask.json", {"classes": ["background", "root", "seed", "shoot"], "model": "m.pt"})
    return path


def test_analyze_takes_the_classes_from_the_json_beside_the_mask(tmp_path, drawn):
    _segmented(tmp_path / "in", drawn[0], sidecar=True)
    out = tmp_path / "t.csv"
    assert main(["analyze", str(tmp_path / "in"), "--px-per-mm", "10", "-o", str(out)]) == 0
    plants = pd.read_csv(out)
    assert len(plants) == 1 and plants.lateral_count.item() == 4  # not the background's 'plants'
    assert plants.primary_length_mm.item() == pytest.approx(55.0, rel=0.02)
    classes = pd.read_csv(tmp_path / "t_classes.csv")
    assert sorted(classes.name) == ["root", "seed"] and sorted(classes["class"]) == [2, 3]


def test_analyze_refuses_background_taken_for_roots_when_the_classes_are_unknown(tmp_path, drawn, capsys):
    _segmented(tmp_path / "in", drawn[0], sidecar=False)
    assert main(["analyze", str(tmp_path / "in"), "--px-per-mm", "10", "-o", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert "plate_mask.png: the root class (value 1) covers" in err and "it is background, not roots" in err
    assert "plate_mask.json" in err and not (tmp_path / "t.csv").exists()
    assert main(["analyze", str(tmp_path / "in"), "--px-per-mm", "10", "--root-class", "2", "--seed-class", "3",
                 "-o", str(tmp_path / "t.csv")]) == 0  # the classes given by hand
    assert pd.read_csv(tmp_path / "t.csv").lateral_count.tolist() == [4]


@pytest.mark.parametrize("case", ["1x1", "value 9", "value beyond the named classes"])
def test_analyze_refuses_masks_it_cannot_read_as_classes(tmp_path, drawn, capsys, case):
    import cv2

    path = tmp_path / "m.png"
    if case == "1x1":
        path.write_bytes(cv2.imencode(".png", np.ones((1, 1), np.uint8))[1].tobytes())
        message = "m.png: label image or mask is 1 x 1 px"
    else:
        mask = drawn[0].copy()
        mask[:5, :5] = 9 if case == "value 9" else 5
        io.write_image(path, mask)
        message = "m.png: holds mask value(s) [9], which no class names (without class names"
        if case != "value 9":
            io.write_json(tmp_path / "m.json", {"classes": ["root", "seed", "shoot", "background"]})
            message = "m.png: holds mask value(s) [5], which no class names (4 classes: root, seed, shoot, background)"
    assert main(["analyze", str(path), "--px-per-mm", "10", "-o", str(tmp_path / "t.csv")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()
