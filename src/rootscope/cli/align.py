"""``rootscope align``: register the scans of one plate to a reference frame."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import typer

from . import app, err_console


class _ScanFrames(Sequence):
    """Scans read on demand (the last three kept): a whole series never sits in memory at once."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._cache: OrderedDict[int, object] = OrderedDict()

    def __len__(self) -> int:
        return len(self.paths)

    def scan(self, i: int):
        from .. import io

        if i not in self._cache:
            self._cache[i] = io.read_scan(self.paths[i])
            while len(self._cache) > 3:
                self._cache.popitem(last=False)
        self._cache.move_to_end(i)
        return self._cache[i]

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]
        return self.scan(i).pixels


def series_paths(items: list[Path]) -> list[Path]:
    """Files as given; a folder stands for its images in acquisition-time order."""
    from .. import io
    from ..errors import InputError

    paths: list[Path] = []
    for item in items:
        if item.is_dir():
            found = io.list_images(item)
            if not found:
                raise InputError(f"{item}: folder holds no PNG, JPEG or TIFF images.")
            paths.extend(io.sort_by_time(found))
        else:
            paths.append(item)
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise InputError(
                f"{seen[path.stem]} and {path} have the same name '{path.stem}'; the aligned images would "
                "overwrite each other. Align one plate at a time."
            )
        seen[path.stem] = path
    return paths


@app.command()
def align(
    images: list[Path] = typer.Argument(..., help="Scans of one plate (files, or a folder: all its images by time)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: <stem>.png per frame + transforms.json."),
    reference: str = typer.Option("first", "--reference", "-r",
                                  help="'first', 'previous' (chained, drift-checked against frame 0) or an index."),
    model: str = typer.Option("similarity", "--model", "-m",
                              help="translation | rigid | similarity | affine | homography."),
    max_side: int = typer.Option(1024, "--max-side", help="Longest side (px) of the coarse feature search."),
    strict: bool = typer.Option(False, "--strict", help="Exit with an error when any frame cannot be aligned."),
) -> None:
    """Align scans of one plate to a reference frame (writes aligned images at the scans' bit depth)."""
    from rich.progress import track

    from .. import io
    from ..align import MODELS, iter_series, warp
    from ..errors import AlignmentError, ConfigError

    if model not in MODELS:
        raise ConfigError(f"--model {model!r} is unknown; use one of {', '.join(MODELS)}.")
    if reference not in ("first", "previous"):
        try:
            int(reference)
        except ValueError:
            raise ConfigError(f"--reference {reference!r}: use 'first', 'previous' or a frame index.") from None
    paths = series_paths(images)
    outputs = [out / f"{p.stem}.png" for p in paths]
    frames = _ScanFrames(paths)
    ref_index = 0 if reference in ("first", "previous") else int(reference) % len(paths)
    records, failed = {}, []
    with io.protect(paths, outputs=[*outputs, out / "transforms.json"]):
        ref_shape = frames.scan(ref_index).pixels.shape
        steps = iter_series(frames, reference if reference in ("first", "previous") else int(reference),
                            model=model, max_side=max_side)
        for i, reg in track(steps, total=len(paths), description="aligning", console=err_console, transient=True):
            scan = frames.scan(i)
            records[scan.stem] = reg.to_dict()
            if not reg.ok:
                failed.append(scan.stem)
                err_console.print(f"[bold yellow]not aligned:[/] {scan.path}: {reg.message}", highlight=False)
                continue
            aligned = scan.pixels if i == ref_index else warp(scan.pixels, reg.matrix, ref_shape)
            io.write_image(outputs[i], aligned, bit_depth=scan.bit_depth, px_per_mm=scan.px_per_mm)
        io.write_json(out / "transforms.json", {"reference": paths[ref_index].stem, "model": model,
                                                "reference_mode": reference, "frames": records})
    typer.echo(f"aligned {len(paths) - len(failed)} of {len(paths)} frames to {paths[ref_index].name} -> {out}")
    if failed:
        message = (f"{len(failed)} frame(s) could not be aligned and were not written: {', '.join(failed)} "
                   f"(see {out / 'transforms.json'}; check they show the same plate)")
        if strict:
            raise AlignmentError(message)
        err_console.print(f"[bold yellow]warning:[/] {message}", highlight=False)
