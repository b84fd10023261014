"""``rootscope analyze``: masks -> plants, roots and traits in mm (+ RSML and overlays)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from . import app

#: Tables of one run: the plant table is OUT itself, the others go beside it as OUT_<name>.
TABLES = ("plants", "roots", "depth", "classes")


def table_path(out: Path, key: str, suffix: str) -> Path:
    """Where table ``key`` goes: ``traits.csv`` -> ``traits.parquet``, ``traits_roots.csv``, ..."""
    stem = out.with_suffix("")
    return (stem if key == "plants" else stem.with_name(f"{stem.name}_{key}")).with_suffix(suffix)


def resolve_classes(classes: list[str] | None, root_class: int | None, seed_class: int | None,
                    path: Path) -> tuple[np.ndarray | None, int, int | None, dict[int, str] | None]:
    """How to read a mask: a lookup that sends its background class to 0 (None: none needed), the root
    and seed values and the class names.

    ``classes`` are the names beside the mask (value k = ``classes[k - 1]``); without them the rootscope
    convention holds (0 background, 1 root, 2 seed, 3 shoot, or a 0/255 root mask). A ``root_class`` or
    ``seed_class`` given wins (seed 0: none). Raises InputError naming ``path`` when no class is root.
    """
    from ..errors import InputError
    from ..pipeline import class_names

    if classes is None:
        return None, root_class or 1, 2 if seed_class is None else seed_class or None, None
    lookup, names = class_names(classes)
    by_name = {name: k for k, name in names.items()}
    root = root_class or by_name.get("root")
    if root is None:
        raise InputError(f"{path}: no class is named root ({', '.join(classes)}); pass --root-class K (the mask "
                         "value of roots).")
    return lookup, root, by_name.get("seed") if seed_class is None else seed_class or None, names


def check_values(mask: np.ndarray, classes: list[str] | None, root: int, seed: int | None, path: Path) -> None:
    """Raise InputError naming ``path`` when the mask holds a value that no class names."""
    from .. import io
    from ..errors import InputError
    from ..traits import DEFAULT_CLASS_NAMES

    values = set(np.unique(mask).tolist())
    if classes is not None:
        unnamed = sorted(v for v in values if v > len(classes))
        known = f"{len(classes)} classes: {', '.join(classes)}"
    else:
        unnamed = [] if values <= {0, 255} else sorted(values - {0, root, seed, *DEFAULT_CLASS_NAMES})
        known = "without class names: 0 background, 1 root, 2 seed, 3 shoot"
    if unnamed:
        raise InputError(f"{path}: holds mask value(s) {unnamed}, which no class names ({known}). Fix the mask, "
                         f"or name its classes in {io.mask_sidecar(path).name} beside it "
                         '({"classes": [names of values 1, 2, ...]}), as `rootscope segment` does.')


def check_not_background(roots: np.ndarray, root: int, path: Path) -> None:
    """Raise InputError naming ``path`` when the root pixels cover most of the mask and touch its border,
    as background does (a mask whose classes are unknown, read with the wrong root value)."""
    from .. import io
    from ..errors import InputError

    border = np.concatenate([roots[0], roots[-1], roots[:, 0], roots[:, -1]])
    if roots.mean() > 0.5 and border.any():
        raise InputError(f"{path}: the root class (value {root}) covers {roots.mean():.0%} of the mask and touches "
                         "its border: it is background, not roots. Masks of `rootscope segment` hold 1 = the "
                         f"model's first class and name the classes in {io.mask_sidecar(path).name} beside them: "
                         "keep that file with the mask, or pass --root-class K.")


@app.command()
def analyze(
    masks: list[Path] = typer.Argument(..., help="Mask images (class indices) or folders of them."),
    out: Path = typer.Option(..., "-o", "--output", help="Plant table (.csv or .parquet); roots, depth and class tables go beside it."),
    px_per_mm: float = typer.Option(None, "--px-per-mm", help="Pixel scale. Required unless every mask file stores its DPI."),
    rsml_dir: Path = typer.Option(None, "--rsml", help="Write RSML_DIR/<stem>.rsml per image."),
    overlay_dir: Path = typer.Option(None, "--overlay", help="Write DIR/<stem>_overlay.png per image."),
    root_class: int = typer.Option(None, "--root-class", help="Mask value of roots (default: the class named root in "
                                   "the mask's <stem>.json, as `rootscope segment` writes it; 1 without one)."),
    seed_class: int = typer.Option(None, "--seed-class", help="Mask value of seeds, one plant per seed (default: the "
                                   "class named seed; 2 without class names); 0: none, plants start at the top of each root system."),
    bridge_px: int = typer.Option(0, "--bridge-px", help="Join root pieces separated by gaps up to this many pixels."),
    overlap_ratio: float = typer.Option(1.4, "--overlap-ratio", help="Count again a stretch this many times as wide as the rest of its root (two roots side by side; 0: never)."),
) -> None:
    """Measure root architecture on segmentation masks.

    Writes OUT (one row per image and plant: primary_length_mm, total_length_mm, lateral_count,
    lateral_density_per_cm, mean_lateral_length_mm, ...) and, beside it, OUT_roots, OUT_depth and
    OUT_classes tables, each as CSV and Parquet. Lengths are in mm: a scale is never assumed. Class
    names come from the JSON beside each mask (`rootscope segment` writes <stem>_mask.json); a mask
    without one whose root class covers most of the image is refused (it is background).
    """
    import pandas as pd
    from rich.progress import track

    from .. import io, rsml
    from ..architecture import find_architecture, split_classes, to_scene
    from ..report import overlay
    from ..traits import measure

    paths = io.expand_inputs(masks)
    outputs = [table_path(out, key, suffix) for key in TABLES for suffix in (".csv", ".parquet")]
    outputs += [rsml_dir / f"{p.stem}.rsml" for p in paths] if rsml_dir is not None else []
    outputs += [overlay_dir / f"{p.stem}_overlay.png" for p in paths] if overlay_dir is not None else []
    # the scale given wins; otherwise each file must carry its DPI (checked before any work is done)
    scales = {p: io.resolve_px_per_mm(io.Scan(p, None, 8, None if px_per_mm else io.header_px_per_mm(p)), px_per_mm)
              for p in paths}
    tables: dict[str, list[pd.DataFrame]] = {}
    with io.protect([*paths, *map(io.mask_sidecar, paths)], outputs=outputs):
        for path in track(paths, description="analysing"):
            mask, classes = io.read_labels(path), io.read_mask_classes(path)
            lookup, root_value, seed_value, names = resolve_classes(classes, root_class, seed_class, path)
            classified = mask if lookup is None else lookup[mask]
            root, seed = split_classes(classified, root_value, seed_value, name=str(path))  # refuses grey images
            check_values(mask, classes, root_value, seed_value, path)
            if classes is None:
                check_not_background(root, root_value, path)
            arch = find_architecture(root, seed_mask=seed, bridge_px=bridge_px, overlap_ratio=overlap_ratio or None,
                                     name=str(path))
            for note in arch.warnings:
                typer.echo(f"warning: {note}", err=True)
            for key, table in measure(arch, scales[path], path.stem, classified, names, root_class=root_value).items():
                tables.setdefault(key, []).append(table)
            if rsml_dir is not None:
                rsml.write_rsml(rsml_dir / f"{path.stem}.rsml", to_scene(arch, name=path.stem, px_per_mm=scales[path]))
            if overlay_dir is not None:
                io.write_image(overlay_dir / f"{path.stem}_overlay.png", overlay(arch, classified, scales[path]))
        for key, parts in tables.items():
            table = pd.concat(parts, ignore_index=True)
            for suffix in (".csv", ".parquet"):
                io.write_table(table_path(out, key, suffix), table)
    plants = pd.concat(tables["plants"], ignore_index=True)
    typer.echo(f"{len(paths)} images, {int((plants.plant > 0).sum())} plants -> {out.with_suffix('.csv')} (+ .parquet, _roots, _depth, _classes)")
