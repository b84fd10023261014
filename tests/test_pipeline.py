"""The experiment pipeline on a small synthetic experiment: tables, resuming, bad scans, Dask = serial."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rootscope import io, synth
from rootscope.config import parse_config
from rootscope.errors import ConfigError, InputError, OutputError
from rootscope.pipeline import region_areas, run_experiment
from rootscope.pixel import ForestParams, PixelClassifier
from rootscope.plate import PlateRegion

SIZE = 384
CLASSES = ["background", "root", "seed", "shoot"]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """2 plates x 2 scans (384 px) and a pixel classifier trained on another synthetic plate."""
    root = tmp_path_factory.mktemp("experiment")
    cfg = dataclasses.replace(synth.SynthConfig(), size=SIZE, max_shift_px=0.03 * SIZE, max_rotation_deg=2)
    synth.write_experiment(root, plates=2, frames=2, seed=0, config=cfg)
    frame = synth.make_series(1, seed=99, config=cfg)[0]
    labels = (frame.mask + 1).astype(np.uint8)
    labels[np.random.default_rng(0).random(labels.shape) > 0.2] = 0
    forest = PixelClassifier(seed=0, forest_params=ForestParams(n_estimators=25))  # small: the pipeline is tested
    forest.fit([frame.image], [labels], CLASSES).save(root / "models" / "rf.model")
    io.write_text(root / "rootscope.toml", '[models]\npixel = "models/rf.model"\n')
    return root


@pytest.fixture(scope="module")
def first_run(experiment, tmp_path_factory):
    """An uninterrupted serial run of a copy of the experiment: (folder, result)."""
    folder = tmp_path_factory.mktemp("first") / "exp"
    shutil.copytree(experiment, folder)
    return folder, run_experiment(folder, workers=1, progress=False)


def copy(experiment: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(experiment, tmp_path / "exp"))


def test_a_run_writes_per_plant_tables_over_time(first_run):
    folder, result = first_run
    assert result.n_failures == 0, pd.read_csv(result.failures_csv).to_string()
    traits = pd.read_csv(folder / "out" / "traits.csv")
    assert set(traits.plate) == {"plate01", "plate02"}
    assert sorted(set(traits.hours)) [0] == 0.0 and traits.hours.max() == pytest.approx(24, abs=0.5)
    assert (traits.primary_length_mm > 0).any()
    rejected = pd.read_csv(folder / "out" / "rejected.csv")  # what was not a seedling, and why
    assert list(rejected.columns) == ["plate", "species", "scan", "hours", "aligned", "image", "object", "x_px", "y_px",
                                      "length_mm", "reason", "piece_of"]
    assert "outside the plate" in set(rejected.reason)  # the synthetic plates' rim and bench
    for plate in ("plate01", "plate02"):  # every plant stands inside its plate's measured area
        region = PlateRegion.from_dict(io.read_json(sorted((folder / "out" / plate / "plates").glob("*.json"))[0]))
        own = traits[traits.plate == plate]
        assert region.kind == "square" and region.inner_mask((SIZE, SIZE))[
            own.seed_y_px.round().astype(int), own.seed_x_px.round().astype(int)].all()
    assert pd.read_parquet(folder / "out" / "traits.parquet").equals(traits)
    classes = pd.read_csv(folder / "out" / "classes.csv")
    assert set(classes.name) <= {"root", "seed", "shoot"} and (classes.area_mm2 > 0).all()
    for plate in ("plate01", "plate02"):
        assert len(list((folder / "out" / plate / "rsml").glob("*.rsml"))) == 2
        overlays = sorted((folder / "out" / plate / "overlays").glob("*.png"))
        assert len(overlays) == 2 and io.read_image(overlays[0]).shape == (SIZE, SIZE, 3)
    page = (folder / "out" / "report.html").read_text()
    assert result.report == folder / "out" / "report.html"
    assert "Plate plate01" in page and "Plate plate02" in page and "primary_length_mm" in page
    assert page.count("data:image/jpeg") == 4 and page.count("data:image/png") == 3  # thumbnails, plots
    tracked = pd.read_csv(folder / "out" / "tracks" / "plants.csv")  # plants followed over time
    assert set(tracked.plate) == {"plate01", "plate02"} and "plant_in_scan" in traits
    assert sorted(p.name for p in (folder / "raw" / "plate01").iterdir()) == \
        sorted(p.name for p in (folder / "raw" / "plate01").iterdir() if not p.name.startswith("."))


def test_a_rerun_skips_everything_and_changes_nothing(first_run):
    folder, _ = first_run
    before = (folder / "out" / "traits.csv").read_bytes()
    report = (folder / "out" / "report.html").stat().st_mtime_ns
    again = run_experiment(folder, workers=1, progress=False)
    assert all(not r.ran for r in again.plates.values())
    assert (folder / "out" / "traits.csv").read_bytes() == before
    assert (folder / "out" / "report.html").stat().st_mtime_ns == report  # not redrawn


def test_a_second_run_of_one_experiment_stops_at_once_and_touches_nothing(first_run, tmp_path):
    """Two runs at once used to delete each other's temporaries in flight (FileNotFoundError in the
    measure stage) and rewrite failures.csv; the second now stops on the first's lock, held here."""
    folder = copy(first_run[0], tmp_path)
    out = folder / "out"
    in_flight = out / "plate01" / "traits" / ".plate01_2025-10-08_09h00.k2x9.tmp.csv"
    in_flight.write_bytes(b"half a table")
    failures = (out / "failures.csv").read_bytes()
    lock = out / ".lock"  # the first run, alive: this process
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "2025-11-03T09:00:00"}))
    start = time.perf_counter()
    with pytest.raises(OutputError, match=rf"{re.escape(str(lock))}: another rootscope run works in .*"
                                          rf"process {os.getpid()} on {re.escape(socket.gethostname())}, since"):
        run_experiment(folder, workers=1, progress=False)
    assert time.perf_counter() - start < 5
    assert in_flight.read_bytes() == b"half a table" and (out / "failures.csv").read_bytes() == failures
    lock.unlink()
    result = run_experiment(folder, workers=1, progress=False)  # the first run has ended: a killed writer's
    assert result.n_failures == 0 and not in_flight.exists()     # temporary is removed under the lock
    assert not (out / ".lock").exists()


