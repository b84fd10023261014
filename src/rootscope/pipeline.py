"""The stages of one plate series, resumable, and the whole experiment on top of :mod:`rootscope.batch`.

Per plate (``out/<plate>/...``), per scan, each step a :class:`~rootscope.stages.Stage` that is skipped
when up to date:

1. ``align``   raw scan + reference scan -> ``transforms/<scan>.json`` (3 x 3 matrix to the reference,
               quality record); with ``align.reference = "previous"`` one stage for the whole series.
2. ``warp``    raw scan + transform -> ``aligned/<scan>.png`` (the reference frame's size and bit depth).
3. ``segment`` aligned scan + model file -> ``masks/<scan>.png`` (uint8 class indices 1..K) and
               ``masks/<scan>.json`` (the class names).
4. ``branches`` (when ``models.branches`` is set) aligned scan + mask + branch-point model ->
               ``branches/<scan>.csv``: x, y (px and mm) and score of each branching point (U-Net
               heat-map peaks fused with the root mask's skeleton junctions).
5. ``measure`` mask (and the branching points, which decide the short laterals and place their
               bases: ``architecture.branch_support_px``) -> ``traits/<scan>.csv`` (one row per
               plant, :func:`rootscope.traits.plant_table`),
               ``roots/<scan>.csv`` (one row per root), ``rejected/<scan>.csv`` (objects that are not
               seedlings, with the reason: :func:`rootscope.plants.find_plants`),
               ``classes/<scan>.csv`` (projected area per class),
               ``rsml/<scan>.rsml``, ``overlays/unlabelled/<scan>.png`` (architecture over the aligned
               scan, ``report.thumbnail_px`` at most, plants not yet labelled) and ``regions/<scan>.csv``
               (area per class and region) when the config sets regions for the plate. Lengths in mm,
               areas in mm^2.

then ``out/<plate>/<table>.csv`` for each table over all scans, with ``plate, species, scan, hours``
(hours since the plate's first scan) in front, and the ``track`` stage: plants, roots and branching
points followed from scan to scan (:mod:`rootscope.track`) -> ``out/<plate>/tracks/plants.csv``
(persistent plant ids per plate, left to right, with their traits per scan), ``laterals.csv`` (persistent
lateral ids, emergence times and length per scan), ``branch_points.csv``, ``growth.csv`` (growth
rates in mm/h) and ``<plate>.rsml`` (2D+t RSML: the last scan's architecture with persistent ids,
emergence times and, per point, the time its root reached it; :func:`rootscope.track.timed_scene`).
Then, per scan, ``label``: the unlabelled overlay with each plant's persistent id written beside its
seed -> ``overlays/<scan>.png`` (the pictures of the report; redone only where the ids change).
Over all plates (:func:`run_experiment`): ``out/tracks/*.csv``, ``out/traits.csv`` and
``out/traits.parquet`` (per plant and scan, ``plant`` the persistent id and ``plant_in_scan`` the
scan's own number: for R and pandas), ``out/roots.csv`` (the same two plant columns),
``out/classes.csv``, ``out/regions.csv``, ``out/branches.csv``, ``out/rejected.csv``, ``out/failures.csv`` and
``out/report.html``
(:mod:`rootscope.report_html`). A scan that fails (unreadable, not
alignable) is recorded and left out; the rest of its plate goes on. Raw scans are only read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import io
from .batch import error_message
from .config import Config, TrackSettings
from .errors import AlignmentError, ConfigError, RootscopeError
from .experiment import Experiment, Plate, discover
from .stages import Outcome, Stage, run_stage


@dataclass
class PlateJob:
    """Everything one plate task needs (sent to a Dask worker, so plain data only)."""

    plate: Plate
    config: Config
    out: Path
    force: bool = False


@dataclass
class PlateResult:
    """What happened to one plate: per-stage counts of work done and skipped, failed scans, its table."""

    plate: str
    ran: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    tables: dict[str, Path] = field(default_factory=dict)
    frames: list[dict[str, Any]] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        tally = self.ran if outcome.ran else self.skipped
        tally[outcome.name] = tally.get(outcome.name, 0) + 1


@dataclass
class ExperimentResult:
    """The run of a whole experiment: plate results, the batch summary and the files written."""

    plates: dict[str, PlateResult]
    summary: str
    failures_csv: Path
    tables: dict[str, Path]
    report: Path | None
    n_failures: int


# ---------------------------------------------------------------------------------- one plate
def run_plate(job: PlateJob) -> PlateResult:
    """Run every stage of one plate series (skipping what is up to date); see the module docstring."""
    plate, config = job.plate, job.config
    folder = job.out / plate.name
    result = PlateResult(plate.name)
    segmenter = _segmenter_loader(config)
    detector = _branch_loader(config)
    px_per_mm = _plate_scale(plate, config, folder)
    regions = config.regions_for(plate.name)
    hours = plate.hours()

    def step(stage: Stage, scan: Path | None) -> bool:
        """Run one stage of one scan (None: of the whole series); a failure is recorded and the scan
        dropped (returns False)."""
        try:
            result.count(run_stage(stage, force=job.force))
        except Exception as exc:  # one bad scan must not stop the plate
            result.failures.append({"item": scan.name if scan else "", "stage": stage.name, "error": type(exc).__name__,
                                    "message": error_message(exc)})
            return False
        return True

    align = config.align
    if align.enabled and align.reference == "previous" and not step(_series_stage(plate, config, folder), None):
        return result
    rows = []
    for i, scan in enumerate(plate.scans):
        stem, image, aligned = scan.stem, scan, True
        if align.enabled:
            record_path = folder / "transforms" / f"{stem}.json"
            if align.reference != "previous" and not step(_align_stage(plate, i, config, record_path), scan):
                continue
            record = io.read_json(record_path)
            if record["ok"]:
                image = folder / "aligned" / f"{stem}.png"
                warp = Stage("warp", lambda i, o: _warp(i, o, px_per_mm), {"scan": scan, "transform": record_path},
                             {"aligned": image})
                if not step(warp, scan):
                    continue
            else:  # measured where it lies, flagged, and not followed over time
                aligned = False
                result.failures.append({"item": scan.name, "stage": "align", "error": AlignmentError.__name__,
                                        "message": f"{scan}: not aligned ({record['message']}); measured in its own "
                                        "frame (aligned = false in the tables) and left out of tracking. Check the "
                                        "scan, or change align.model / align.reference."})
        mask = folder / "masks" / f"{stem}.png"
        segmented = {"mask": mask, "classes": io.mask_sidecar(mask)}  # the class names beside the mask
        segment = Stage("segment", lambda i, o: _segment(i, o, segmenter.get(), px_per_mm),
                        {"image": image, "model": segmenter.path}, segmented)
        if not step(segment, scan):
            continue
        located = {}
        if config.plate.enabled:
            found_plate = Stage("plate", lambda i, o: _find_plate(i, o, config.plate), {"image": image},
                                {"plate": folder / "plates" / f"{stem}.json"}, settings=config.plate)
            if not step(found_plate, scan):
                continue
            located = found_plate.outputs
        points = {}
        if detector is not None:
            found = Stage("branches", lambda i, o: _branches(i, o, detector.get(), px_per_mm),
                          {**segmented, "image": image, "model": detector.path},
                          {"branches": folder / "branches" / f"{stem}.csv"})
            if step(found, scan):
                points = found.outputs
        measured = {kind: folder / kind / f"{stem}.csv" for kind in (*TABLES[:3], "rejected")}
        measured["rsml"] = folder / "rsml" / f"{stem}.rsml"
        if regions.given():
            measured["regions"] = folder / "regions" / f"{stem}.csv"
        if config.report.enabled:
            measured["drawing"] = folder / "overlays" / "unlabelled" / f"{stem}.png"
        settings = {"architecture": config.architecture, "px_per_mm": px_per_mm, "regions": regions,
                    "report": config.report}
        measure = Stage("measure", lambda i, o: _measure(i, o, config, regions, px_per_mm),
                        {**segmented, "image": image, **points, **located}, measured, settings=_json(settings))
        if not step(measure, scan):
            continue
        row = {"scan": scan.name, "hours": hours[i], "aligned": aligned, **measured, "mask": segmented["mask"],
               **points}
        rows.append(row)
    result.frames = rows
    if rows:
        kinds = [kind for kind in TABLES if any(kind in row for row in rows)]
        result.tables = {kind: folder / f"{kind}.csv" for kind in kinds}
        inputs = {f"{kind}{k}": row[kind] for kind in kinds for k, row in enumerate(rows) if kind in row}
        settings = {"scans": [r["scan"] for r in rows], "hours": [r["hours"] for r in rows], "species": plate.species,
                    "aligned": [r["aligned"] for r in rows]}
        table = Stage("plate-tables", lambda i, o: _plate_table(i, o, plate, rows), inputs, result.tables,
                      settings=settings)
        result.count(run_stage(table, force=job.force))
        tracks = {f"tracks/{kind}": folder / "tracks" / f"{kind}.csv" for kind in TRACKS}
        found = {kind: result.tables[kind] for kind in ("traits", "roots", "branches") if kind in result.tables}
        last = [row for row in rows if row["aligned"]][-1:] or rows[-1:]
        found["rsml"] = last[0]["rsml"]
        timed = {"rsml": folder / "tracks" / f"{plate.name}.rsml"}
        follow = Stage("track", lambda i, o: _track(i, o, px_per_mm, last[0]["scan"], config.track), found,
                       {**tracks, **timed}, settings={"px_per_mm": px_per_mm, "track": config.track})
        result.count(run_stage(follow, force=job.force))
        result.tables.update(tracks)
        for row in rows:
            if "drawing" in row:
                row["overlay"] = folder / "overlays" / f"{Path(row['drawing']).name}"
                label = Stage("label", _label, {"drawing": row["drawing"], "mask": row["mask"],
                                                "plants": tracks["tracks/plants"]},
                              {"overlay": row["overlay"]})
                result.count(run_stage(label, force=job.force))
    return result


def _json(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with pydantic sections dumped, for hashing."""
    return {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in settings.items()}


