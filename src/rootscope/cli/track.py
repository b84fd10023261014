"""``rootscope track``: RSML of one plate over time -> plants, laterals and branching points followed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from . import app


def read_matrices(path: Path, scans: list[Path]) -> dict[str, np.ndarray]:
    """The 3 x 3 matrix of each scan (by file stem) in a transforms.json of `rootscope align`.

    Raises InputError naming the file when it is not such a file, lacks a scan or holds a matrix that is
    not 3 x 3 finite numbers.
    """
    from .. import io
    from ..errors import InputError

    data = io.read_json(path)
    frames = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames, dict):
        raise InputError(f'{path}: not a transforms.json of `rootscope align` (expected {{"frames": {{stem: '
                         f'{{"matrix": 3 x 3}}}}}}, got {type(data).__name__}); pass the file that align wrote.')
    lost = [p.name for p in scans if p.stem not in frames]
    if lost:
        raise InputError(f"{path}: no matrix for {', '.join(lost)}; RSML files must be named like the "
                         "aligned scans (same stem).")
    matrices = {}
    for scan in scans:
        entry = frames[scan.stem]
        given = entry.get("matrix") if isinstance(entry, dict) else entry
        try:
            matrix = np.asarray(given, dtype=float)
        except (TypeError, ValueError):
            matrix = np.zeros(0)
        if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
            raise InputError(f"{path}: the matrix of {scan.stem} is not 3 x 3 finite numbers (got "
                             f"{str(given)[:80]}); write it as rootscope align does: [[a, b, c], [d, e, f], [g, h, i]].")
        matrices[scan.stem] = matrix
    return matrices


@app.command("track")
def track_command(
    files: list[Path] = typer.Argument(..., help="RSML files of one plate, one per scan, or a folder of them; "
                                        "or one 2D+t RSML (RootSystemTracker's: time per point)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: plants.csv, laterals.csv, branch_points.csv, growth.csv."),
    px_per_mm: float = typer.Option(None, "--px-per-mm", help="Pixel scale; default: the px_per_mm that rootscope writes in RSML metadata."),
    plate: str = typer.Option("", "--plate", help="Plate name for the tables' plate column."),
    transforms: Path = typer.Option(None, "--transforms", help="transforms.json of `rootscope align` when the RSML are in each scan's own pixels (matrices by file stem)."),
    plant_gate_mm: float = typer.Option(None, "--plant-gate-mm", help="How far (mm) a plant's seed may be from where it was (default 4)."),
    root_gate_mm: float = typer.Option(None, "--root-gate-mm", help="How far (mm) a lateral's base may be from where it was (default 1.5)."),
    point_gate_mm: float = typer.Option(None, "--point-gate-mm", help="How far (mm) a branching point may be from where it was (default 1)."),
) -> None:
    """Follow plants, laterals and branching points over the scans of one plate.

    Scans are ordered by the capture time in their file names (e.g. plateA_2025-10-14_03h00.rsml);
    one 2D+t RSML (observation hours in its metadata, time per point) is cut into one scene per
    observation (obs01, obs02, ...). Growth rates are in mm/h and emergence times in hours since the
    first scan. Tables and the report of `rootscope run` hold the same tracks for every plate of an
    experiment.
    """
    from .. import io, rsml
    from ..errors import InputError
    from ..track import track_timed_scene

    paths = sorted(p for item in files for p in ([item] if item.is_file() else Path(item).glob("*.rsml")))
    if not paths:
        raise InputError(f"{', '.join(map(str, files))}: no RSML files found; pass the .rsml files of one plate.")
    gates = {"plant_gate_mm": plant_gate_mm, "root_gate_mm": root_gate_mm, "point_gate_mm": point_gate_mm}
    gates = {k: v for k, v in gates.items() if v is not None}
    timed = rsml.read_rsml(paths[0]) if len(paths) == 1 else None
    if timed is not None and len(timed.metadata.observation_hours):  # one 2D+t file (RootSystemTracker's)
        if transforms is not None:
            raise InputError(f"{transforms}: a 2D+t RSML is in one frame already; drop --transforms.")
        scale = px_per_mm if px_per_mm is not None else timed.metadata.extra.get("px_per_mm")
        if scale is None:
            raise InputError(f"{paths[0]}: no px_per_mm in the RSML metadata; pass --px-per-mm.")
        tables, scans = track_timed_scene(timed, float(scale), plate=plate, **gates), len(timed.metadata.observation_hours)
    else:
        tables, scans = _track_files(paths, px_per_mm, plate, transforms, gates, timed), len(paths)
    with io.protect([*paths, *([transforms] if transforms else [])], outputs=[out / f"{n}.csv" for n in tables]):
        for name, table in tables.items():
            io.write_table(out / f"{name}.csv", table)
    typer.echo(f"{scans} scans: {tables['plants'].plant.nunique()} plants, "
               f"{len(tables['laterals'].drop_duplicates(['plant', 'lateral']))} laterals, "
               f"{tables['branch_points'].point.nunique()} branching points followed -> {out}")


def _track_files(paths: list[Path], px_per_mm: float | None, plate: str, transforms: Path | None,
                 gates: dict[str, float], first: Any = None) -> dict:
    """The tables of :func:`rootscope.track.track_scenes` for one RSML file per scan, in capture-time order
    (``first``: the scene of a single file, already read)."""
    from .. import io, rsml
    from ..errors import InputError
    from ..track import track_scenes

    times = [io.parse_time(p.stem) for p in paths]
    if any(t is None for t in times) and not all(t is None for t in times):
        missing = next(p for p, t in zip(paths, times) if t is None)
        raise InputError(f"{missing}: no capture time in the file name, unlike the others; name it like "
                         "plateA_2025-10-14_03h00.rsml.")
    if all(t is not None for t in times):
        order = sorted(range(len(paths)), key=lambda k: times[k])
        paths, times = [paths[k] for k in order], [times[k] for k in order]
        hours = [(t - times[0]).total_seconds() / 3600 for t in times]
    else:
        typer.echo("warning: no capture times in the file names: scans in name order, rates left empty", err=True)
        hours = [float("nan")] * len(paths)
    scenes = [first] if first is not None else [rsml.read_rsml(p) for p in paths]
    scale = px_per_mm if px_per_mm is not None else scenes[0].metadata.extra.get("px_per_mm")
    if scale is None:
        raise InputError(f"{paths[0]}: no px_per_mm in the RSML metadata; pass --px-per-mm (e.g. 600 dpi = 23.62).")
    matrices = None if transforms is None else read_matrices(transforms, paths)
    return track_scenes(scenes, float(scale), names=[p.stem for p in paths], hours=hours, matrices=matrices,
                        plate=plate, **gates)
