"""Tracking plants, roots and branching points over a synthetic plate series with known truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rootscope import rsml, track, traits
from rootscope.architecture import ImageArchitecture, find_architecture, split_classes
from rootscope.cli import main
from rootscope.errors import InputError
from rootscope.metrics import match_points
from rootscope.synth import SynthConfig, frame_stem, make_series

CFG = SynthConfig(size=640)


@pytest.fixture(scope="module")
def series():
    return make_series(frames=5, seed=3, config=CFG)


def tables(frames, *, shuffle_seed: int = 0, drop: dict[int, set[str]] | None = None):
    """Per-scan plant and root tables of the truth architectures (plants listed in a random order in
    each scan, so per-scan labels mean nothing), the scans' matrices to frame 0, and the truth key of
    every (scan, plant_in_scan, root_in_scan): RSML id ``plant.root``. ``drop`` leaves plants out of scans."""
    rng = np.random.default_rng(shuffle_seed)
    plant_rows, root_rows, matrices, truth = [], [], {}, {}
    t0 = frames[0].time_h
    for k, frame in enumerate(frames):
        scan = f"scan{k}"
        kept = [p for p in frame.scene.plants if p.roots and p.id not in (drop or {}).get(k, set())]
        kept = [kept[i] for i in rng.permutation(len(kept))]
        arch = track.scene_architecture(rsml.Scene(plants=kept))
        for label, plant in enumerate(kept, start=1):
            for r, root in enumerate(plant.all_roots(), start=1):
                truth[(scan, label, r)] = root.id
        hours = frame.time_h - t0
        plant_rows.append(traits.plant_table(arch, frame.px_per_mm, image=scan).assign(scan=scan, hours=hours))
        root_rows.append(traits.root_table(arch, frame.px_per_mm, image=scan).assign(scan=scan, hours=hours))
        matrices[scan] = frame.matrix
    return pd.concat(plant_rows, ignore_index=True), pd.concat(root_rows, ignore_index=True), matrices, truth


def truth_plant(plants: pd.DataFrame, truth: dict) -> pd.Series:
    return pd.Series([truth[(s, p, 1)].split(".")[0] for s, p in zip(plants.scan, plants.plant_in_scan)])


def test_link_points_prefers_the_best_assignment_over_greedy_nearest():
    # greedy nearest would give point (0, 1.1) to track (0, 0) and leave (0, 2.2) unlinked (gate 1.5)
    frames = [np.array([[0.0, 0.0], [0.0, 2.2]]), np.array([[0.0, 1.1], [0.0, 3.3]])]
    assert [ids.tolist() for ids in track.link_points(frames, 1.5)] == [[0, 1], [0, 1]]


def test_link_points_respects_the_gate_and_keeps_missed_tracks():
    frames = [np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([[10.5, 0.0]]), np.array([[0.2, 0.0], [30.0, 0.0]])]
    ids = track.link_points(frames, 1.0)
    assert [i.tolist() for i in ids] == [[0, 1], [1], [0, 2]]  # track 0 missed in frame 1 keeps its id
    assert [i.tolist() for i in track.link_points(frames, 0.4)] == [[0, 1], [2], [0, 3]]
    assert track.link_points([np.zeros((0, 2)), np.zeros((0, 2))], 1.0)[1].tolist() == []


def test_plant_ids_are_stable_across_moved_scans_and_ordered_left_to_right(series):
    plant_table, root_table, matrices, truth = tables(series)
    plants = track.track_plants(plant_table, series[0].px_per_mm, matrices=matrices)
    pairs = pd.DataFrame({"ours": plants.plant, "truth": truth_plant(plants, truth)}).drop_duplicates()
    assert len(pairs) == pairs.ours.nunique() == pairs.truth.nunique() == len(series[-1].scene.plants)
    assert (plants.groupby("plant").scan.nunique() == len(series)).all()
    mean_x = plants.groupby("plant").x_ref_px.mean()
    assert list(mean_x.index) == sorted(mean_x.index) and mean_x.is_monotonic_increasing
    # positions in the reference frame hardly move although the plate was moved between scans
    assert plants.groupby("plant").x_ref_px.std().max() < 0.5
    seeds = np.array([p.roots[0].points[0] for p in series[0].scene.plants])
    assert match_points(plants[plants.scan == "scan0"][["x_ref_px", "y_ref_px"]], seeds, 1.0).tp == len(seeds)


def test_without_the_matrices_moved_scans_break_plant_tracks(series):
    plant_table, *_ = tables(series)
    plants = track.track_plants(plant_table, series[0].px_per_mm)
    assert plants.plant.nunique() > len(series[0].scene.plants)


def test_laterals_keep_their_ids_and_emerge_within_one_scan_interval(series):
    plant_table, root_table, matrices, truth = tables(series, shuffle_seed=1)
    mm = series[0].px_per_mm
    plants = track.track_plants(plant_table, mm, matrices=matrices)
    laterals = track.track_roots(root_table, plants, mm, matrices=matrices)
    laterals["truth"] = [truth[key] for key in zip(laterals.scan, _labels(laterals, plants), laterals.root_in_scan)]
    per_track = laterals.groupby(["plant", "lateral"]).truth.nunique()
    assert (per_track == 1).all()  # a tracked lateral is one truth root
    assert laterals.groupby("truth")[["plant", "lateral"]].nunique().max().max() == 1  # and never split
    true_em = pd.concat(f.lengths for f in series).assign(
        truth=lambda t: t.plant.astype(str) + "." + t.root.astype(str)).groupby("truth").emergence_h.first()
    first = laterals.groupby("truth")[["emergence_h", "emergence_est_h"]].first() + series[0].time_h
    after_start = (true_em[first.index] > series[0].time_h).to_numpy()
    delay = first[after_start].sub(true_em[first.index][after_start], axis=0)
    assert len(delay) > 20 and (delay.emergence_h >= 0).all()  # first seen: never before the truth
    assert delay.emergence_est_h.abs().max() <= CFG.interval_h
    assert set(laterals[laterals.order == 3].parent_lateral) <= set(laterals.lateral)


def test_back_extrapolated_emergence_stays_between_the_scan_before_and_first_sighting():
    """Scans at 0, 24, 48, 72 h. Lateral 1, seen in the first scan at 5 mm growing 0.01 mm/h, would go back
    to -500 h: it is bounded by the experiment's start. Lateral 2, first seen at 48 h at 10 mm growing
    0.1 mm/h, would go back to -52 h: bounded by the scan before (24 h). Lateral 3 grows 2 mm/h: 45 h."""
    rows = pd.DataFrame({"track": [1, 1, 2, 2, 3, 3], "tracked": 1, "order": 2,
                         "_scan_index": [0, 1, 2, 3, 2, 3], "time_h": [0.0, 24.0, 48.0, 72.0, 48.0, 72.0],
                         "length_mm": [5.0, 5.24, 10.0, 12.4, 6.0, 54.0]})
    estimate = track._extrapolated_emergence(rows, np.array([0.0, 0.0, 24.0, 48.0]))
    assert estimate.tolist() == pytest.approx([0.0, 0.0, 24.0, 24.0, 45.0, 45.0])


def _labels(laterals: pd.DataFrame, plants: pd.DataFrame) -> list[int]:
    """Per-scan plant label of each lateral row."""
    label = plants.set_index(["scan", "plant"]).plant_in_scan
    return label.reindex(pd.MultiIndex.from_frame(laterals[["scan", "plant"]])).tolist()


def test_branch_point_tracks_match_truth_tracks(series):
    plant_table, root_table, matrices, _ = tables(series)
    mm = series[0].px_per_mm
    points = track.track_points(track.lateral_bases(root_table), mm, matrices=matrices)
    linked, total = 0, 0
    previous = None
    for k, frame in enumerate(series):
        truth_xy = track.to_reference(frame.branch_points[["x", "y"]].to_numpy(), frame.matrix)
        truth_id = frame.branch_points.plant.astype(str) + "." + frame.branch_points.root.astype(str)
        ours = points[points.scan == f"scan{k}"]
        pairs = match_points(ours[["x_ref_px", "y_ref_px"]].to_numpy(), truth_xy, 0.5).pairs
        now = dict(zip(truth_id.to_numpy()[pairs[:, 1]], ours.point.to_numpy()[pairs[:, 0]]))
        if previous is not None:
            common = set(previous) & set(now)
            total += len(common)
            linked += sum(previous[t] == now[t] for t in common)
        previous = now
    assert total > 50 and linked / total >= 0.9
    assert (points.groupby("point").emergence_h.nunique() == 1).all()


def test_a_plant_missing_in_one_scan_keeps_its_id(series):
    plant_table, root_table, matrices, truth = tables(series, drop={2: {"2"}})
    mm = series[0].px_per_mm
    out = track.track_plate(plant_table, root_table, mm, matrices=matrices)
    plants = out["plants"]
    ours = plants.plant[truth_plant(plants, truth) == "2"]
    assert ours.nunique() == 1 and len(ours) == len(series) - 1
    assert plants.plant.nunique() == len(series[0].scene.plants)
    lat = out["laterals"][out["laterals"].plant == ours.iloc[0]]
    seen = lat.groupby("lateral").scan.agg(set)
    assert not any("scan2" in s for s in seen) and any({"scan1", "scan3"} <= s for s in seen)
    growth = out["growth"].set_index("plant").loc[ours.iloc[0]]
    assert growth.scans == len(series) - 1 and growth.primary_rate_mm_h > 0


def test_an_empty_scan_is_skipped_and_ids_go_on(series):
    plant_table, root_table, matrices, truth = tables(series)
    empty = traits.plant_table(ImageArchitecture(shape=(640, 640)), series[0].px_per_mm, image="blank")
    plant_table = pd.concat([plant_table[plant_table.scan <= "scan1"], empty.assign(scan="blank", hours=30.0),
                             plant_table[plant_table.scan > "scan1"]], ignore_index=True)
    out = track.track_plate(plant_table, root_table, series[0].px_per_mm, matrices=matrices)
    plants = out["plants"]
    assert "blank" not in set(plants.scan)
    assert plants.plant.nunique() == len(series[0].scene.plants)
    assert (pd.DataFrame({"p": plants.plant, "t": truth_plant(plants, truth)}).drop_duplicates().shape[0]
            == len(series[0].scene.plants))
    nothing = track.track_plate(empty.assign(scan="blank", hours=0.0), root_table[:0], series[0].px_per_mm)
    assert all(len(table) == 0 for table in nothing.values())
    assert list(nothing["growth"].columns) == track.GROWTH_COLUMNS


def test_growth_rates_from_architectures_found_on_truth_masks(series):
    """find_architecture on each scan's truth mask (in the moved scan's pixels): plants keep their ids
    and the primary's growth rate is within 3 % of the truth's (all plants but one)."""
    mm = series[0].px_per_mm
    plant_rows, root_rows, matrices = [], [], {}
    for k, frame in enumerate(series):
        roots, seeds = split_classes(frame.mask, 1, 2)
        arch = find_architecture(roots, seed_mask=seeds, min_plant_length_px=3 * mm)
        scan, hours = f"scan{k}", frame.time_h - series[0].time_h
        plant_rows.append(traits.plant_table(arch, mm, image=scan).assign(scan=scan, hours=hours))
        root_rows.append(traits.root_table(arch, mm, image=scan).assign(scan=scan, hours=hours))
        matrices[scan] = frame.matrix
    out = track.track_plate(pd.concat(plant_rows), pd.concat(root_rows), mm, matrices=matrices)
    growth = out["growth"]
    assert len(growth) == len(series[0].scene.plants) and (growth.scans == len(series)).all()
    first = out["plants"][out["plants"].scan == "scan0"]
    seeds = np.array([p.roots[0].points[0] for p in series[0].scene.plants])
    pairs = match_points(first[["x_ref_px", "y_ref_px"]].to_numpy(), seeds, 3 * mm).pairs
    hours = np.array([f.time_h for f in series])
    errors = []
    for ours, true in pairs:
        plant = int(series[0].scene.plants[true].id)
        lengths = [f.lengths[(f.lengths.plant == plant) & (f.lengths.order == 1)].length_mm.sum() for f in series]
        rate = track.robust_slope(hours, np.array(lengths))[0]
        errors.append(abs(growth.set_index("plant").primary_rate_mm_h[first.plant.iloc[ours]] / rate - 1))
    # one plant's deepest tip is another plant's crossing lateral in the last scans (an architecture error)
    assert len(errors) == len(seeds) and np.median(errors) < 0.03 and np.sort(errors)[-2] < 0.03


def test_with_plant_ids_puts_the_persistent_id_in_the_traits_table(series):
    plant_table, _, matrices, _ = tables(series, shuffle_seed=4)
    plants = track.track_plants(plant_table, series[0].px_per_mm, matrices=matrices)
    labelled = track.with_plant_ids(plant_table, plants)
    assert list(labelled.columns[:3]) == ["image", "plant", "plant_in_scan"]
    assert (labelled.plant_in_scan == plant_table.plant).all()
    merged = labelled.merge(plants, on=["scan", "plant"], suffixes=("", "_t"))
    assert len(merged) == len(plant_table) and (merged.primary_length_mm == merged.primary_length_mm_t).all()


def test_scene_architecture_keeps_lengths_and_the_primary(series):
    frame = series[-1]
    arch = track.scene_architecture(frame.scene)
    table = traits.root_table(arch, frame.px_per_mm)
    assert table.length_mm.sum() == pytest.approx(frame.lengths.length_mm.sum(), rel=1e-9)
    assert all(p.roots[p.primary].order == 1 for p in arch.plants)


def test_bad_input_names_the_table_and_the_fix(series):
    with pytest.raises(InputError, match="plant table: columns \\['seed_x_px'"):
        track.track_plants(pd.DataFrame({"scan": ["a"], "plant": [1], "seed_y_px": [0.0]}), 5.0)
    plant_table, *_ = tables(series[:1])
    with pytest.raises(InputError, match="px_per_mm"):
        track.track_plants(plant_table, 0.0)


def test_the_report_plots_tracked_plants_and_tables_growth_and_emergence(series, tmp_path):
    from rootscope import io
    from rootscope.report_html import write_report

    plant_table, root_table, matrices, _ = tables(series, shuffle_seed=2)
    tracks = track.track_plate(plant_table, root_table, series[0].px_per_mm, matrices=matrices)
    for name, table in tracks.items():
        io.write_table(tmp_path / "tracks" / f"{name}.csv", table.assign(plate="p1"))
    io.write_table(tmp_path / "traits.csv", track.with_plant_ids(plant_table.assign(plate="p1"),
                                                                 tracks["plants"].assign(plate="p1")))
    page = write_report(tmp_path, thumbnails={}).read_text()
    assert "Plants are followed from scan to scan" in page and "plants followed over time" in page
    assert page.count("data:image/png") == 2  # per-plant curves, lateral emergence
    assert "primary growth (mm/h)" in page and "laterals emerged by scan" in page
    rate = tracks["growth"].primary_rate_mm_h.iloc[0]
    assert f"<td>{rate:.3f}</td>" in page


def test_track_command_follows_an_rsml_series_in_the_scans_own_pixels(series, tmp_path, capsys):
    from rootscope import io

    frames = {}
    for frame in series:
        stem = frame_stem("plateA", frame, CFG)
        rsml.write_rsml(tmp_path / "rsml" / f"{stem}.rsml", frame.scene)  # px_per_mm in its metadata
        frames[stem] = {"matrix": frame.matrix.tolist()}
    io.write_json(tmp_path / "transforms.json", {"frames": frames})
    assert main(["track", str(tmp_path / "rsml"), "--transforms", str(tmp_path / "transforms.json"),
                 "--plate", "plateA", "-o", str(tmp_path / "tracks")]) == 0
    plants = pd.read_csv(tmp_path / "tracks" / "plants.csv")
    assert set(plants.plate) == {"plateA"}
    assert plants.plant.nunique() == 5 and (plants.groupby("plant").scan.nunique() == len(series)).all()
    assert plants.time_h.max() == pytest.approx(series[-1].time_h - series[0].time_h, abs=0.02)
    assert (pd.read_csv(tmp_path / "tracks" / "growth.csv").primary_rate_mm_h > 0.1).all()
    (tmp_path / "rsml" / "extra.rsml").write_bytes((tmp_path / "rsml" / f"{stem}.rsml").read_bytes())
    assert main(["track", str(tmp_path / "rsml"), "-o", str(tmp_path / "again")]) == 2
    assert "extra.rsml: no capture time in the file name" in capsys.readouterr().err


def test_timed_rsml_gives_each_point_the_time_its_root_reached_it(series, tmp_path):
    plant_table, root_table, matrices, truth = tables(series)
    mm = series[0].px_per_mm
    tracks = track.track_plate(plant_table, root_table, mm, matrices=matrices)
    last = f"scan{len(series) - 1}"
    kept = [p for p in series[-1].scene.plants if p.roots]  # as tables() numbered them (shuffle seed 0)
    kept = [kept[i] for i in np.random.default_rng(0).permutation(len(kept))]
    scene = rsml.Scene(plants=[rsml.Plant(roots=p.roots, id=str(k)) for k, p in enumerate(kept, start=1)])
    for label, plant in enumerate(scene.plants, start=1):
        for r, root in enumerate(plant.all_roots(), start=1):
            root.id = f"{label}.{r}"
    rsml.write_rsml(tmp_path / "t.rsml", track.timed_scene(scene, tracks["plants"], tracks["laterals"], last, mm))
    timed = rsml.read_rsml(tmp_path / "t.rsml")
    assert [int(p.id) for p in timed.plants] == list(range(1, 6))
    t0 = series[0].time_h
    for plant in timed.plants:
        for root in plant.all_roots():
            time = root.functions["time"]
            assert np.all(np.diff(time) >= -1e-9) and time[-1] <= series[-1].time_h - t0 + 1e-6
        primary = plant.roots[0]
        assert primary.id == f"{plant.id}.0" and primary.functions["time"][0] == 0.0
    # a truth lateral that emerged during the series: its points' times span its growth
    # written as RootSystemTracker's 2D+t RSML: observation hours, per-point coord_th and coord_t
    scans = sorted(set(tracks["plants"].time_h))
    np.testing.assert_allclose(timed.metadata.observation_hours, scans, atol=1e-12)
    assert "<point coord_t=" in (tmp_path / "t.rsml").read_text()
    for root in timed.all_roots():
        np.testing.assert_allclose(root.time_index, rsml.observation_index(root.times_h, scans), atol=1e-12)
    laterals = [r for p in timed.plants for r in p.all_roots() if not r.id.endswith(".0")]
    emerged = [r for r in laterals if float(r.properties["emergence_h"]) > 0]
    assert len(emerged) > 10 and all(r.functions["time"][0] == pytest.approx(float(r.properties["emergence_est_h"]),
                                                                             abs=1e-3) for r in emerged)


@pytest.mark.parametrize("content, message", [
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], "not a transforms.json of `rootscope align`"),
    ({"frames": [1, 2]}, "not a transforms.json of `rootscope align`"),
    ({"frames": {"STEM": {"matrix": [[1, 0, 0], [0, 1, 0]]}}}, "the matrix of STEM is not 3 x 3 finite numbers"),
    ({"frames": {"STEM": {"matrix": [["a", 0, 0], [0, 1, 0], [0, 0, 1]]}}}, "the matrix of STEM is not 3 x 3"),
    ({"frames": {"STEM": {"matrix": None}}}, "the matrix of STEM is not 3 x 3"),
    ({"frames": {"STEM": "identity"}}, "the matrix of STEM is not 3 x 3"),
])
def test_track_command_refuses_a_transforms_file_it_cannot_use(series, tmp_path, capsys, content, message):
    from rootscope import io

    stem = frame_stem("plateA", series[0], CFG)
    rsml.write_rsml(tmp_path / "rsml" / f"{stem}.rsml", series[0].scene)
    io.write_text(tmp_path / "t.json", json.dumps(content).replace("STEM", stem))
    assert main(["track", str(tmp_path / "rsml"), "--transforms", str(tmp_path / "t.json"),
                 "-o", str(tmp_path / "tracks")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 't.json'}: " in err and message.replace("STEM", stem) in err
    assert not (tmp_path / "tracks").exists()


def test_a_2dt_rsml_of_rootsystemtracker_is_tracked_over_its_observations(rst_path):
    scene = rsml.read_rsml(rst_path)
    tracks = track.track_timed_scene(scene, 1000 / 76.0, plate="61")  # <size>76.0</size>: 76 um per px
    plants = tracks["plants"]
    assert plants.plant.nunique() == 5 and (plants.groupby("plant").scan.nunique() == 18).all()
    assert plants.time_h.max() == 101.9982 and set(plants.plate) == {"61"}
    laterals = tracks["laterals"].drop_duplicates(["plant", "lateral"]).groupby("plant").size().tolist()
    assert laterals == [len(p.all_roots()) - 1 for p in scene.plants] == [18, 22, 13, 19, 12]  # the file's
    assert (tracks["growth"].primary_rate_mm_h.between(0.3, 0.7)).all()


def test_track_command_takes_one_2dt_rsml(rst_path, tmp_path, capsys):
    """`rootscope track FILE.rsml` on RootSystemTracker's file: the same tables as the API, its 18
    observations; without a pixel scale (the file gives none) it asks for one."""
    path = rst_path
    assert main(["track", str(path), "-o", str(tmp_path / "none")]) == 2
    assert "no px_per_mm in the RSML metadata; pass --px-per-mm" in capsys.readouterr().err
    assert main(["track", str(path), "--px-per-mm", str(1000 / 76.0), "--plate", "61", "-o", str(tmp_path / "t")]) == 0
    assert "18 scans: 5 plants, 84 laterals" in capsys.readouterr().out
    expected = track.track_timed_scene(rsml.read_rsml(path), 1000 / 76.0, plate="61")["laterals"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t" / "laterals.csv", dtype={"plate": str}), expected,
                                  check_dtype=False,
                                  check_exact=False, atol=1e-3)


def test_tracking_one_scene_needs_its_observation_hours():
    with pytest.raises(InputError, match="no <observation-hours>"):
        track.track_timed_scene(rsml.Scene(), 20.0)