def _plate_scale(plate: Plate, config: Config, folder: Path) -> float:
    """Pixels per mm for a plate: the config's, else the tags of its first readable scan (kept in
    ``scale.json`` by a stage, so that a rerun does not read the scan again)."""
    if config.px_per_mm is not None:
        return config.px_per_mm
    problems = []
    for scan in plate.scans:
        stage = Stage("scale", _scale, {"scan": scan}, {"scale": folder / "scale.json"})
        try:
            run_stage(stage)
        except RootscopeError as exc:
            problems.append(str(exc))
            continue
        return float(io.read_json(folder / "scale.json")["px_per_mm"])
    raise ConfigError(f"plate {plate.name}: no pixel scale ({problems[0]})")


def _scale(inputs: Mapping[str, Path], outputs: Mapping[str, Path]) -> None:
    scan = io.read_scan(inputs["scan"])
    io.write_json(outputs["scale"], {"px_per_mm": io.resolve_px_per_mm(scan, None), "from": scan.path.name})


# ---------------------------------------------------------------------------------- alignment
def _align_stage(plate: Plate, index: int, config: Config, record: Path) -> Stage:
    """``align`` of scan ``index`` against the reference scan (``align.reference`` = "first" or an index)."""
    n, reference = len(plate.scans), config.align.reference
    ref = 0 if reference == "first" else int(reference)
    if not -n <= ref < n:
        raise ConfigError(f"align.reference = {ref} but plate {plate.name} has {n} scans; use an index "
                          f"in 0..{n - 1} or \"first\".")
    return Stage("align", lambda i, o: _align_one(i, o, config),
                 {"scan": plate.scans[index], "reference": plate.scans[ref]}, {"transform": record},
                 settings=config.align)


