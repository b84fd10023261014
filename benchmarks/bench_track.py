"""Tracking over time on synthetic plate series with known truth (``rootscope.track``).

Each series is one plate scanned ``--frames`` times, moved on the scanner between scans. Two sources
of per-scan architecture, both measured in the moved scan's pixels and mapped to the first scan by
the truth matrices: the truth RSML itself, and ``find_architecture`` on the truth masks. Plants,
laterals and branching points found in each scan are matched to the truth in the reference frame
(plants by seed within 3 mm, laterals and branching points by base within 1 mm), and then:

- correct links: of the truth objects seen in two consecutive scans of theirs (both found), the share
  whose two observations carry the same tracked id (recall of links); wrong links: the share of a
  track's consecutive observations that belong to two different truth objects;
- emergence error: tracked emergence time minus the truth's, laterals emerging after the first scan
  (first seen; and back-extrapolated ``emergence_est_h``); share within one scan interval;
- growth-rate error: the tracked primary's Theil-Sen rate against the truth lengths' rate.

Baselines: what the tables gave before tracking, the per-scan numbers (plant number in the scan,
root number in the plant) as ids; for branching points, the same linker on the scans' own pixels
(no registration); for emergence, the first-seen time (ours: extrapolated back at the root's growth
rate). Speed: tracking time per scan against find_architecture's (the stage before it); timings
are of a shared machine (other jobs ran): read the ratio only.

    .venv/bin/python benchmarks/bench_track.py [--seeds 4] [--frames 6] [--size 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from rootscope import track, traits
from rootscope.architecture import find_architecture, split_classes
from rootscope.metrics import match_points
from rootscope.synth import SynthConfig, SynthFrame, make_series


def per_scan_tables(series: list[SynthFrame], source: str) -> tuple[pd.DataFrame, pd.DataFrame, dict, float]:
    """Plant and root tables of every scan (scan's own pixels), matrices, seconds of architecture."""
    plants, roots, matrices, seconds = [], [], {}, 0.0
    mm = series[0].px_per_mm
    for k, frame in enumerate(series):
        start = time.perf_counter()
        if source == "truth":
            arch = track.scene_architecture(frame.scene)
        else:
            root_mask, seed_mask = split_classes(frame.mask, 1, 2)
            arch = find_architecture(root_mask, seed_mask=seed_mask, min_plant_length_px=3 * mm)
        seconds += time.perf_counter() - start
        scan, hours = f"scan{k}", frame.time_h - series[0].time_h
        plants.append(traits.plant_table(arch, mm, image=scan).assign(scan=scan, hours=hours))
        roots.append(traits.root_table(arch, mm, image=scan).assign(scan=scan, hours=hours))
        matrices[scan] = frame.matrix
    return pd.concat(plants, ignore_index=True), pd.concat(roots, ignore_index=True), matrices, seconds


def truth_keys(ours_xy: np.ndarray, truth_xy: np.ndarray, keys: np.ndarray, radius: float) -> np.ndarray:
    """The truth key of each of our points (None where unmatched)."""
    out = np.full(len(ours_xy), None, object)
    pairs = match_points(ours_xy, truth_xy, radius).pairs
    out[pairs[:, 0]] = keys[pairs[:, 1]]
    return out


def link_scores(ids: pd.Series, truth: pd.Series, scan: pd.Series) -> tuple[float, float, int]:
    """(share of truth links kept, share of wrong links, truth links) over consecutive observations."""
    table = pd.DataFrame({"id": ids.to_numpy(), "truth": truth.to_numpy(), "k": scan.to_numpy()})
    table = table[table.truth.notna()]
    by_truth = table.sort_values(["truth", "k"])
    same = by_truth.truth.to_numpy()[1:] == by_truth.truth.to_numpy()[:-1]
    kept = (by_truth.id.to_numpy()[1:] == by_truth.id.to_numpy()[:-1])[same]
    by_id = table.sort_values(["id", "k"])
    linked = by_id.id.to_numpy()[1:] == by_id.id.to_numpy()[:-1]
    wrong = (by_id.truth.to_numpy()[1:] != by_id.truth.to_numpy()[:-1])[linked]
    return (float(kept.mean()) if len(kept) else np.nan, float(wrong.mean()) if len(wrong) else np.nan, len(kept))


def truth_points(series: list[SynthFrame]) -> list[pd.DataFrame]:
    """Per scan: the truth branching points (= lateral bases) in the reference frame, with their keys."""
    out = []
    for frame in series:
        bp = frame.branch_points
        xy = track.to_reference(bp[["x", "y"]].to_numpy(), frame.matrix)
        out.append(pd.DataFrame({"key": (bp.plant.astype(str) + "." + bp.root.astype(str)).to_numpy(),
                                 "x": xy[:, 0], "y": xy[:, 1], "emergence_h": bp.emergence_h.to_numpy()}))
    return out


def evaluate(series: list[SynthFrame], source: str) -> dict[str, tuple[float, float]]:
    """Figures of one series and source: name -> (ours, baseline)."""
    mm = series[0].px_per_mm
    plant_table, root_table, matrices, arch_s = per_scan_tables(series, source)
    start = time.perf_counter()
    tracks = track.track_plate(plant_table, root_table, mm, matrices=matrices)
    track_s = time.perf_counter() - start
    scan_index = {f"scan{k}": k for k in range(len(series))}
    points = truth_points(series)
    # plants: seeds (first point of the primary) in the reference frame
    plants = tracks["plants"].assign(k=lambda t: t.scan.map(scan_index))
    plants["truth"] = None
    truth_rate, ours_rate, base_rate = [], [], []
    for k, frame in enumerate(series):
        kept = [p for p in frame.scene.plants if p.roots]
        seeds = track.to_reference(np.array([p.roots[0].points[0, :2] for p in kept]), frame.matrix)
        rows = plants.k == k
        plants.loc[rows, "truth"] = truth_keys(plants.loc[rows, ["x_ref_px", "y_ref_px"]].to_numpy(), seeds,
                                               np.array([p.id for p in kept]), 3 * mm)
    figures = {}
    figures["plants: correct links"] = (link_scores(plants.plant, plants.truth, plants.k)[0],
                                        link_scores(plants.plant_in_scan, plants.truth, plants.k)[0])
    # growth: Theil-Sen rate of the primary per truth plant, ours vs per-scan numbers
    hours = np.array([f.time_h for f in series]) - series[0].time_h
    lengths = pd.concat(f.lengths.assign(k=k) for k, f in enumerate(series))
    primary = lengths[lengths.order == 1].groupby(["plant", "k"]).length_mm.sum().unstack()
    per_scan = plant_table[plant_table.plant > 0].assign(k=lambda t: t.scan.map(scan_index))
    for truth_id, own in plants.groupby("truth"):
        true = primary.loc[int(truth_id)]
        truth_rate.append(track.robust_slope(hours[true.index], true.to_numpy())[0])
        ours = tracks["growth"].set_index("plant").primary_rate_mm_h[own.plant.mode().iloc[0]]
        ours_rate.append(ours)
        label = own.plant_in_scan.mode().iloc[0]  # the per-scan number this plant carries most often
        same = per_scan[per_scan.plant == label]
        base_rate.append(track.robust_slope(hours[same.k.to_numpy()], same.primary_length_mm.to_numpy())[0])
    truth_rate = np.array(truth_rate)
    figures["growth rate: median error (%)"] = (100 * np.nanmedian(np.abs(np.array(ours_rate) / truth_rate - 1)),
                                                100 * np.nanmedian(np.abs(np.array(base_rate) / truth_rate - 1)))
    # laterals: by base point
    lat = tracks["laterals"].assign(k=lambda t: t.scan.map(scan_index))
    lat["truth"] = None
    for k, truth in enumerate(points):
        rows = lat.k == k
        lat.loc[rows, "truth"] = truth_keys(lat.loc[rows, ["x_ref_px", "y_ref_px"]].to_numpy(),
                                            truth[["x", "y"]].to_numpy(), truth.key.to_numpy(), 1 * mm)
    per_scan_id = _per_scan_root_ids(lat, plants)
    figures["laterals: correct links"] = (link_scores(lat.plant * 10_000 + lat.lateral, lat.truth, lat.k)[0],
                                          link_scores(per_scan_id, lat.truth, lat.k)[0])
    figures["laterals: wrong links"] = (link_scores(lat.plant * 10_000 + lat.lateral, lat.truth, lat.k)[1],
                                        link_scores(per_scan_id, lat.truth, lat.k)[1])
    # emergence, laterals emerging after the first scan; the tracked lateral's main truth
    true_em = pd.concat(points).groupby("key").emergence_h.first() - series[0].time_h
    main = lat[lat.truth.notna()].groupby(["plant", "lateral"]).truth.agg(lambda t: t.mode().iloc[0])
    first = lat.drop_duplicates(["plant", "lateral"]).set_index(["plant", "lateral"]).loc[main.index]
    truth_em = true_em[main.to_numpy()].to_numpy()
    late = truth_em > 0
    seen = (first.emergence_h.to_numpy() - truth_em)[late]
    est = (first.emergence_est_h.to_numpy() - truth_em)[late]
    interval = float(np.median(np.diff(hours)))
    figures["lateral emergence: median |error| (h)"] = (np.median(np.abs(est)), np.median(np.abs(seen)))
    figures["lateral emergence: share within one scan interval"] = (np.mean(np.abs(est) <= interval),
                                                                    np.mean(np.abs(seen) <= interval))
    # branching points: linked in the reference frame vs on the scans' own pixels
    bp = tracks["branch_points"].assign(k=lambda t: t.scan.map(scan_index))
    raw = track.track_points(track.lateral_bases(root_table), mm).assign(k=lambda t: t.scan.map(scan_index))
    for table, matrix_of in ((bp, None), (raw, matrices)):
        table["truth"] = None
        for k, truth in enumerate(points):
            rows = table.k == k
            xy = table.loc[rows, ["x_ref_px", "y_ref_px"]].to_numpy()
            if matrix_of is not None:
                xy = track.to_reference(xy, matrix_of[f"scan{k}"])
            table.loc[rows, "truth"] = truth_keys(xy, truth[["x", "y"]].to_numpy(), truth.key.to_numpy(), 1 * mm)
    figures["branching points: correct links"] = (link_scores(bp.point, bp.truth, bp.k)[0],
                                                  link_scores(raw.point, raw.truth, raw.k)[0])
    if source == "found":
        figures["ms per scan: tracking / find_architecture"] = (1000 * track_s / len(series), 1000 * arch_s / len(series))
    return figures


def _per_scan_root_ids(lat: pd.DataFrame, plants: pd.DataFrame) -> pd.Series:
    """The id a lateral had before tracking: (per-scan plant number, per-scan root number)."""
    label = plants.set_index(["scan", "plant"]).plant_in_scan
    in_scan = label.reindex(pd.MultiIndex.from_frame(lat[["scan", "plant"]])).to_numpy()
    return pd.Series(in_scan * 10_000 + lat.root_in_scan.to_numpy(), index=lat.index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="synthetic plates (series)")
    parser.add_argument("--frames", type=int, default=6, help="scans per plate")
    parser.add_argument("--size", type=int, default=1000, help="scan side (px)")
    args = parser.parse_args()
    cfg = SynthConfig(size=args.size)
    results: dict[str, list[dict]] = {"truth": [], "found": []}
    for seed in range(args.seeds):
        series = make_series(frames=args.frames, seed=seed, config=cfg)
        for source in results:
            results[source].append(evaluate(series, source))
    print(f"{args.seeds} plates x {args.frames} scans, {args.size} px ({cfg.px_per_mm:.2f} px/mm), every "
          f"{cfg.interval_h:g} h; shared machine (timings: ratio only)")
    print("Baseline: per-scan numbers as ids (plants, laterals, growth), scan pixels without registration "
          "(branching points), first-seen time (emergence; ours: extrapolated back).\n")
    for source, runs in results.items():
        title = "truth architecture (RSML)" if source == "truth" else "find_architecture on the truth masks"
        print(f"## {title}")
        print(f"| {'figure':<60} | {'ours':>8} | {'baseline':>8} | {'ratio':>6} |")
        print(f"|{'-' * 62}|{'-' * 10}|{'-' * 10}|{'-' * 8}|")
        for name in runs[0]:
            ours = float(np.nanmean([r[name][0] for r in runs]))
            base = float(np.nanmean([r[name][1] for r in runs]))
            ratio = ours / base if base else float("nan")
            print(f"| {name:<60} | {ours:8.3f} | {base:8.3f} | {ratio:6.2f} |")
        print()


if __name__ == "__main__":
    main()