def test_scans_or_models_inside_out_are_refused_and_the_lock_released(experiment, tmp_path):
    folder = copy(experiment, tmp_path)
    (folder / "out").mkdir(exist_ok=True)
    shutil.copy(folder / "models" / "rf.model", folder / "out" / "rf.model")
    io.write_text(folder / "rootscope.toml", '[models]\npixel = "out/rf.model"\n')
    with pytest.raises(OutputError, match=r"out/rf.model: an input inside the output folder .*out, which rootscope fills"):
        run_experiment(folder, workers=1, progress=False)
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["rf.model"]  # no lock left, nothing written


def test_changed_measure_settings_redo_only_the_measurements(experiment, first_run, tmp_path):
    folder = copy(first_run[0], tmp_path)
    io.write_text(folder / "rootscope.toml", '[models]\npixel = "models/rf.model"\n[architecture]\n'
                  'min_area_px = 60\n[regions.plate01]\nroot_zone = [0, 100, 384, 284]\n')
    result = run_experiment(folder, workers=1, progress=False)
    assert result.plates["plate01"].ran == {"measure": 2, "plate-tables": 1, "track": 1, "label": 2}  # new pictures
    regions = pd.read_csv(folder / "out" / "regions.csv")
    assert set(regions.plate) == {"plate01"} and set(regions.region) == {"root_zone"}
    assert (regions[regions.name == "root"].area_mm2 > 0).all()


def test_dask_with_two_workers_gives_the_same_tables(experiment, first_run, tmp_path):
    folder = copy(experiment, tmp_path)
    result = run_experiment(folder, workers=2, processes=False, progress=False)
    assert result.summary.startswith("2 tasks: 2 done") and "LocalCluster, 2 thread workers" in result.summary
    for table in ("traits.csv", "roots.csv", "classes.csv"):
        assert (folder / "out" / table).read_bytes() == (first_run[0] / "out" / table).read_bytes()