def _series_stage(plate: Plate, config: Config, folder: Path) -> Stage:
    """``align`` of the whole series, each scan to the one before (``align.reference = "previous"``)."""
    inputs = {f"scan{i}": scan for i, scan in enumerate(plate.scans)}
    outputs = {scan.stem: folder / "transforms" / f"{scan.stem}.json" for scan in plate.scans}
    return Stage("align", lambda i, o: _align_series(i, o, config), inputs, outputs, settings=config.align)


#: Largest reference scan (pixels) whose gray is kept between the scans of its plate (4 bytes a pixel);
#: a larger one is read again for each scan, so that its gray does not stay in memory through the other stages.
CACHE_MAX_PX = 50_000_000


@lru_cache(maxsize=2)
def _read_cached(path: Path, mtime_ns: int) -> np.ndarray:
    return _gray(path)


def _gray(path: Path) -> np.ndarray:
    """The float gray of a scan that the aligner works on, converted band by band (:func:`align.float_gray`)."""
    from .align import float_gray

    return float_gray(io.read_scan(path, convert=False).pixels, str(path))


def _reference_gray(path: Path) -> np.ndarray:
    """The reference scan's gray, read once per worker process rather than once per scan of its plate
    (when it has at most :data:`CACHE_MAX_PX` pixels)."""
    path = Path(path)
    gray = _read_cached(path, path.stat().st_mtime_ns)
    if gray.size > CACHE_MAX_PX:
        _read_cached.cache_clear()
    return gray


