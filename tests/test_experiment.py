"""Experiment discovery: both layouts, time order, bad files recorded and left out, empty folders refused."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from rootscope import io
from rootscope.config import parse_config
from rootscope.errors import InputError
from rootscope.experiment import discover


def scan(path: Path, seed: int = 0) -> Path:
    return io.write_image(path, np.random.default_rng(seed).random((16, 20, 3)).astype(np.float32))


def test_plate_folders_are_sorted_by_capture_time(tmp_path):
    for name in ("p_2025-10-14_09h00.png", "p_2025-10-14_03h00.png", "p_2025-10-13_21h30.png"):
        scan(tmp_path / "raw" / "A01" / name)
    scan(tmp_path / "raw" / "B02" / "p_2025-10-13_21h30.png")
    experiment = discover(tmp_path)
    a01 = experiment.plates[0]
    assert [p.name for p in experiment.plates] == ["A01", "B02"]
    assert [s.name[2:18] for s in a01.scans] == ["2025-10-13_21h30", "2025-10-14_03h00", "2025-10-14_09h00"]
    assert a01.hours() == [0.0, 5.5, 11.5]
    assert experiment.problems == [] and experiment.n_scans == 4


def test_flat_folder_reads_species_session_and_plate(tmp_path):
    for name in ("At_20251104_031.png", "At_20251103_031.png", "At_20251103_007.png", "Bn_20251103_031.png"):
        scan(tmp_path / "raw" / name)
    experiment = discover(tmp_path)
    plates = {p.name: p for p in experiment.plates}
    assert sorted(plates) == ["At_007", "At_031", "Bn_031"]
    assert [s.name for s in plates["At_031"].scans] == ["At_20251103_031.png", "At_20251104_031.png"]
    assert plates["At_031"].times == [datetime(2025, 11, 3), datetime(2025, 11, 4)]
    assert plates["At_031"].hours() == [0.0, 24.0] and plates["Bn_031"].species == "Bn"


def test_a_name_outside_the_flat_pattern_is_recorded(tmp_path):
    scan(tmp_path / "raw" / "At_20251103_031.png")
    scan(tmp_path / "raw" / "holiday.png")
    experiment = discover(tmp_path)
    assert [p.name for p in experiment.plates] == ["At_031"]
    assert [(p.path.name, "flat_pattern" in p.message) for p in experiment.problems] == [("holiday.png", True)]


def test_a_custom_flat_pattern(tmp_path):
    scan(tmp_path / "scans" / "exp7-plate12-t03.png")
    config = parse_config({"input": {"raw": "scans", "layout": "flat",
                                     "flat_pattern": r"plate(?P<plate>\d+)-t\d+"}})
    assert [p.name for p in discover(tmp_path, config).plates] == ["12"]


def test_unreadable_and_empty_scans_are_recorded_not_fatal(tmp_path, shared_data):
    plate = tmp_path / "raw" / "J10"
    scan(plate / "a_2025-01-01_00h00.png")
    shutil.copy(shared_data / "rhizoscan-arabidopsis" / "J10" / "Photo_invalid.jpg", plate)
    (plate / "b_2025-01-02_00h00.png").write_bytes(b"")
    (plate / "notes.txt").write_text("watered at 9am")
    experiment = discover(tmp_path)
    assert [s.name for s in experiment.plates[0].scans] == ["a_2025-01-01_00h00.png"]
    problems = {p.path.name: p.message for p in experiment.problems}
    assert set(problems) == {"Photo_invalid.jpg", "b_2025-01-02_00h00.png", "notes.txt"}
    assert "cannot be read as an image" in problems["Photo_invalid.jpg"]
    assert "empty" in problems["b_2025-01-02_00h00.png"]
    assert all(p.plate == "J10" for p in experiment.problems)


def test_an_empty_plate_folder_is_recorded(tmp_path):
    scan(tmp_path / "raw" / "A01" / "x.png")
    (tmp_path / "raw" / "A02").mkdir()
    experiment = discover(tmp_path)
    assert [p.name for p in experiment.plates] == ["A01"]
    assert "no usable scans" in experiment.problems[0].message


def test_an_empty_experiment_says_where_scans_go(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(InputError, match=r"no usable scans found.*raw/<plate>/"):
        discover(tmp_path)
    with pytest.raises(InputError, match="raw scan folder not found"):
        discover(tmp_path / "raw")


def test_two_scans_with_one_name_are_not_both_used(tmp_path):
    scan(tmp_path / "raw" / "A01" / "t1.png")
    io.write_image(tmp_path / "raw" / "A01" / "t1.tif", np.zeros((16, 20), np.uint8))
    experiment = discover(tmp_path)
    assert [s.name for s in experiment.plates[0].scans] == ["t1.png"]
    assert "same name as t1.png" in experiment.problems[0].message
