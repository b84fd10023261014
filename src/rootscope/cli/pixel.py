"""``rootscope pixel train``: a pixel classifier from scribble label images."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

pixel_app = typer.Typer(help="Pixel classification (ilastik-style filter bank + Random Forest).", no_args_is_help=True)
app.add_typer(pixel_app, name="pixel")


@pixel_app.command("train")
def train(
    image_dir: Path = typer.Argument(..., help="Folder of training images."),
    labels: Path = typer.Option(..., "--labels", help="Folder of label images paired by file stem (0 = unlabelled, k = k-th class)."),
    out: Path = typer.Option(..., "-o", "--output", help="Model file to write."),
    classes: str = typer.Option("root,background", help="Class names in label order, comma-separated."),
    engine: str = typer.Option("forest", help="forest (Random Forest) or lightgbm."),
    color: str = typer.Option("gray", help="Colour space of the features: gray, rgb, lab or hsv."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Train a pixel classifier from scribbles; label value k is the k-th name in --classes."""
    from .. import io
    from ..errors import InputError
    from ..features import FeatureSettings
    from ..pixel import PixelClassifier

    names = [c.strip() for c in classes.split(",") if c.strip()]
    image_paths = io.list_images(image_dir)
    if not image_paths:
        raise InputError(f"{image_dir}: folder holds no PNG, JPEG or TIFF images.")
    label_files = {p.stem: p for p in io.list_images(labels)}
    missing = [p for p in image_paths if p.stem not in label_files]
    if missing:
        raise InputError(f"{missing[0]}: no label image with stem '{missing[0].stem}' in {labels}; add one or move the image out.")
    label_paths = [label_files[p.stem] for p in image_paths]
    with io.protect([*image_paths, *label_paths], outputs=[out]):
        images = [io.read_scan(p, convert=False).pixels for p in image_paths]  # converted tile by tile
        label_images = [io.read_labels(p) for p in label_paths]
        model = PixelClassifier(features=FeatureSettings(color=color), engine=engine, seed=seed)
        model.fit(images, label_images, names, sources=image_paths, label_sources=label_paths)
        model.save(out)
    counts = ", ".join(f"{k} {v}" for k, v in model.training["pixels_per_class"].items())
    typer.echo(f"trained on {len(images)} images ({counts} px) in {model.training['seconds']:.1f} s -> {out}")