def _align_one(inputs: Mapping[str, Path], outputs: Mapping[str, Path], config: Config) -> None:
    from .align import Registration, estimate_transform

    reference = _reference_gray(inputs["reference"])
    if Path(inputs["scan"]).resolve() == Path(inputs["reference"]).resolve():
        reg = Registration(np.eye(3), residual=0.0, score=1.0, ok=True, overlap=1.0, message="reference",
                           model=config.align.model)
    else:
        reg = estimate_transform(reference, _gray(inputs["scan"]), model=config.align.model,
                                 max_side=config.align.max_side)
    io.write_json(outputs["transform"], _transform_record(reg, Path(inputs["reference"]), reference))


def _align_series(inputs: Mapping[str, Path], outputs: Mapping[str, Path], config: Config) -> None:
    from .align import align_series

    paths = [Path(inputs[f"scan{i}"]) for i in range(len(inputs))]
    grays = [_gray(path) for path in paths]
    regs = align_series(grays, "previous", model=config.align.model, max_side=config.align.max_side)
    for path, reg in zip(paths, regs):
        io.write_json(outputs[path.stem], _transform_record(reg, paths[0], grays[0]))


def _transform_record(reg: Any, reference: Path, gray: np.ndarray) -> dict[str, Any]:
    return {**reg.to_dict(), "reference": reference.name, "shape": list(gray.shape[:2])}


def _warp(inputs: Mapping[str, Path], outputs: Mapping[str, Path], px_per_mm: float) -> None:
    from .align import warp_scan

    scan = io.read_scan(inputs["scan"], convert=False)  # the file's uint8 / uint16 (a memory map for a TIFF)
    record = io.read_json(inputs["transform"])
    aligned = warp_scan(scan.pixels, np.asarray(record["matrix"]), record["shape"], scan.bit_depth)
    io.write_image(outputs["aligned"], aligned, px_per_mm=px_per_mm)


def _find_plate(inputs: Mapping[str, Path], outputs: Mapping[str, Path], settings: Any) -> None:
    """The plate of the (aligned) scan, or the config's rectangle: ``plates/<scan>.json``
    (:meth:`rootscope.plate.PlateRegion.to_dict`)."""
    from .plate import find_plate, plate_from_rectangle

    scan = io.read_scan(inputs["image"], convert=False)
    h, w = scan.pixels.shape[:2]
    if settings.rect is not None:
        r = settings.rect
        region = plate_from_rectangle(r.x, r.y, r.width, r.height, (w, h), rim_px=settings.rim_px, corner_radius_px=0.0)
    else:
        region = find_plate(scan.pixels, shape=settings.shape)
    io.write_json(outputs["plate"], region.to_dict())


