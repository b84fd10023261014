"""End to end: a synthetic experiment through run_experiment, scored against its exact ground truth
(the demo's own path, at a smaller size), and the architecture rules the demo relies on."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from rootscope import io
from rootscope.align import apply
from rootscope.architecture import find_architecture
from rootscope.demo import count_exact, run_demo, score_experiment


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """1 plate x 3 scans of 1000 px (7.35 px/mm, the demo's size); Random Forest of 20 trees trained on six
    other plates with the demo's two correction rounds; the shipped branch-point model when there is one.
    (At 800 px the 6-px seeds are often missed and the median primary error is ~2 %.)"""
    root = tmp_path_factory.mktemp("demo")
    return run_demo(root, size=1000, plates=1, frames=3, trees=20, progress=False, echo=lambda _: None)


def test_the_pipeline_writes_its_report_and_tables(demo):
    assert demo.report == demo.root / "out" / "report.html" and demo.report.is_file()
    traits = pd.read_csv(demo.root / "out" / "traits.csv")
    assert traits.scan.nunique() == 3 and (traits.primary_length_mm > 0).all()
    assert demo.scores.scans == 3 and demo.scores.align_failed == 0
    assert demo.scores.scan_px == 1000 and "at 1000 px" in demo.scores.table()


def test_alignment_recovers_the_synthetic_plate_motion(demo):
    assert len(demo.scores.corner_error_px) == 2  # the two moved scans
    assert demo.scores.corner_error_px.mean() < 1.0 and demo.scores.corner_max_px < 2.0


def test_traits_match_the_ground_truth_within_the_architecture_tolerances(demo):
    """Plants matched to the truth by seed position in the aligned frame; the issue's length tolerances
    (median |error| primary < 2 %, total < 3 %) hold on these RF masks at 1000 px."""
    plants = demo.scores.plants
    matched = plants[plants.matched]
    assert len(matched) >= 0.7 * len(plants)
    assert np.median(matched.primary_err) < 2.0
    assert np.median(matched.total_err) < 3.0
    assert np.median(demo.scores.root_dice) >= 0.8  # 0.87 here; 0.74 without the correction rounds


def test_branching_points_are_found(demo):
    """F1 at 5 px against the laterals that leave their parent's outline. The issue's 0.95 holds on
    truth masks (tests/test_architecture.py); on RF masks of 2-px-wide laterals at 1000 px the misses are
    laterals under ~10 px long (bumps on the parent's outline). Here 0.94 and 14 of 15 lateral counts exact,
    with the shipped branch-point network's points guiding the architecture."""
    tp, fp, fn = demo.scores.branch_tp_emerged[5.0]
    assert 2 * tp / (2 * tp + fp + fn) >= 0.88
    matched = demo.scores.plants[demo.scores.plants.matched]
    assert count_exact(matched.laterals, matched).mean() >= 0.85


def test_the_ceiling_is_the_same_architecture_on_the_true_masks(demo):
    """The true masks give every plant (matched by seed) and branching points near the issue's figure;
    the classifier's masks cannot beat that by much (here they are within 0.03 of it)."""
    scores = demo.scores
    assert scores.plants.truth_mask_laterals.notna().all()
    tp, fp, fn = scores.truth_mask_tp_emerged[5.0]
    ceiling = 2 * tp / (2 * tp + fp + fn)
    assert ceiling >= 0.85
    tp, fp, fn = scores.branch_tp_emerged[5.0]
    assert 2 * tp / (2 * tp + fp + fn) <= ceiling + 0.05


def test_points_of_a_branch_point_network_are_scored(demo, tmp_path):
    """``branches/<scan>.csv`` at the true points (aligned frame) scores F1 1; one point more is one FP.
    A point at a lateral still inside its parent's outline is neither asked for nor false."""
    root = tmp_path / "demo"
    shutil.copytree(demo.root / "truth", root / "truth")
    shutil.copytree(demo.root / "out", root / "out")
    shutil.copy(demo.root / "rootscope.toml", root)
    shutil.rmtree(root / "out" / "plate01" / "branches", ignore_errors=True)
    for matrix_file in sorted((root / "truth" / "plate01").glob("*_matrix.json")):
        stem = matrix_file.name[: -len("_matrix.json")]
        bp = pd.read_csv(matrix_file.parent / f"{stem}_branch_points.csv")
        xy = apply(np.asarray(io.read_json(matrix_file)["matrix"]), bp[["x", "y"]].to_numpy(float).reshape(-1, 2))
        io.write_table(root / "out" / "plate01" / "branches" / f"{stem}.csv",
                       pd.DataFrame({"x_px": xy[:, 0], "y_px": xy[:, 1], "score": 1.0}))
    scores = score_experiment(root)
    assert scores.network_tp[5.0][1:] == (0, 0) and scores.network_tp[5.0][0] > 10
    # laterals still inside their parent's outline are not asked for, and finding them is not false
    tp, fp, fn = scores.network_tp_emerged[5.0]
    assert (fp, fn) == (0, 0) and 0 < tp < scores.network_tp[5.0][0]
    table = pd.read_csv(root / "out" / "plate01" / "branches" / f"{stem}.csv")
    io.write_table(root / "out" / "plate01" / "branches" / f"{stem}.csv",
                   pd.concat([table, pd.DataFrame({"x_px": [5.0], "y_px": [5.0], "score": [1.0]})]))
    assert score_experiment(root).network_tp[5.0][1] == 1
    assert "branch network + skeleton" in scores.table()


def test_the_demo_runs_the_shipped_branch_point_model(demo):
    assert "branches" in (demo.root / "rootscope.toml").read_text()
    assert len(list((demo.root / "out" / "plate01" / "branches").glob("*.csv"))) == 3
    assert demo.scores.network_tp[5.0][0] > 0
    # the architecture reads the network's points (they keep laterals too short to leave their parent)
    manifests = list((demo.root / "out" / "plate01" / "traits" / ".manifests").glob("measure.*.json"))
    assert len(manifests) == 3 and all("branches" in json.loads(m.read_text())["inputs"] for m in manifests)


# ------------------------------------------------------------------ architecture rules used by the demo
def _plant(mask: np.ndarray, x: int, top: int, bottom: int) -> None:
    cv2.line(mask, (x, top), (x + 10, bottom), 1, 5)


def test_a_seed_speck_without_root_is_not_a_plant():
    roots = np.zeros((300, 300), np.uint8)
    seeds = np.zeros_like(roots)
    _plant(roots, 80, 40, 260)
    cv2.circle(seeds, (80, 36), 5, 1, -1)
    cv2.circle(seeds, (200, 150), 3, 1, -1)  # a speck of the seed class far from any root
    arch = find_architecture(roots > 0, seed_mask=seeds > 0, min_plant_length_px=50)
    assert len(arch.plants) == 1 and arch.plants[0].roots
    assert any("left out" in w for w in arch.warnings)


def test_a_root_system_whose_seed_was_not_segmented_still_makes_a_plant():
    roots = np.zeros((300, 300), np.uint8)
    seeds = np.zeros_like(roots)
    _plant(roots, 80, 40, 260)
    _plant(roots, 200, 40, 240)  # its seed is missing from the seed class
    cv2.circle(seeds, (80, 36), 5, 1, -1)
    arch = find_architecture(roots > 0, seed_mask=seeds > 0, min_plant_length_px=50)
    assert len(arch.plants) == 2
    lengths = sorted(p.roots[p.primary].length_px for p in arch.plants)
    assert lengths[0] == pytest.approx(np.hypot(10, 200), rel=0.05)
    assert lengths[1] == pytest.approx(np.hypot(10, 220), rel=0.05)


def test_a_seed_mask_of_specks_only_falls_back_to_the_tops_of_root_systems():
    roots = np.zeros((300, 300), np.uint8)
    _plant(roots, 80, 40, 260)
    seeds = np.zeros_like(roots)
    seeds[150, 200] = seeds[10, 10] = 1  # single pixels: no blob passes the size threshold
    arch = find_architecture(roots > 0, seed_mask=seeds > 0, min_plant_length_px=50)
    assert len(arch.plants) == 1 and arch.plants[0].roots[0].length_px > 200


def test_a_plant_without_segmented_seed_joined_to_another_by_a_lateral_is_still_its_own_plant():
    roots = np.zeros((300, 300), np.uint8)
    seeds = np.zeros_like(roots)
    _plant(roots, 80, 40, 260)
    _plant(roots, 200, 40, 240)  # its seed is missing from the seed class
    cv2.line(roots, (82, 80), (205, 160), 1, 3)  # a lateral of the first plant reaching the second's primary
    cv2.circle(seeds, (80, 36), 5, 1, -1)
    arch = find_architecture(roots > 0, seed_mask=seeds > 0, min_plant_length_px=50)
    assert len(arch.plants) == 2
    tops = sorted(p.seed[1] for p in arch.plants)
    assert tops[0] == pytest.approx(80, abs=3) and tops[1] == pytest.approx(200, abs=3)
    second = max(arch.plants, key=lambda p: p.seed[1])
    assert second.roots[second.primary].length_px == pytest.approx(np.hypot(10, 200), rel=0.05)
