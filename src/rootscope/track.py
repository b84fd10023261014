"""Follow plants, roots and branching points across the scans of one plate: growth and emergence.

Positions measured on each scan are mapped into the plate's reference frame (``matrices``: scan ->
3 x 3 matrix in (x, y) px to the reference, as the alignment stage writes; identity when the tables
were measured on aligned scans, as in the pipeline) and linked scan to scan by a Hungarian assignment
on distance within a gate (:func:`link_points`). A track never ends: a plant, root or point missed in
one scan keeps its id when it is found again.

- Plants, by their seed point: persistent ``plant`` ids 1..N per plate, left to right.
- Roots of a plant: the primary root is the plant's; every other root is linked by its base point,
  where it leaves its parent (reference px). ``lateral`` ids 1..M per plant, in order of emergence;
  the emergence time is the first scan a root is seen in (hours since the plate's first scan), with
  its insertion along the parent (mm from the parent's base) and position then.
- Branching points, by position within a radius.

Tables in mm and hours (``time_h``: hours since the plate's first scan, the pipeline's ``hours``);
positions in reference-frame pixels and mm (``x_ref_px``, ``x_ref_mm``, ...).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from scipy.stats import theilslopes

from . import rsml
from .architecture import ImageArchitecture, PlantArchitecture, RootPath
from .errors import InputError

#: Gates (mm): how far a plant's seed, a root's base or a branching point may be from its track.
PLANT_GATE_MM = 4.0
ROOT_GATE_MM = 1.5
POINT_GATE_MM = 1.0

PLANT_COLUMNS = ["plate", "plant", "scan", "time_h", "plant_in_scan", "x_ref_px", "y_ref_px", "x_ref_mm", "y_ref_mm",
                 "primary_length_mm", "total_length_mm", "lateral_count", "total_lateral_length_mm",
                 "network_area_mm2", "primary_rate_mm_h"]
LATERAL_COLUMNS = ["plate", "plant", "lateral", "order", "parent_lateral", "scan", "time_h", "length_mm",
                   "insertion_mm", "x_ref_px", "y_ref_px", "emergence_h", "emergence_insertion_mm",
                   "emergence_x_ref_px", "emergence_y_ref_px", "emergence_est_h", "root_in_scan"]
POINT_COLUMNS = ["plate", "point", "scan", "time_h", "x_ref_px", "y_ref_px", "x_ref_mm", "y_ref_mm", "emergence_h"]
GROWTH_COLUMNS = ["plate", "plant", "scans", "first_h", "last_h", "primary_first_mm", "primary_last_mm",
                  "primary_rate_mm_h", "primary_rate_low", "primary_rate_high", "total_rate_mm_h", "laterals",
                  "first_lateral_h"]


# ------------------------------------------------------------------------------------ linking
def link_points(points: Sequence[np.ndarray], radius: float) -> list[np.ndarray]:
    """Link point sets over time into tracks.

    ``points[t]`` is ``K_t x D`` (all frames in one coordinate system, px). Each frame's points are
    assigned one to one (Hungarian, least total distance, as many links as possible) to the tracks'
    last positions within ``radius`` px; tracks missed in earlier frames stay candidates. Points left
    over start new tracks. Returns the track id of every point per frame (0..T-1, numbered in order
    of first appearance).
    """
    dim = next((np.asarray(p).reshape(len(p), -1).shape[1] for p in points if len(p)), 2)
    last = np.zeros((0, dim))
    out = []
    for frame in points:
        p = np.asarray(frame, np.float64).reshape(-1, dim)
        ids = np.full(len(p), -1, np.int64)
        if len(p) and len(last):
            cost = cdist(p, last)
            bad = cost > radius
            # pairs beyond the gate cost more than any set of allowed ones: the most links, then the least distance
            rows, cols = linear_sum_assignment(np.where(bad, radius * (min(cost.shape) + 1) + 1, cost))
            ok = ~bad[rows, cols]
            ids[rows[ok]] = cols[ok]
        new = ids < 0
        ids[new] = len(last) + np.arange(int(new.sum()))
        last = np.vstack([last, p[new]])
        last[ids] = p
        out.append(ids)
    return out


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal values in a 1-D array."""
    edges = np.flatnonzero(np.r_[True, values[1:] != values[:-1], True])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def to_reference(xy: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """``N x 2`` (x, y) px of a scan mapped by its 3 x 3 ``matrix`` to the reference frame (None: as is)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    if matrix is None:
        return xy
    m = np.asarray(matrix, np.float64)
    h = xy @ m[:2, :2].T + m[:2, 2]
    w = xy @ m[2, :2] + m[2, 2]
    return h / w[:, None]


def _scans(table: pd.DataFrame) -> list[str]:
    """Scan names in table order (the pipeline's tables are in time order)."""
    return list(dict.fromkeys(table.scan)) if len(table) else []


def _times(table: pd.DataFrame) -> dict[str, float]:
    """Hours since the plate's first scan per scan (NaN where unknown)."""
    if "hours" not in table:
        return {s: np.nan for s in _scans(table)}
    return {s: float(h) if pd.notna(h) else np.nan for s, h in table.groupby("scan", sort=False).hours.first().items()}


def _check(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{what}: columns {missing} missing (found {list(table.columns)}); pass the pipeline's "
                         f"per-plate tables (out/<plate>/traits.csv, roots.csv) or rootscope.traits tables with "
                         "`scan` and `hours` added.")


def _scale(px_per_mm: float) -> float:
    if px_per_mm is None or not np.isfinite(px_per_mm) or px_per_mm <= 0:
        raise InputError(f"tracking: no valid pixel scale (px_per_mm={px_per_mm}); pass the plate's px_per_mm.")
    return float(px_per_mm)


def _plate(table: pd.DataFrame) -> str:
    return str(table.plate.iloc[0]) if "plate" in table and len(table) else ""


# ------------------------------------------------------------------------------------ plants
def track_plants(traits: pd.DataFrame, px_per_mm: float, *, matrices: Mapping[str, np.ndarray] | None = None,
                 gate_mm: float = PLANT_GATE_MM) -> pd.DataFrame:
    """Persistent plant ids for one plate: one row per plant and scan where it was found.

    ``traits`` is the plate's plant table over scans (``scan``, ``hours``, per-scan ``plant`` label,
    ``seed_x_px``, ``seed_y_px`` and traits in mm; rows with ``plant = 0`` are scans without plants).
    Seeds are linked within ``gate_mm``; ids 1..N go left to right by mean reference x. Columns
    :data:`PLANT_COLUMNS` (``primary_rate_mm_h``: primary growth since the plant's previous scan).
    """
    mm = _scale(px_per_mm)
    _check(traits, ["scan", "plant", "seed_x_px", "seed_y_px"], "plant table")
    found = traits[traits.plant > 0]
    scans = _scans(found)
    parts = [found[found.scan == s] for s in scans]
    found = pd.concat(parts) if parts else found  # grouped by scan, in time order
    where = [to_reference(p[["seed_x_px", "seed_y_px"]].to_numpy(), (matrices or {}).get(s)) for s, p in zip(scans, parts)]
    xy = np.vstack([np.zeros((0, 2)), *where])
    rows = pd.DataFrame({"plate": _plate(traits), "track": np.concatenate([np.zeros(0, int), *link_points(where, gate_mm * mm)]),
                         "scan": found.scan.to_numpy(), "plant_in_scan": found.plant.to_numpy(),
                         "x_ref_px": xy[:, 0], "y_ref_px": xy[:, 1]})
    times = _times(traits)
    rows["time_h"] = rows.scan.map(times).astype(float)
    rank = rows.groupby("track").x_ref_px.mean().rank(method="first").astype(int)
    rows["plant"] = rows.track.map(rank)
    rows["x_ref_mm"], rows["y_ref_mm"] = rows.x_ref_px / mm, rows.y_ref_px / mm
    for column in PLANT_COLUMNS[9:-1]:
        rows[column] = found[column].to_numpy() if column in found else np.nan
    rows = rows.assign(_k=rows.scan.map({s: k for k, s in enumerate(scans)})).sort_values(["plant", "_k"])
    step = rows.groupby("plant")[["primary_length_mm", "time_h"]].diff()
    rows["primary_rate_mm_h"] = step.primary_length_mm / step.time_h
    return rows[PLANT_COLUMNS].reset_index(drop=True)


def with_plant_ids(table: pd.DataFrame, plants: pd.DataFrame) -> pd.DataFrame:
    """``table`` (traits or roots over scans, its ``plant`` a per-scan label) with ``plant`` replaced by
    the persistent id of :func:`track_plants` and the label kept as ``plant_in_scan``, right after it.
    Rows of untracked plants (and ``plant = 0`` rows) get ``plant = 0``."""
    keys = ["plate", "scan"] if "plate" in table and "plate" in plants else ["scan"]
    lookup = plants[[*keys, "plant_in_scan", "plant"]].rename(columns={"plant": "_tracked"})
    out = table.rename(columns={"plant": "plant_in_scan"}).merge(lookup, how="left", on=[*keys, "plant_in_scan"])
    out["plant"] = out.pop("_tracked").fillna(0).astype(int)
    columns = list(table.columns)
    at = columns.index("plant") + 1
    return out[columns[:at] + ["plant_in_scan"] + columns[at:]]


# ------------------------------------------------------------------------------------- roots
def track_roots(roots: pd.DataFrame, plants: pd.DataFrame, px_per_mm: float, *,
                matrices: Mapping[str, np.ndarray] | None = None, gate_mm: float = ROOT_GATE_MM) -> pd.DataFrame:
    """Persistent ids of every root but the primary, per tracked plant: one row per root and scan.

    ``roots`` is the plate's root table over scans (``scan``, per-scan ``plant`` and ``root``,
    ``parent``, ``order``, ``is_primary``, ``length_mm``, ``insertion_mm``, ``base_x_px``,
    ``base_y_px``); ``plants`` the output of :func:`track_plants`. A root is linked to the track of
    its plant whose base (its insertion point on the parent, reference px) is nearest, within
    ``gate_mm``, whatever its order and parent in the scan: where roots cross, the architecture of
    one scan can read a lateral's parent or order differently from the next. Columns
    :data:`LATERAL_COLUMNS`: ``lateral`` 1..M per plant in order of emergence, ``parent_lateral``
    (in that scan; 0 = the primary, -1 = none), ``emergence_h`` the first scan's time,
    ``emergence_*`` where it was first seen, ``emergence_est_h`` back-extrapolated at constant growth
    (h, between the scan before the first sighting and ``emergence_h``: :func:`_extrapolated_emergence`);
    ``root_in_scan`` the per-scan root number.
    """
    mm = _scale(px_per_mm)
    _check(roots, ["scan", "plant", "root", "parent", "order", "is_primary", "length_mm", "insertion_mm",
                   "base_x_px", "base_y_px"], "root table")
    ids = plants.set_index(["scan", "plant_in_scan"]).plant
    table = roots.assign(tracked=ids.reindex(pd.MultiIndex.from_frame(roots[["scan", "plant"]])).to_numpy())
    table = table[table.tracked.notna()].astype({"tracked": int})
    base = np.zeros((len(table), 2))
    for scan, index in table.groupby("scan", sort=False).indices.items():
        base[index] = to_reference(table.iloc[index][["base_x_px", "base_y_px"]].to_numpy(), (matrices or {}).get(scan))
    scans = _scans(roots)
    table = table.assign(x_ref_px=base[:, 0], y_ref_px=base[:, 1],
                         _scan_index=table.scan.map({s: k for k, s in enumerate(scans)}))
    primary = table.is_primary.astype(bool).to_numpy()
    others = table[~primary].sort_values(["tracked", "_scan_index"], kind="stable")
    if not len(others):
        return pd.DataFrame(columns=LATERAL_COLUMNS)
    k, plant = others._scan_index.to_numpy(), others.tracked.to_numpy()
    xy = others[["x_ref_px", "y_ref_px"]].to_numpy()
    tracks = np.zeros(len(others), np.int64)
    next_id = 1
    for lo, hi in _runs(plant):  # one plant at a time, its rows in time order
        cuts = np.flatnonzero(np.diff(k[lo:hi])) + 1
        tracks[lo:hi] = next_id + np.concatenate(link_points(np.split(xy[lo:hi], cuts), gate_mm * mm))
        next_id = int(tracks[lo:hi].max()) + 1
    # the parent's track in the same scan: 0 for the primary, -1 for none (a first-order root)
    track_of = {key: 0 for key in zip(table._scan_index[primary], table.plant[primary], table.root[primary])}
    track_of.update(zip(zip(k, others.plant, others.root), tracks.tolist()))
    parents = np.array([track_of.get(key, -1) for key in zip(k, others.plant, others.parent)])
    rows = others.assign(track=tracks, parent_track=parents)
    times = _times(roots)
    out = rows.assign(time_h=rows.scan.map(times).astype(float))
    out = out.sort_values(["tracked", "_scan_index", "order", "insertion_mm"], kind="stable")
    first = out.groupby("track").head(1).set_index("track")
    rank = first.groupby("tracked").cumcount() + 1  # per plant, in order of first appearance
    number = {0: 0, -1: -1, **rank.to_dict()}
    out = out.assign(plant=out.tracked, lateral=out.track.map(number), parent_lateral=out.parent_track.map(number),
                     emergence_h=out.track.map(first.time_h), emergence_insertion_mm=out.track.map(first.insertion_mm),
                     emergence_x_ref_px=out.track.map(first.x_ref_px),
                     emergence_y_ref_px=out.track.map(first.y_ref_px), root_in_scan=out.root, plate=_plate(roots))
    hours = [times[scan] for scan in scans]
    out["emergence_est_h"] = _extrapolated_emergence(out, np.r_[hours[:1], hours[:-1]])
    return out.sort_values(["plant", "lateral", "_scan_index"])[LATERAL_COLUMNS].reset_index(drop=True)


def _extrapolated_emergence(rows: pd.DataFrame, earliest_h: np.ndarray) -> pd.Series:
    """Emergence time (h) back-extrapolated at constant growth: first-seen time minus first length over
    the root's growth rate between its first two scans (roots seen once: the median such rate of its
    plant's roots of the same order); the first-seen time where no rate is known.

    Bounded by what was seen: never later than first seen, never earlier than ``earliest_h[k]``, the
    time of the scan before the one it was first seen in (``k``; for the first scan its own time: a root
    there emerged at or before the experiment's start, and no earlier bound is known)."""
    ordered = rows.sort_values(["track", "_scan_index"])
    head = ordered.groupby("track").head(2)
    first = head.groupby("track").nth(0).set_index("track")
    second = head.groupby("track").nth(1).set_index("track")
    rate = ((second.length_mm - first.length_mm[second.index]) / (second.time_h - first.time_h[second.index]))
    rate = rate[rate > 0].reindex(first.index)
    typical = rate.groupby([first.tracked, first.order]).transform("median")
    rate = rate.fillna(typical)
    lowest = pd.Series(earliest_h[first._scan_index.to_numpy()], index=first.index)
    estimate = (first.time_h - first.length_mm / rate).clip(lower=lowest, upper=first.time_h).fillna(first.time_h)
    return rows.track.map(estimate)


# -------------------------------------------------------------------------------------- points
def lateral_bases(roots: pd.DataFrame) -> pd.DataFrame:
    """Branching points of a root table over scans: the base of every root with a parent (``scan``,
    ``hours``, ``x_px``, ``y_px``)."""
    bases = roots[roots.parent > 0]
    out = pd.DataFrame({"scan": bases.scan, "x_px": bases.base_x_px, "y_px": bases.base_y_px})
    if "hours" in bases:
        out.insert(1, "hours", bases.hours)
    if "plate" in bases:
        out.insert(0, "plate", bases.plate)
    return out.reset_index(drop=True)


def track_points(points: pd.DataFrame, px_per_mm: float, *, matrices: Mapping[str, np.ndarray] | None = None,
                 radius_mm: float = POINT_GATE_MM, scans: Sequence[str] | None = None) -> pd.DataFrame:
    """Persistent ids of branching points (``scan``, ``hours``, ``x_px``, ``y_px`` per point and scan),
    linked within ``radius_mm`` in the reference frame. ``scans`` gives the time order (default: table
    order). Columns :data:`POINT_COLUMNS`: ``point`` 1..P in order of emergence (then top to bottom),
    ``emergence_h`` the time of the first scan it is seen in."""
    mm = _scale(px_per_mm)
    _check(points, ["scan", "x_px", "y_px"], "branching-point table")
    order = [s for s in (scans if scans is not None else _scans(points)) if s in set(points.scan)]
    parts = [points[points.scan == s] for s in order]
    where = [to_reference(p[["x_px", "y_px"]].to_numpy(), (matrices or {}).get(s)) for s, p in zip(order, parts)]
    if not parts:
        return pd.DataFrame(columns=POINT_COLUMNS)
    ids = link_points(where, radius_mm * mm)
    xy = np.vstack(where)
    out = pd.DataFrame({"plate": _plate(points), "track": np.concatenate(ids), "scan": pd.concat(parts).scan.to_numpy(),
                        "x_ref_px": xy[:, 0], "y_ref_px": xy[:, 1]})
    out["time_h"] = out.scan.map(_times(points)).astype(float)
    out["_scan_index"] = out.scan.map({s: k for k, s in enumerate(order)})
    first = out.sort_values("_scan_index", kind="stable").groupby("track").head(1)
    rank = first.sort_values(["_scan_index", "y_ref_px", "x_ref_px"]).track.reset_index(drop=True)
    out["point"] = out.track.map({t: k + 1 for k, t in rank.items()})
    out["emergence_h"] = out.track.map(first.set_index("track").time_h)
    out["x_ref_mm"], out["y_ref_mm"] = out.x_ref_px / mm, out.y_ref_px / mm
    return out.sort_values(["point", "_scan_index"])[POINT_COLUMNS].reset_index(drop=True)


# -------------------------------------------------------------------------------------- growth
def robust_slope(t: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Theil-Sen slope of ``y`` over ``t`` (e.g. mm/h) with its 95 % interval: (slope, low, high), NaN
    with fewer than two distinct finite times."""
    ok = np.isfinite(t) & np.isfinite(y)
    if len(np.unique(t[ok])) < 2:
        return np.nan, np.nan, np.nan
    slope, _, low, high = theilslopes(y[ok], t[ok])
    return float(slope), float(low), float(high)


def growth_rates(plants: pd.DataFrame, laterals: pd.DataFrame) -> pd.DataFrame:
    """Per tracked plant: scans seen, first and last time (h), primary length then (mm), the primary's
    robust growth rate (Theil-Sen slope over all its scans, mm/h, with a 95 % interval), the total
    length's rate (mm/h), laterals seen (second order) and the first lateral's emergence time (h).
    Columns :data:`GROWTH_COLUMNS`."""
    rows = []
    for (plate, plant), own in plants.groupby(["plate", "plant"], sort=True):
        own = own.sort_values("time_h")
        t = own.time_h.to_numpy(float)
        rate, low, high = robust_slope(t, own.primary_length_mm.to_numpy(float))
        lat = laterals[(laterals.plate == plate) & (laterals.plant == plant) & (laterals.order == 2)] \
            if len(laterals) else laterals
        rows.append({"plate": plate, "plant": plant, "scans": len(own), "first_h": t[0], "last_h": t[-1],
                     "primary_first_mm": own.primary_length_mm.iloc[0], "primary_last_mm": own.primary_length_mm.iloc[-1],
                     "primary_rate_mm_h": rate, "primary_rate_low": low, "primary_rate_high": high,
                     "total_rate_mm_h": robust_slope(t, own.total_length_mm.to_numpy(float))[0],
                     "laterals": int(lat.lateral.nunique()) if len(lat) else 0,
                     "first_lateral_h": float(lat.emergence_h.min()) if len(lat) else np.nan})
    return pd.DataFrame(rows, columns=GROWTH_COLUMNS)


def track_plate(traits: pd.DataFrame, roots: pd.DataFrame, px_per_mm: float, *, points: pd.DataFrame | None = None,
                matrices: Mapping[str, np.ndarray] | None = None, plant_gate_mm: float = PLANT_GATE_MM,
                root_gate_mm: float = ROOT_GATE_MM, point_gate_mm: float = POINT_GATE_MM) -> dict[str, pd.DataFrame]:
    """All tracks of one plate: ``plants``, ``laterals``, ``branch_points`` (from ``points``, the
    detector's table, else the laterals' bases) and ``growth`` (see the functions above)."""
    plants = track_plants(traits, px_per_mm, matrices=matrices, gate_mm=plant_gate_mm)
    laterals = track_roots(roots, plants, px_per_mm, matrices=matrices, gate_mm=root_gate_mm)
    found = points if points is not None else lateral_bases(roots)
    return {"plants": plants, "laterals": laterals,
            "branch_points": track_points(found, px_per_mm, matrices=matrices, radius_mm=point_gate_mm,
                                          scans=_scans(traits)),
            "growth": growth_rates(plants, laterals)}


def track_scenes(scenes: Sequence[rsml.Scene], px_per_mm: float, *, names: Sequence[str] | None = None,
                 hours: Sequence[float] | None = None, matrices: Mapping[str, np.ndarray] | None = None,
                 plate: str = "", **gates: float) -> dict[str, pd.DataFrame]:
    """:func:`track_plate` of a plate's RSML scenes, one per scan in time order (``names``: scan names,
    default ``scan0, scan1, ...``; ``hours`` since the first scan, default unknown; ``matrices`` by
    name when the scenes are in each scan's own pixels; ``plate`` fills the tables' plate column).
    ``gates``: the ``*_gate_mm`` of track_plate."""
    from . import traits as measure

    names = list(names) if names is not None else [f"scan{k}" for k in range(len(scenes))]
    hours = list(hours) if hours is not None else [np.nan] * len(scenes)
    plants, roots = [], []
    for scene, name, when in zip(scenes, names, hours):
        arch = scene_architecture(scene)
        plants.append(measure.plant_table(arch, px_per_mm, image=name).assign(plate=plate, scan=name, hours=when))
        roots.append(measure.root_table(arch, px_per_mm, image=name).assign(plate=plate, scan=name, hours=when))
    if not plants:
        raise InputError("tracking: no RSML scene given; pass one RSML file per scan of the plate.")
    return track_plate(pd.concat(plants, ignore_index=True), pd.concat(roots, ignore_index=True), px_per_mm,
                       matrices=matrices, **gates)


def track_timed_scene(scene: rsml.Scene, px_per_mm: float, *, plate: str = "",
                      **gates: float) -> dict[str, pd.DataFrame]:
    """:func:`track_scenes` of one 2D+t RSML scene (e.g. RootSystemTracker's): one scene per observation
    (:func:`rootscope.rsml.scene_at` at each of ``scene.metadata.observation_hours``), named ``obs01``,
    ``obs02``, ..., at hours since the first observation. ``px_per_mm``: the pixel scale (px/mm);
    ``gates``: the ``*_gate_mm`` of :func:`track_plate`. Raises InputError when the scene gives no
    observation hours."""
    hours = scene.metadata.observation_hours
    if not len(hours):
        raise InputError("tracking: the RSML has no <observation-hours> in its metadata, so it is not a 2D+t "
                         "file; pass one RSML file per scan instead.")
    scenes = [rsml.scene_at(scene, h) for h in hours]
    return track_scenes(scenes, px_per_mm, names=[f"obs{k:02d}" for k in range(1, len(hours) + 1)],
                        hours=(hours - hours[0]).tolist(), plate=plate, **gates)


# ---------------------------------------------------------------------------------- 2D+t RSML
def timed_scene(scene: rsml.Scene, plants: pd.DataFrame, laterals: pd.DataFrame, scan: str,
                px_per_mm: float) -> rsml.Scene:
    """2D+t RSML: the architecture of one ``scan`` (as :func:`rootscope.architecture.to_scene` writes
    it: plant ids and root ids ``<plant>.<root>`` of that scan) with the persistent ids of
    :func:`track_plants` / :func:`track_roots` (plant ``<plant>``, root ``<plant>.<lateral>``, 0 for
    the primary), the root properties ``emergence_h`` (first seen) and ``emergence_est_h`` (laterals,
    extrapolated back) and the per-point function ``time``: hours since
    the plate's first scan at which the root reached the point, interpolated linearly between scans
    (from the back-extrapolated emergence for a lateral's first part; the first scan's time for what
    the primary already had then). Untracked plants are left out. As in RootSystemTracker's 2D+t RSML,
    the metadata's observation hours are the scans' times (h) and each point also gets ``time_index``
    (observation steps, :func:`rootscope.rsml.observation_index`), when the scans' times are known."""
    mm = _scale(px_per_mm)
    scene = copy.deepcopy(scene)
    seen = plants.time_h.to_numpy(float)
    observed = np.unique(seen[np.isfinite(seen)])  # the scans' times (h), where known
    if len(observed):
        scene.metadata.observation_hours = observed
    now = plants[plants.scan == scan]
    tracked = dict(zip(now.plant_in_scan.astype(str), now.plant))
    here = laterals[laterals.scan == scan]
    lateral_of = {(int(p), int(r)): int(n) for p, r, n in zip(here.plant, here.root_in_scan, here.lateral)}
    out = rsml.Scene(metadata=scene.metadata)
    for plant in scene.plants:
        if plant.id not in tracked:
            continue
        pid = int(tracked[plant.id])
        own = plants[plants.plant == pid]
        for root in plant.all_roots():
            number = lateral_of.get((pid, int(root.id.rsplit(".", 1)[-1])), 0)
            if number:
                series = laterals[(laterals.plant == pid) & (laterals.lateral == number)]
                times = np.r_[series.emergence_est_h.iloc[0], series.time_h]
                lengths = np.r_[0.0, series.length_mm]
            else:
                times, lengths = own.time_h.to_numpy(float), own.primary_length_mm.to_numpy(float)
            grows = np.r_[True, np.diff(np.maximum.accumulate(lengths)) > 0]
            arc = np.r_[0, np.cumsum(np.hypot(*np.diff(np.asarray(root.points, float)[:, :2], axis=0).T))] / mm
            root.functions[rsml.TIME] = np.interp(arc, lengths[grows], times[grows])
            if len(observed):
                root.functions[rsml.TIME_INDEX] = rsml.observation_index(root.functions[rsml.TIME], observed)
            root.id = f"{pid}.{number}"
            if number:
                root.properties.update(emergence_h=f"{series.emergence_h.iloc[0]:.3f}", emergence_est_h=f"{times[0]:.3f}")
            else:
                root.properties["emergence_h"] = f"{own.time_h.min():.3f}"  # first seen
        out.plants.append(rsml.Plant(roots=plant.roots, id=str(pid), label=f"plant {pid}", properties=plant.properties))
    out.plants.sort(key=lambda p: int(p.id))
    return out


# ------------------------------------------------------------------------------ RSML as input
def scene_architecture(scene: rsml.Scene, shape: tuple[int, int] = (0, 0)) -> ImageArchitecture:
    """An RSML scene (one scan, px) as an :class:`ImageArchitecture`, so that architectures traced by
    other tools (or synthetic truth) can be measured and tracked. Plants are numbered 1..N in file
    order; plants without root points are left out; a plant's seed is its first root's base; the
    primary is the first-order root with the deepest tip; insertion is the arc length along the
    parent to the point nearest the root's base."""
    arch = ImageArchitecture(shape=shape)
    for plant in scene.plants:
        out = PlantArchitecture(id=len(arch.plants) + 1, seed=np.zeros(2))

        def visit(root: rsml.Root, parent: int | None, order: int) -> None:
            if len(root.points) < 2:
                return
            points = root.rc()
            insertion = 0.0
            if parent is not None:
                line = out.roots[parent].points
                arc = np.r_[0, np.cumsum(np.hypot(*np.diff(line, axis=0).T))]
                insertion = float(arc[np.argmin(np.hypot(*(line - points[0]).T))])
            diameter = np.asarray(root.functions.get("diameter", np.zeros(len(points))), np.float64)
            out.roots.append(RootPath(points, diameter, order, rsml.polyline_length(points), parent, insertion))
            own = len(out.roots) - 1
            for child in root.children:
                visit(child, own, order + 1)

        for root in plant.roots:
            visit(root, None, 1)
        if not out.roots:
            continue
        out.seed = out.roots[0].points[0].copy()
        first = [k for k, r in enumerate(out.roots) if r.parent is None]
        out.primary = max(first, key=lambda k: out.roots[k].tip[0])
        arch.plants.append(out)
    return arch