# ------------------------------------------------------------------------------- segmentation
@dataclass
class _LazyModel:
    """A model file, loaded on first use (an up-to-date plate never loads it)."""

    path: Path
    loader: Callable[[Path], Any]
    _model: Any = None

    def get(self) -> Any:
        if self._model is None:
            self._model = self.loader(self.path)
        return self._model


def _segmenter_loader(config: Config) -> _LazyModel:
    path = config.models.unet or config.models.pixel
    if path is None:
        raise ConfigError("no segmentation model: set models.pixel or models.unet in rootscope.toml "
                          "(train one with `rootscope pixel train` or `rootscope unet train`).")
    _check_model(path, "unet" if config.models.unet else "pixel")
    from .segment import load_segmenter

    return _LazyModel(Path(path), load_segmenter)


def _branch_loader(config: Config) -> _LazyModel | None:
    if config.models.branches is None:
        return None
    _check_model(config.models.branches, "branches")
    from .branches import load_branch_model

    return _LazyModel(Path(config.models.branches), load_branch_model)


def _check_model(path: Path, key: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: model file not found (models.{key} in rootscope.toml). Fix the path; "
                          "relative paths start at the config file.")


def _segment(inputs: Mapping[str, Path], outputs: Mapping[str, Path], segmenter: Any, px_per_mm: float) -> None:
    from .segment import segment_file

    io.write_image(outputs["mask"], segment_file(segmenter, inputs["image"]), px_per_mm=px_per_mm)
    io.write_json(outputs["classes"], {"classes": list(segmenter.classes), "model": Path(inputs["model"]).name})


def _branches(inputs: Mapping[str, Path], outputs: Mapping[str, Path], detector: Any, px_per_mm: float) -> None:
    """Branching points of the U-Net heat-map fused with the skeleton junctions of the root mask."""
    classes = io.read_json(inputs["classes"])["classes"]
    if "root" not in classes:
        raise ConfigError(f"{inputs['classes']}: the segmentation model has no 'root' class (classes: {classes}).")
    roots = io.read_labels(inputs["mask"]) == classes.index("root") + 1
    image = io.read_scan(inputs["image"], convert=False).pixels  # uint8 / uint16: converted tile by tile
    points = detector.detect(image, roots, fuse_junctions=True, px_per_mm=px_per_mm)
    table = pd.DataFrame({"image": Path(inputs["mask"]).stem, "x_px": points[:, 0], "y_px": points[:, 1],
                          "score": points[:, 2], "x_mm": points[:, 0] / px_per_mm, "y_mm": points[:, 1] / px_per_mm})
    io.write_table(outputs["branches"], table)


# -------------------------------------------------------------------------------- measurement
def region_areas(mask: np.ndarray, regions: Mapping[str, Any], names: Mapping[int, str],
                 px_per_mm: float) -> pd.DataFrame:
    """Projected area of every class inside every region.

    ``mask`` holds class indices (0 = background), ``names`` maps indices to class names, ``regions``
    maps region names to :class:`~rootscope.config.Rect` (px). Returns columns region, class, name,
    area_px and area_mm2 (mm^2).
    """
    rows = []
    for region, rect in regions.items():
        rr, cc = rect.slices()
        counts = np.bincount(mask[rr, cc].ravel(), minlength=max(names, default=0) + 1)
        rows += [{"region": region, "class": k, "name": name, "area_px": int(counts[k]),
                  "area_mm2": counts[k] / px_per_mm**2} for k, name in names.items()]
    return pd.DataFrame(rows, columns=["region", "class", "name", "area_px", "area_mm2"])


#: Colour (RGB) of the plate's measured area drawn on the overlays.
PLATE_COLOUR = (255, 200, 0)

