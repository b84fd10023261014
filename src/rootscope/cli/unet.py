"""``rootscope unet train``: learn image -> mask from dense masks or sparse labels."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from . import app

unet_app = typer.Typer(help="U-Net segmentation: train a network (predict with `rootscope segment`).",
                       no_args_is_help=True)
app.add_typer(unet_app, name="unet")


@unet_app.command("train")
def train_cmd(
    image_dir: Path = typer.Argument(..., help="Folder of training images (PNG, JPEG, TIFF)."),
    masks: Path | None = typer.Option(None, "--masks", help="Folder of dense masks, same file names (0..K-1)."),
    labels: Path | None = typer.Option(None, "--labels", help="Folder of sparse label images (0 = unlabelled, 1..K)."),
    out: Path = typer.Option(..., "-o", "--out", help="Model file to write (best checkpoint), e.g. root_unet.pt."),
    classes: list[str] | None = typer.Option(None, "--classes", help="Class names in value order (repeat or comma-separate); default background, root, seed, shoot."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum number of epochs (default 40; no limit "
                                      "with --time-limit)."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Stop cleanly after this many minutes of "
                                            "training (the learning-rate schedule is planned over them)."),
    tile: int = typer.Option(128, "--tile", help="Training tile side in pixels (multiple of 2^depth)."),
    batch: int = typer.Option(8, "--batch", help="Tiles per step."),
    tiles_per_epoch: int = typer.Option(64, "--tiles-per-epoch", help="Tiles seen per epoch."),
    depth: int = typer.Option(4, "--depth", help="Down-sampling levels of the U-Net."),
    width: int = typer.Option(8, "--width", help="Channels of the first level (doubled per level)."),
    norm: str = typer.Option("batch", "--norm", help="batch or group normalisation."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate (AdamW)."),
    patience: int | None = typer.Option(None, "--patience", help="Early stopping: epochs without a better "
                                        "validation Dice (default 12; none with --time-limit)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (tiles, augmentation, weights, split)."),
    device: str = typer.Option("auto", "--device", help="auto (cuda, mps, cpu), cpu, cuda or mps."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for PyTorch while training (0 = its default; "
                                "1 is much faster on a machine busy with other jobs)."),
    mine_every: int = typer.Option(5, "--mine-every", help="Every N epochs, segment one training image and centre "
                                   "half its tiles on the pixels the model gets wrong (0 = off)."),
    calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate", help="Tune each class's decision bias "
                                   "on the whole validation images after training."),
    resume: bool = typer.Option(False, "--resume", help="Continue from <MODEL>.last.pt when it exists."),
) -> None:
    """Train a U-Net; writes MODEL (best), MODEL.last.pt (resumable) and MODEL.metrics.csv."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .. import io
    from ..unet import (SegmentationTask, TrainConfig, balanced_class_weights, calibrate_biases,
                        load_segmentation_set, train)
    from ..unet.train import last_path, metrics_path

    console = Console()
    names = [c.strip() for item in classes or [] for c in item.split(",") if c.strip()] or None
    samples, names, skipped = load_segmentation_set(image_dir, masks, labels, names)
    inputs = [*io.list_images(image_dir), *io.list_images(masks or labels)]  # read by load_segmentation_set
    console.print(f"{len(samples)} training images ({', '.join(names)})"
                  + (f"; {len(skipped)} without {'mask' if masks else 'labels'} skipped" if skipped else ""))
    task = SegmentationTask(names, balanced_class_weights(samples, len(names)))
    by_clock = time_limit is not None and epochs is None  # the schedule and the bar run to the time limit
    config = TrainConfig(epochs=1_000_000 if by_clock else epochs or 40, time_limit=time_limit, tile=tile,
                         batch=batch, tiles_per_epoch=tiles_per_epoch, depth=depth, width=width, norm=norm, lr=lr,
                         patience=patience or (1_000_000 if time_limit else 12), seed=seed, device=device,
                         threads=threads or None, mine_every=mine_every)
    meta = {"training_data": {"image_dir": str(image_dir), "targets": str(masks or labels),
                              "target_kind": "mask" if masks else "labels", "images": len(samples),
                              "skipped": skipped, "class_weights": task.class_weights}}

    progress = Progress(TextColumn("training s" if by_clock else "epochs"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("(Ctrl-C keeps the last checkpoint)"), console=console)
    bar = progress.add_task("train", total=round(time_limit * 60) if by_clock else config.epochs)

    def report(row: dict[str, Any]) -> None:
        progress.update(bar, completed=round(row["train_s"]) if by_clock else row["epoch"])
        dice = "  ".join(f"{n} {_dice(row[f'dice_{n}'])}" for n in names)
        progress.console.print(
            f"epoch {row['epoch']:3d}  {row['train_s'] / 60:5.1f} min  loss {row['train_loss']:.3f}/"
            f"{row['val_loss']:.3f}  Dice {dice}  ({row['tiles_per_s']:.1f} tiles/s)"
            + ("  [green]best[/]" if row["best"] else ""), highlight=False, soft_wrap=True)

    with io.protect(inputs, outputs=[out, last_path(out), metrics_path(out)]), progress:
        result = train(samples, task, out, config, meta=meta, resume=resume, report=report,
                       finish=(lambda best: calibrate_biases(best, samples, config)) if calibrate else None)
    console.print(f"stopped: {result.stopped}; best epoch {result.best.get('epoch')} "
                  f"(Dice {_dice(result.best.get('score', float('nan')))}) -> {result.best_path}; "
                  f"last -> {result.last_path}; metrics -> {result.metrics_path}", soft_wrap=True)


def _dice(value: float) -> str:
    """A Dice figure, or "not scored" where validation held no pixel of the class (NaN)."""
    return "not scored" if math.isnan(value) else f"{value:.3f}"
