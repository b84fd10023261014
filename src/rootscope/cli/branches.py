"""``rootscope branches train|detect``: learn branching points from point annotations, find them in images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from . import app

branches_app = typer.Typer(help="Branching points (lateral root bases): train a U-Net heat-map, detect points.",
                           no_args_is_help=True)
app.add_typer(branches_app, name="branches")


def _root_pixels(labels: Any, classes: list[str] | None) -> Any:
    """Root pixels of a mask: the class named root when the mask's classes are known, else value 1 of a
    class-index mask, or every non-zero pixel of a binary one."""
    if classes is not None and "root" in classes:
        return labels == classes.index("root") + 1
    return labels == 1 if 1 < labels.max() < 255 else labels > 0


def _set_threads(threads: int) -> None:
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


@branches_app.command("train")
def train_cmd(
    image_dir: Path = typer.Argument(..., help="Folder of training images (PNG, JPEG, TIFF)."),
    points: Path = typer.Option(..., "--points", help="Folder of <stem>.csv (columns x,y) or <stem>.rsml files."),
    out: Path = typer.Option(..., "-o", "--out", help="Model file to write, e.g. branches.pt."),
    masks: Path | None = typer.Option(None, "--masks", help="Root masks (<stem>.png) for the root-mask output; "
                                      "default: drawn from RSML points, none for CSV."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Stop cleanly after this many minutes."),
    epochs: int = typer.Option(200, "--epochs", help="Maximum number of epochs."),
    scale: float = typer.Option(0.5, "--scale", help="Work resolution relative to the images (0.5 = half size)."),
    px_per_mm: float | None = typer.Option(None, "--px-per-mm", help="Scale of the training images (px/mm), "
                                           "stored so that images of another scale are resized at detection."),
    sigma: float = typer.Option(2.0, "--sigma", help="Heat-map Gaussian sigma in work pixels."),
    root_width: float = typer.Option(5.0, "--root-width", help="Root width (px) when drawing masks from RSML."),
    mask_input: bool = typer.Option(False, "--mask-input", help="Feed the root mask as an extra input channel "
                                    "(then `detect` needs --masks too)."),
    tile: int = typer.Option(64, "--tile", help="Training tile side in work pixels (multiple of 2^depth)."),
    depth: int = typer.Option(3, "--depth", help="Down-sampling levels of the U-Net."),
    width: int = typer.Option(8, "--width", help="Channels of the first level."),
    batch: int = typer.Option(16, "--batch", help="Tiles per step."),
    tiles_per_epoch: int = typer.Option(256, "--tiles-per-epoch", help="Tiles seen per epoch."),
    seed: int = typer.Option(0, "--seed", help="Random seed (tiles, augmentation, weights, split)."),
    device: str = typer.Option("auto", "--device", help="auto (cuda, mps, cpu), cpu, cuda or mps."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for PyTorch (0 = its default; 1 is much "
                                "faster on a machine busy with other jobs)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from <MODEL>.last.pt when it exists."),
) -> None:
    """Train a branching-point U-Net; writes MODEL (best), MODEL.last.pt and MODEL.metrics.csv."""
    from rich.console import Console

    from .. import branches as br
    from .. import io
    from ..unet.train import last_path, metrics_path

    console = Console()
    settings = br.BranchSettings(scale=scale, sigma=sigma, mask_input=mask_input,
                                 work_px_per_mm=None if px_per_mm is None else px_per_mm * scale)
    samples, settings, skipped = br.load_point_set(image_dir, points, mask_dir=masks, settings=settings,
                                                   root_width_px=root_width)
    console.print(f"{len(samples)} training images"
                  + (f"; {len(skipped)} without points skipped" if skipped else "")
                  + ("" if settings.mask_head else "; no masks: no root-mask output (no fusion at detection)"))
    config = br.default_config(time_limit, epochs=epochs, tile=tile, depth=depth, width=width, batch=batch,
                               tiles_per_epoch=tiles_per_epoch, val_tiles=min(128, tiles_per_epoch),
                               patience=epochs, seed=seed, device=device,
                               threads=threads or None)

    def report(row: dict[str, Any]) -> None:
        console.print(f"epoch {row['epoch']:3d}  {row['train_s'] / 60:5.1f} min  loss {row['train_loss']:.3f}/"
                      f"{row['val_loss']:.3f}  F1 {row['f1']:.3f} (threshold {row['threshold']:.2f})  "
                      f"{row['tiles_per_s']:.1f} tiles/s" + ("  [green]best[/]" if row["best"] else ""),
                      highlight=False)

    meta = {"training_data": {"image_dir": str(image_dir), "points": str(points), "masks": str(masks or ""),
                              "images": len(samples), "skipped": skipped}}
    inputs = [*io.list_images(image_dir), *sorted(points.iterdir()), *(io.list_images(masks) if masks else [])]
    with io.protect(inputs, outputs=[out, last_path(out), metrics_path(out)]):
        result = br.train_branches(samples, out, config, settings=settings, meta=meta, resume=resume, report=report)
    console.print(f"stopped: {result.stopped}; best epoch {result.best.get('epoch')} "
                  f"(validation F1 {result.best.get('f1', float('nan')):.3f}) -> {result.best_path}")


@branches_app.command("detect")
def detect_cmd(
    images: list[Path] = typer.Argument(..., help="Images or folders of images."),
    model: Path | None = typer.Option(None, "--model", help="Model file from `rootscope branches train` (default: "
                                      "of the image-only models shipped, trained on synthetic plates at 14.7, 11 and "
                                      "7.35 px/mm, the one nearest the image's px/mm)."),
    out: Path = typer.Option(..., "-o", "--out", help="Table to write (.csv or .parquet): image,x,y,score."),
    threshold: float | None = typer.Option(None, "--threshold", help="Score threshold: the heat-map peak's, or "
                                           "the re-scoring trees' probability when the model has them (default: "
                                           "the one that gave the best validation F1)."),
    tta: int | None = typer.Option(None, "--tta", help="Test-time augmentation: views averaged, 1 (none), 4 (flips) "
                                   "or 8 (flips and rotations); default: the model's, tuned with its threshold."),
    fuse: bool = typer.Option(False, "--fuse", help="Fuse with skeleton junctions of the root mask."),
    masks: Path | None = typer.Option(None, "--masks", help="Folder of root masks (<stem>.png) for --mask-input "
                                      "models or --fuse (default for --fuse: the model's own mask output)."),
    px_per_mm: float | None = typer.Option(None, "--px-per-mm", help="Scale of the images (px/mm; default: "
                                           "their DPI tags). Images are resized to the model's training scale."),
    device: str = typer.Option("auto", "--device", help="auto (cuda, mps, cpu), cpu, cuda or mps."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for PyTorch (0 = its default)."),
) -> None:
    """Find branching points; writes one row per point (full-size pixel x, y and the score)."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import track

    from .. import branches as br
    from .. import io
    from ..errors import InputError, ShapeMismatchError
    from ..unet.data import find_partner

    _set_threads(threads)
    paths = io.expand_inputs(images)
    partners = {path: find_partner(masks, path.stem) for path in paths} if masks is not None else {}
    lost = next((path for path, partner in partners.items() if partner is None), None)
    if lost is not None:
        raise InputError(f"{lost}: no mask {masks}/{lost.stem}.png; give one mask per image.")
    loaded: dict[Path, br.BranchDetector] = {}

    def detector_for(scale: float | None) -> br.BranchDetector:
        """The given model, else the shipped one for the image's scale (both loaded once)."""
        path = model or (br.shipped_model_for(scale) if scale else br.DEFAULT_MODEL)
        if path not in loaded:
            loaded[path] = br.load_branch_model(path, device=device, tta=tta)
        return loaded[path]

    tables = []
    with io.protect([*paths, *partners.values(), *([model] if model else [])], outputs=[out]):
        for path in track(paths, description="detecting", console=Console(stderr=True)):
            scan = io.read_scan(path, convert=False)  # uint8 / uint16: the detector converts tile by tile
            mask = None
            if path in partners:
                mask = _root_pixels(io.read_labels(partners[path]), io.read_mask_classes(partners[path]))
                if mask.shape != scan.pixels.shape[:2]:
                    raise ShapeMismatchError(
                        f"{partners[path]} is {mask.shape[1]} x {mask.shape[0]} px but {path} is "
                        f"{scan.pixels.shape[1]} x {scan.pixels.shape[0]}; give each image's mask at its size.")
            scale = px_per_mm or scan.px_per_mm
            points = detector_for(scale).detect(scan.pixels, mask, threshold=threshold, fuse_junctions=fuse,
                                                px_per_mm=scale)
            tables.append(pd.DataFrame({"image": path.name, "x": points[:, 0], "y": points[:, 1],
                                        "score": points[:, 2]}))
        table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["image", "x", "y", "score"])
        io.write_table(out, table.round({"x": 2, "y": 2, "score": 4}))
    Console().print(f"{len(table)} branching points in {len(paths)} images -> {out}")