#: Per-scan tables of the ``measure`` stage, gathered per plate and over the experiment.
TABLES = ("traits", "roots", "classes", "regions", "branches", "rejected")


def class_names(classes: list[str]) -> tuple[np.ndarray, dict[int, str]]:
    """Lookup that maps mask values 1..K to 0 (background) or themselves, and the names of the others."""
    lookup = np.arange(256, dtype=np.uint8)
    names = {}
    for k, name in enumerate(classes, start=1):
        if name == "background":
            lookup[k] = 0
        else:
            names[k] = name
    return lookup, names


def _measure(inputs: Mapping[str, Path], outputs: Mapping[str, Path], config: Config, regions: Any,
             px_per_mm: float) -> None:
    from . import architecture, rsml, traits
    from .plants import find_plants, outside_objects
    from .plate import PlateRegion

    classes = io.read_json(inputs["classes"])["classes"]
    lookup, names = class_names(classes)
    mask = lookup[io.read_labels(inputs["mask"])]
    by_name = {name: k for k, name in names.items()}
    stem = Path(inputs["mask"]).stem
    if "root" not in by_name:
        raise ConfigError(f"{inputs['model'] if 'model' in inputs else inputs['classes']}: the model has no "
                          f"'root' class (classes: {classes}); use a model trained with a class named root.")
    opts = config.architecture
    region = PlateRegion.from_dict(io.read_json(inputs["plate"])) if "plate" in inputs else None
    outside = None
    if region is not None and region.kind != "whole":
        inside = region.inner_mask(mask.shape)
        outside = outside_objects((mask == by_name["root"]) & ~inside, opts.min_plant_length_mm * px_per_mm,
                                  px_per_mm, image=stem)
        mask[~inside] = 0  # nothing on the bench, the rim or the lid is measured
        del inside
    points = pd.read_csv(inputs["branches"]) if "branches" in inputs else None
    arch, rejected = find_plants(
        mask, by_name, opts, px_per_mm,
        support=None if points is None else points[["y_px", "x_px"]].to_numpy(float),
        emerging=None if points is None or opts.branch_lateral_score is None
        else points[points.score >= opts.branch_lateral_score][["y_px", "x_px"]].to_numpy(float), name=stem)
    roots = mask == by_name["root"]
    io.write_table(outputs["rejected"], rejected if outside is None or outside.empty else
                   pd.concat([rejected, outside], ignore_index=True))
    io.write_table(outputs["traits"], traits.plant_table(arch, px_per_mm, image=stem, mask=roots))
    io.write_table(outputs["roots"], traits.root_table(arch, px_per_mm, image=stem))
    io.write_table(outputs["classes"], traits.class_table(mask, px_per_mm, image=stem, names=names))
    rsml.write_rsml(outputs["rsml"], architecture.to_scene(arch, name=stem, px_per_mm=px_per_mm))
    if "regions" in outputs:
        io.write_table(outputs["regions"], region_areas(mask, regions.given(), names, px_per_mm))
    if "drawing" in outputs:
        io.write_image(outputs["drawing"], _thumbnail(arch, inputs["image"], px_per_mm, config.report.thumbnail_px,
                                                      region))


