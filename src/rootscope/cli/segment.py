"""``rootscope segment``: class masks (and probabilities) with any rootscope model."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def segment(
    images: list[Path] = typer.Argument(..., help="Images or folders of images."),
    model: Path = typer.Option(..., "--model", help="Pixel-classifier or U-Net model file."),
    out: Path = typer.Option(..., "-o", "--output", help="Output folder."),
    probabilities: bool = typer.Option(False, "--probabilities", help="Also write <stem>_prob.tif (K x H x W float32)."),
) -> None:
    """Write OUTDIR/<stem>_mask.png (uint8, 1 = first class, ...) for each image."""
    import tifffile
    from rich.progress import track

    from .. import io
    from ..segment import load_segmenter, segment_image

    paths = io.expand_inputs(images)
    segmenter = load_segmenter(model)
    for path in track(paths, description="segmenting"):
        mask, proba = segment_image(segmenter, io.read_image(path))
        io.write_image(out / f"{path.stem}_mask.png", mask)
        if probabilities:
            with io.atomic_path(out / f"{path.stem}_prob.tif") as tmp:
                tifffile.imwrite(tmp, proba.astype("float32"), photometric="minisblack",
                                 metadata={"axes": "CYX", "classes": segmenter.classes})
    typer.echo(f"{len(paths)} masks ({', '.join(f'{i + 1} = {c}' for i, c in enumerate(segmenter.classes))}) -> {out}")

