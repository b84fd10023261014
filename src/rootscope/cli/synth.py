"""``rootscope synth`` and ``rootscope demo``."""

from __future__ import annotations

import time
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
    """Make a synthetic plate experiment with exact ground truth (masks, RSML, points, lengths, matrices).

    OUT must not hold scans or truth yet (raw/ and truth/ are refused when they hold files)."""
    from ..errors import OutputError
    from ..synth import SynthConfig, write_experiment

    for part in ("raw", "truth"):
        held = [p for p in (out / part).rglob("*") if p.is_file()] if (out / part).is_dir() else []
        if held:
            raise OutputError(f"{out / part}: already holds {len(held)} files (e.g. {held[0].name}); synth makes a "
                              "new experiment: give a folder that does not exist yet, or remove this one.")
    cfg = SynthConfig(size=size, light_roots=light_roots, max_rotation_deg=max_rotation, max_shift_px=max_shift)
    paths = write_experiment(out, plates=plates, frames=frames, seed=seed, config=cfg, overlays=overlays)
    typer.echo(f"wrote {len(paths)} scans to {out / 'raw'} and their ground truth to {out / 'truth'}")


@app.command()
def demo(
    out: Path = typer.Argument(Path("out/demo"), help="Folder for the demo experiment."),
    size: int | None = typer.Option(None, "--size", help="Side of each square scan in pixels "
                                    "(default 1500: rootscope.demo.DEMO_SIZE)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed of the demo plates."),
) -> None:
    """Synthetic experiment (2 plates x 4 scans) -> model trained on the fly -> rootscope run -> report,
    with errors against the synthetic ground truth."""
    from ..demo import DEMO_SIZE, run_demo

    size = size or DEMO_SIZE
    start = time.perf_counter()
    result = run_demo(out, size=size, seed=seed, echo=typer.echo)
    typer.echo(f"\n{result.summary}")
    typer.echo(f"report: {result.report}")
    typer.echo(f"tables: {out / 'out'}/traits.csv, roots.csv, classes.csv; RSML and overlays in {out / 'out'}/<plate>/")
    typer.echo(f"\nerrors against the synthetic ground truth ({size} px scans, "
               f"{len(result.scores.plants)} plant-scans):\n{result.scores.table()}")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    typer.echo(f"\ntime: {time.perf_counter() - start:.0f} s ({steps})")