def _thumbnail(arch: Any, image: Path, px_per_mm: float, side_px: int, region: Any = None) -> np.ndarray:
    """The architecture (roots by order, branching points, tips, seeds; no plant labels) and the plate's
    measured area (``region``, a :class:`~rootscope.plate.PlateRegion`) over the aligned scan, at most
    ``side_px`` on its longest side (uint8 RGB)."""
    import cv2

    from .report import overlay

    scan = io.read_scan(image, convert=False)  # overlay converts uint8 band by band; uint16 goes as float
    picture = overlay(arch, scan.pixels if scan.pixels.dtype == np.uint8 else io.to_float(scan.pixels)[0],
                      px_per_mm, labels=False)
    if region is not None and region.kind != "whole":
        line = max(2, round(max(picture.shape[:2]) / 500))
        cv2.polylines(picture, [np.rint(region.outline(inner=True) * 16).astype(np.int32)], True, PLATE_COLOUR,
                      line, cv2.LINE_AA, 4)
    factor = side_px / max(picture.shape[:2])
    if factor >= 1:
        return picture
    return cv2.resize(picture, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def _plate_table(inputs: Mapping[str, Path], outputs: Mapping[str, Path], plate: Plate,
                 rows: list[dict[str, Any]]) -> None:
    """Concatenate the per-scan tables of a plate, adding plate, species, scan, hours and aligned (False: the
    scan could not be aligned and was measured in its own frame) in front."""
    front = ["plate", "species", "scan", "hours", "aligned"]
    for kind, out in outputs.items():
        parts = [pd.read_csv(inputs[f"{kind}{k}"]).assign(plate=plate.name, species=plate.species,
                                                           scan=row["scan"], hours=row["hours"],
                                                           aligned=row["aligned"])
                 for k, row in enumerate(rows) if kind in row]
        table = pd.concat(parts, ignore_index=True)
        io.write_table(out, table[front + [c for c in table.columns if c not in front]])


# ----------------------------------------------------------------------------------- tracking
#: Tables of the ``track`` stage (:func:`rootscope.track.track_plate`), per plate under ``tracks/``.
TRACKS = ("plants", "laterals", "branch_points", "growth")


def _track(inputs: Mapping[str, Path], outputs: Mapping[str, Path], px_per_mm: float, last: str,
           gates: TrackSettings) -> None:
    """Plants, roots and branching points of a plate followed over its scans, and the 2D+t RSML of its
    ``last`` scan. The tables were measured on aligned scans (or, with alignment off, scans taken as
    they lie), so positions are already in the reference frame."""
    from .rsml import read_rsml, write_rsml
    from .track import timed_scene, track_plate

    def aligned(path: Path) -> pd.DataFrame:  # scans measured in their own frame are not followed
        table = pd.read_csv(path)
        return table[table.aligned.astype(bool)] if "aligned" in table else table

    points = aligned(inputs["branches"]) if "branches" in inputs else None
    tables = track_plate(aligned(inputs["traits"]), aligned(inputs["roots"]), px_per_mm, points=points,
                         plant_gate_mm=gates.plant_gate_mm, root_gate_mm=gates.root_gate_mm,
                         point_gate_mm=gates.point_gate_mm)
    for kind, table in tables.items():
        io.write_table(outputs[f"tracks/{kind}"], table)
    scene = timed_scene(read_rsml(inputs["rsml"]), tables["plants"], tables["laterals"], last, px_per_mm)
    write_rsml(outputs["rsml"], scene)


def _label(inputs: Mapping[str, Path], outputs: Mapping[str, Path]) -> None:
    """The scan's unlabelled overlay with "plant <id>" beside each seed, ``id`` the persistent plant id
    of ``tracks/plants.csv`` (seed positions there are in the aligned frame, the mask's; the overlay is
    that frame scaled down)."""
    from .report import label_plants

    picture = io.from_float(io.read_image(inputs["drawing"]))
    factor = picture.shape[1] / io.read_labels(inputs["mask"]).shape[1]
    plants = pd.read_csv(inputs["plants"])
    here = plants[plants.scan.map(lambda s: Path(s).stem) == Path(inputs["drawing"]).stem]
    io.write_image(outputs["overlay"], label_plants(picture, here[["x_ref_px", "y_ref_px"]].to_numpy(float) * factor,
                                                    [f"plant {p}" for p in here.plant]))


# --------------------------------------------------------------------------------- experiment
def run_experiment(
    root: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    progress: bool = True,
    processes: bool = True,
    echo: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run every plate of the experiment at ``root`` and gather the tables (see the module docstring).

    ``workers`` / ``scheduler`` default to the config's [batch] section (see :func:`rootscope.batch.run_tasks`);
    ``force`` reruns every stage. Bad scans and failed plates go to ``out/failures.csv``; the rest
    completes. The run holds ``out/.lock`` (:func:`rootscope.io.folder_lock`): a second run of the same
    experiment stops at once with an OutputError, and temporary files of a killed run are removed only
    then. ``echo`` gets notes such as the take-over of a killed run's lock (default: a warning). Scans
    and models inside ``out/`` are refused (OutputError): ``out/`` is rootscope's to fill.
    """
    experiment = discover(root)
    config = experiment.config
    _segmenter_loader(config), _branch_loader(config)  # a missing model stops here, not once per plate
    out = experiment.out
    models = [m for m in (config.models.pixel, config.models.unet, config.models.branches) if m is not None]
    inputs = [*(scan for plate in experiment.plates for scan in plate.scans), *models]
    with io.folder_lock(out, notify=echo), io.protect(inputs, folders=[out]):
        io.remove_temporaries(out)  # left by a killed run; no other run writes here while the lock is held
        return _run_locked(experiment, workers, scheduler, force, progress, processes)


def _run_locked(experiment: Experiment, workers: int | None, scheduler: str | None, force: bool, progress: bool,
                processes: bool) -> ExperimentResult:
    """:func:`run_experiment` once it holds the experiment's lock."""
    from .batch import run_tasks, write_failures
    from .track import with_plant_ids

    config, out = experiment.config, experiment.out
    jobs = {plate.name: PlateJob(plate, config, out, force) for plate in experiment.plates}
    batch = run_tasks(run_plate, jobs, workers=workers or config.batch.workers,
                      scheduler=scheduler or config.batch.scheduler, memory_limit=config.batch.memory_limit,
                      processes=processes, progress=progress, item_failures=lambda r: r.failures)
    failures = _discovery_failures(experiment) + batch.failures
    failures_csv = write_failures(out / "failures.csv", failures)
    results: dict[str, PlateResult] = batch.values
    written = {}
    for kind in [f"tracks/{k}" for k in TRACKS] + list(TABLES):
        parts = [pd.read_csv(r.tables[kind]) for r in results.values() if kind in r.tables]
        if parts:
            table = pd.concat(parts, ignore_index=True)
            if kind in ("traits", "roots") and "tracks/plants" in written:
                table = with_plant_ids(table, pd.read_csv(written["tracks/plants"]))
            written[kind] = io.write_table(out / f"{kind}.csv", table)
    if "traits" in written:
        io.write_table(out / "traits.parquet", pd.read_csv(written["traits"]))
    summary = batch.summary(failures_csv)
    if experiment.problems:
        summary += f"; {len(experiment.problems)} files left out at discovery"
    report = _report(experiment, results, written, failures_csv, summary, force) if config.report.enabled else None
    return ExperimentResult(results, summary, failures_csv, written, report, len(failures))


def _report(experiment: Experiment, results: dict[str, PlateResult], tables: dict[str, Path], failures_csv: Path,
            summary: str, force: bool) -> Path:
    """``out/report.html``, redone only when a table, the failures or an overlay changed."""
    from .report_html import write_report

    out = experiment.out
    plates = [p.name for p in experiment.plates]
    thumbnails = {name: [Path(row["overlay"]) for row in results[name].frames if "overlay" in row]
                  for name in plates if name in results}
    inputs = {**tables, "failures": failures_csv}
    inputs.update({f"{name}:{k}": path for name, paths in thumbnails.items() for k, path in enumerate(paths)})
    title = f"rootscope: {experiment.root.resolve().name}"
    stage = Stage("report", lambda i, o: write_report(out, title=title, summary=summary, plates=plates,
                                                      thumbnails=thumbnails, path=o["report"]),
                  inputs, {"report": out / "report.html"}, settings={"title": title, "plates": plates})
    run_stage(stage, force=force)
    return out / "report.html"


def _discovery_failures(experiment: Experiment) -> list[dict[str, str]]:
    return [{"task": p.plate, "item": p.path.name, "stage": "discover", "error": "InputError",
             "message": f"{p.path}: {p.message}"} for p in experiment.problems]