def test_bad_scans_are_recorded_and_the_rest_completes(experiment, tmp_path, shared_data):
    folder = copy(experiment, tmp_path)
    plate = folder / "raw" / "plate02"
    good = sorted(plate.iterdir())[-1]
    (plate / "plate02_2025-10-09_09h00.png").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    shutil.copy(shared_data / "rhizoscan-arabidopsis" / "J10" / "Photo_invalid.jpg", plate)
    result = run_experiment(folder, workers=1, progress=False)
    failures = pd.read_csv(result.failures_csv)
    assert sorted(failures.item) == ["Photo_invalid.jpg", "plate02_2025-10-09_09h00.png"]
    truncated = failures[failures.item == "plate02_2025-10-09_09h00.png"].iloc[0]
    assert truncated.error == "InputError" and "truncated" in truncated.message
    assert failures[failures.item == "Photo_invalid.jpg"].stage.item() == "discover"
    traits = pd.read_csv(folder / "out" / "traits.csv")
    assert traits.groupby("plate").scan.nunique().to_dict() == {"plate01": 2, "plate02": 2}


def test_no_model_and_empty_folder_give_clear_messages(experiment, tmp_path):
    folder = copy(experiment, tmp_path)
    (folder / "rootscope.toml").unlink()
    with pytest.raises(ConfigError, match="no segmentation model: set models.pixel or models.unet"):
        run_experiment(folder, workers=1, progress=False)
    (tmp_path / "empty" / "raw").mkdir(parents=True)
    with pytest.raises(InputError, match="no usable scans found"):
        run_experiment(tmp_path / "empty", workers=1, progress=False)


def test_region_areas_count_each_class_inside_each_rectangle():
    mask = np.zeros((20, 30), np.uint8)
    mask[0:5, 0:10] = 1   # root
    mask[10:20, 20:30] = 2  # seed
    regions = parse_config({"regions": {"default": {"root_zone": [0, 0, 30, 10], "seed_line": [20, 10, 10, 10]}}})
    table = region_areas(mask, regions.regions_for("A").given(), {1: "root", 2: "seed"}, px_per_mm=10.0)
    area = table.set_index(["region", "name"]).area_mm2
    assert area["root_zone", "root"] == pytest.approx(0.5) and area["root_zone", "seed"] == 0
    assert area["seed_line", "seed"] == pytest.approx(1.0) and area["seed_line", "root"] == 0


