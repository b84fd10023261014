"""``rootscope segment``: class masks (and probabilities) with any rootscope model."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

#: Names of what this command writes; files named so are left out when a folder is segmented.
OUTPUT_PATTERNS = ("*_mask.png", "*_prob.tif")


@app.command()
def segment(
    images: list[Path] = typer.Argument(..., help="Images or folders of images."),
    model: Path = typer.Option(..., "--model", help="Pixel-classifier or U-Net model file."),
    out: Path = typer.Option(..., "-o", "--output", help="Output folder."),
    probabilities: bool = typer.Option(False, "--probabilities", help="Also write <stem>_prob.tif (K x H x W float32, tile by tile)."),
) -> None:
    """Write OUTDIR/<stem>_mask.png (uint8, 1 = first class, ...) and <stem>_mask.json (the class names,
    which `rootscope analyze` reads) for each image.

    Files in a folder that are named like these outputs (*_mask.png, *_prob.tif) are not segmented, so
    that OUTDIR may be the images' own folder and a rerun there redoes the masks rather than masking
    the masks. A mask that would replace one of the images given stops the command before any work.
    """
    from rich.progress import track

    from .. import io
    from ..segment import load_segmenter, segment_file

    paths = io.expand_inputs(images, skip=OUTPUT_PATTERNS)
    ends = ("_mask.png", "_mask.json", *(("_prob.tif",) if probabilities else ()))
    with io.protect([*paths, model], outputs=[out / f"{p.stem}{end}" for p in paths for end in ends]):
        segmenter = load_segmenter(model)
        for path in track(paths, description="segmenting"):
            proba = out / f"{path.stem}_prob.tif" if probabilities else None
            written = io.write_image(out / f"{path.stem}_mask.png", segment_file(segmenter, path, proba))
            io.write_json(io.mask_sidecar(written), {"classes": list(segmenter.classes), "model": model.name})
    typer.echo(f"{len(paths)} masks ({', '.join(f'{i + 1} = {c}' for i, c in enumerate(segmenter.classes))}) -> {out}")
