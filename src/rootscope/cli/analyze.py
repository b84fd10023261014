"""``rootscope analyze``: masks -> plants, roots and traits in mm (+ RSML and overlays)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def analyze(
    masks: list[Path] = typer.Argument(..., help="Mask images (class indices) or folders of them."),
    out: Path = typer.Option(..., "-o", "--output", help="Plant table (.csv or .parquet); roots, depth and class tables go beside it."),
    px_per_mm: float = typer.Option(None, "--px-per-mm", help="Pixel scale. Required unless every mask file stores its DPI."),
    rsml_dir: Path = typer.Option(None, "--rsml", help="Write RSML_DIR/<stem>.rsml per image."),
    overlay_dir: Path = typer.Option(None, "--overlay", help="Write DIR/<stem>_overlay.png per image."),
    root_class: int = typer.Option(1, "--root-class", help="Class index of roots in the masks."),
    seed_class: int = typer.Option(2, "--seed-class", help="Class index of seeds (one plant per seed); 0: none, plants start at the top of each root system."),
    bridge_px: int = typer.Option(0, "--bridge-px", help="Join root pieces separated by gaps up to this many pixels."),
    overlap_ratio: float = typer.Option(1.4, "--overlap-ratio", help="Count again a stretch this many times as wide as the rest of its root (two roots side by side; 0: never)."),
) -> None:
    """Measure root architecture on segmentation masks.

    Writes OUT (one row per image and plant: primary_length_mm, total_length_mm, lateral_count,
    lateral_density_per_cm, mean_lateral_length_mm, ...) and, beside it, OUT_roots, OUT_depth and
    OUT_classes tables, each as CSV and Parquet. Lengths are in mm: a scale is never assumed.
    """
    import pandas as pd
    from rich.progress import track

    from .. import io, rsml
    from ..architecture import find_architecture, split_classes, to_scene
    from ..report import overlay
    from ..traits import measure

    paths = io.expand_inputs(masks)
    for p in paths:
        io.check_not_input(out, [p])
    # the scale given wins; otherwise each file must carry its DPI (checked before any work is done)
    scales = {p: io.resolve_px_per_mm(io.read_scan(p) if px_per_mm is None else io.Scan(p, None, 8), px_per_mm) for p in paths}
    tables: dict[str, list[pd.DataFrame]] = {}
    for path in track(paths, description="analysing"):
        mask = io.read_labels(path)
        root, seed = split_classes(mask, root_class, seed_class or None, name=str(path))
        arch = find_architecture(root, seed_mask=seed, bridge_px=bridge_px, overlap_ratio=overlap_ratio or None, name=str(path))
        for note in arch.warnings:
            typer.echo(f"warning: {note}", err=True)
        for key, table in measure(arch, scales[path], path.stem, mask, root_class=root_class).items():
            tables.setdefault(key, []).append(table)
        if rsml_dir is not None:
            rsml.write_rsml(rsml_dir / f"{path.stem}.rsml", to_scene(arch, name=path.stem, px_per_mm=scales[path]))
        if overlay_dir is not None:
            io.write_image(overlay_dir / f"{path.stem}_overlay.png", overlay(arch, mask, scales[path]))
    stem = out.with_suffix("")
    for key, parts in tables.items():
        table = pd.concat(parts, ignore_index=True)
        base = out.with_suffix("") if key == "plants" else stem.with_name(f"{stem.name}_{key}")
        for suffix in (".csv", ".parquet"):
            io.write_table(base.with_suffix(suffix), table)
    plants = pd.concat(tables["plants"], ignore_index=True)
    typer.echo(f"{len(paths)} images, {int((plants.plant > 0).sum())} plants -> {out.with_suffix('.csv')} (+ .parquet, _roots, _depth, _classes)")