@pytest.mark.slow
def test_a_killed_run_resumes_without_redoing_finished_scans(experiment, first_run, tmp_path):
    folder = copy(experiment, tmp_path)
    cmd = [sys.executable, "-c", "from rootscope.cli import run; run()", "run", str(folder), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished = folder / "out" / "plate01" / "masks" / ".manifests"  # a scan's segmentation is complete
    deadline = time.monotonic() + 120
    while not any(finished.glob("segment.*.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pytest.warns(UserWarning, match=rf"out/.lock: taking over the lock of process {proc.pid} on .*which has ended"):
        result = run_experiment(folder, workers=1, progress=False)
    plate01 = result.plates["plate01"]
    assert plate01.skipped.get("segment", 0) >= 1  # the scan segmented before the kill is not redone
    assert plate01.ran.get("segment", 0) + plate01.skipped.get("segment", 0) == 2
    assert not [p for p in (folder / "out").rglob(".*.tmp*")]  # no temporary left behind
    for table in ("traits.csv", "roots.csv", "classes.csv"):
        assert (folder / "out" / table).read_bytes() == (first_run[0] / "out" / table).read_bytes()


def test_chained_alignment_to_the_previous_scan(first_run, tmp_path):
    folder = copy(first_run[0], tmp_path)
    io.write_text(folder / "rootscope.toml", '[models]\npixel = "models/rf.model"\n[align]\nreference = "previous"\n')
    result = run_experiment(folder, workers=1, progress=False)
    assert result.n_failures == 0 and result.plates["plate01"].ran["align"] == 1  # one stage per series
    record = io.read_json(next((folder / "out" / "plate01" / "transforms").glob("*.json")))
    assert record["ok"] and np.allclose(record["matrix"], np.eye(3))  # the first scan is the reference


def test_a_scan_that_cannot_be_aligned_is_measured_in_its_own_frame_and_not_tracked(experiment, tmp_path):
    """plate01's second scan is another plate, mirrored (no similarity maps it onto the first): refused by
    the aligner, it is still measured (its rows say aligned = False), listed in failures.csv, and left out
    of the plate's tracks."""
    folder = copy(experiment, tmp_path)
    second = sorted((folder / "raw" / "plate01").iterdir())[1]
    other = synth.make_series(1, seed=555, config=dataclasses.replace(synth.SynthConfig(), size=SIZE))[0]
    io.write_image(second, np.ascontiguousarray(other.image[:, ::-1]), px_per_mm=other.px_per_mm)
    result = run_experiment(folder, workers=1, progress=False)
    failures = pd.read_csv(result.failures_csv)
    assert list(failures.stage) == ["align"] and "measured in its own frame" in failures.message.iloc[0]
    traits = pd.read_csv(folder / "out" / "traits.csv")
    own = traits[traits.scan == second.name]
    assert len(own) >= 3 and not own.aligned.any() and traits[traits.scan != second.name].aligned.all()
    assert (own.total_length_mm > 0).all()
    tracked = pd.read_csv(folder / "out" / "plate01" / "tracks" / "plants.csv")
    assert second.name not in set(tracked.scan) and len(tracked)


def test_the_plate_can_be_given_or_turned_off(first_run, tmp_path):
    """[plate] rect: the rectangle is the plate (nothing outside it is measured); enabled = false: the
    whole scan is measured and no plate is looked for."""
    folder = copy(first_run[0], tmp_path)
    io.write_text(folder / "rootscope.toml", '[models]\npixel = "models/rf.model"\n[plate]\nrect = [0, 0, 384, 150]\n')
    run_experiment(folder, workers=1, progress=False)
    record = io.read_json(next((folder / "out" / "plate01" / "plates").glob("*.json")))
    assert record["kind"] == "square" and record["corners"][2] == [383.5, 149.5] and record["rim_px"] == 0
    roots = pd.read_csv(folder / "out" / "roots.csv")
    assert len(roots) and roots[["base_y_px", "tip_y_px"]].max().max() < 150
    io.write_text(folder / "rootscope.toml", '[models]\npixel = "models/rf.model"\n[plate]\nenabled = false\n')
    result = run_experiment(folder, workers=1, progress=False)
    assert result.n_failures == 0 and "outside the plate" not in set(pd.read_csv(folder / "out" / "rejected.csv").reason)


def test_a_branch_point_model_adds_a_branches_table(experiment, first_run, tmp_path):
    from rootscope import branches as br

    cfg = dataclasses.replace(synth.SynthConfig(), size=SIZE)
    frame = synth.make_series(1, seed=98, config=cfg)[0]
    settings = br.BranchSettings(scale=1.0, sigma=1.5, mask_head=False)
    sample = br.make_sample(frame.image, frame.branch_points[["x", "y"]].to_numpy(), settings=settings, name="f")
    folder = copy(first_run[0], tmp_path)
    config = br.default_config(epochs=1, tile=32, depth=2, width=4, batch=8, tiles_per_epoch=16, val_tiles=8,
                               device="cpu")  # an untrained model: the test is of the stage, not of accuracy
    br.train_branches([sample], folder / "models" / "branches.pt", config, settings=settings)
    io.write_text(folder / "rootscope.toml", '[models]\npixel = "models/rf.model"\nbranches = "models/branches.pt"\n')
    result = run_experiment(folder, workers=1, progress=False)
    assert result.n_failures == 0, pd.read_csv(result.failures_csv).to_string()
    # the measurements read the points (architecture.branch_support_px); align and segment are not redone
    assert result.plates["plate01"].ran == {"branches": 2, "measure": 2, "plate-tables": 1, "track": 1}
    table = pd.read_csv(folder / "out" / "branches.csv")
    assert list(table.columns[:4]) == ["plate", "species", "scan", "hours"]
    assert {"x_px", "y_px", "score", "x_mm", "y_mm"} <= set(table.columns)


def _overlay_pair(folder: Path, plate: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    read = lambda p: np.rint(io.read_image(p) * 255).astype(np.uint8)  # noqa: E731
    out = folder / "out" / plate / "overlays"
    return read(out / "unlabelled" / f"{stem}.png"), read(out / f"{stem}.png")


def test_overlays_show_the_persistent_plant_ids_of_the_tracks(first_run):
    from rootscope.report import label_plants

    folder, result = first_run
    plants = pd.read_csv(folder / "out" / "tracks" / "plants.csv")
    drawn = 0
    for plate, frame in ((p, f) for p, r in result.plates.items() for f in r.frames):
        stem = Path(frame["scan"]).stem
        unlabelled, labelled = _overlay_pair(folder, plate, stem)
        here = plants[(plants.plate == plate) & (plants.scan == frame["scan"])]
        factor = unlabelled.shape[1] / SIZE
        expected = label_plants(unlabelled.copy(), here[["x_ref_px", "y_ref_px"]].to_numpy() * factor,
                                [f"plant {p}" for p in here.plant])
        assert np.array_equal(labelled, expected)
        drawn += len(here)
    assert drawn > 0


def test_a_label_comes_from_the_tracks_not_from_the_scan(first_run, tmp_path):
    from rootscope.pipeline import _label
    from rootscope.report import label_plants

    folder, result = first_run
    frame = result.plates["plate01"].frames[0]
    unlabelled, _ = _overlay_pair(folder, "plate01", Path(frame["scan"]).stem)
    plants = pd.DataFrame({"plate": "plate01", "plant": [7], "scan": [frame["scan"]], "plant_in_scan": [1],
                           "x_ref_px": [100.0], "y_ref_px": [50.0]})
    io.write_table(tmp_path / "plants.csv", plants)
    _label({"drawing": frame["drawing"], "mask": frame["mask"], "plants": tmp_path / "plants.csv"},
           {"overlay": tmp_path / "out.png"})
    written = np.rint(io.read_image(tmp_path / "out.png") * 255).astype(np.uint8)
    xy = np.array([[100.0, 50.0]]) * unlabelled.shape[1] / SIZE
    assert np.array_equal(written, label_plants(unlabelled.copy(), xy, ["plant 7"]))
    assert not np.array_equal(written, label_plants(unlabelled.copy(), xy, ["plant 1"]))


def test_warp_stage_and_overlay_give_the_values_of_the_whole_float_scan(tmp_path: Path):
    """The warp stage warps a uint8 scan one float channel at a time, the overlay converts it band by band:
    the pixels of the former whole-image float path."""
    import cv2

    from rootscope.align import warp
    from rootscope.architecture import find_architecture
    from rootscope.pipeline import _warp
    from rootscope.report import overlay

    frame = synth.make_series(1, seed=5, config=synth.SynthConfig(size=1200))[0]
    scan = np.rint(frame.image * 255).astype(np.uint8)
    io.write_image(tmp_path / "scan.png", scan)
    matrix = cv2.getRotationMatrix2D((600.0, 600.0), 1.3, 1.01)
    matrix = np.vstack([matrix + [[0, 0, 7.3], [0, 0, -4.6]], [0, 0, 1]])
    io.write_json(tmp_path / "t.json", {"matrix": matrix.tolist(), "shape": [1200, 1200]})
    _warp({"scan": tmp_path / "scan.png", "transform": tmp_path / "t.json"}, {"aligned": tmp_path / "a.png"}, 10.0)
    aligned = io.read_scan(tmp_path / "a.png", convert=False).pixels
    assert np.array_equal(aligned, io.from_float(warp(io.to_float(scan)[0], matrix, (1200, 1200))))
    arch = find_architecture(frame.mask == 1)
    assert np.array_equal(overlay(arch, aligned, 10.0), overlay(arch, io.to_float(aligned)[0], 10.0))
