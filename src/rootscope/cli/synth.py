"""``rootscope synth`` and ``rootscope demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Experiment folder to create (raw/ and truth/ inside)."),
    plates: int = typer.Option(2, "--plates", "-p", help="Number of plates."),
    frames: int = typer.Option(4, "--frames", "-t", help="Scans per plate (one a day from day 5)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed: the same seed gives the same files."),
    size: int = typer.Option(2000, "--size", help="Side of each square scan in pixels."),
    light_roots: bool = typer.Option(False, "--light-roots", help="Light roots on dark agar."),
    max_rotation: float = typer.Option(5.0, help="Largest plate rotation between scans (degrees, <= 20)."),
    max_shift: float | None = typer.Option(None, help="Largest plate shift between scans (px; default 5 % of size)."),
    overlays: bool = typer.Option(False, "--overlays", help="Also write <stem>_overlay.png truth pictures."),
) -> None:
    """Make a synthetic plate experiment with exact ground truth (masks, RSML, points, lengths, matrices)."""
    from ..synth import SynthConfig, write_experiment

    cfg = SynthConfig(size=size, light_roots=light_roots, max_rotation_deg=max_rotation, max_shift_px=max_shift)
    paths = write_experiment(out, plates=plates, frames=frames, seed=seed, config=cfg, overlays=overlays)
    typer.echo(f"wrote {len(paths)} scans to {out / 'raw'} and their ground truth to {out / 'truth'}")


@app.command()
def demo(out: Path = typer.Argument(Path("out/demo"), help="Folder for the demo experiment.")) -> None:
    """Generate a small synthetic experiment (2 plates x 4 scans) with ground-truth overlays."""
    from ..synth import write_experiment

    paths = write_experiment(out, plates=2, frames=4, seed=0, overlays=True)
    overlays = sorted((out / "truth").glob("*/*_overlay.png"))
    typer.echo(f"scans ({len(paths)}):            {out / 'raw'}/<plate>/")
    typer.echo(f"ground truth:           {out / 'truth'}/<plate>/ (mask, rsml, csv, matrix)")
    typer.echo(f"ground-truth overlays ({len(overlays)}):")
    for path in overlays:
        typer.echo(f"  {path}")
