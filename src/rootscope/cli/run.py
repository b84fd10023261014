"""``rootscope init`` and ``rootscope run``: a whole experiment in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def init(
    folder: Path = typer.Argument(..., help="Experiment folder to set up (created when missing)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing rootscope.toml."),
) -> None:
    """Create an experiment folder: raw/ for the scans and a commented rootscope.toml."""
    from .. import io
    from ..config import CONFIG_NAME, default_config_text
    from ..errors import ConfigError

    config = folder / CONFIG_NAME
    if config.exists() and not force:
        raise ConfigError(f"{config}: already exists; edit it, or pass --force to replace it with the defaults.")
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    io.write_text(config, default_config_text())
    typer.echo(f"wrote {config}\nput scans in {folder / 'raw'}/<plate>/ and run: rootscope run {folder}")


@app.command()
def run(
    experiment: Path = typer.Argument(..., help="Experiment folder (raw/ scans, optional rootscope.toml)."),
    workers: int = typer.Option(None, "--workers", "-w", min=1,
                                help="Local Dask workers (1 = in this process; default: from cores and memory)."),
    scheduler: str = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
    force: bool = typer.Option(False, "--force", help="Redo every stage, even those up to date."),
) -> None:
    """Align, segment and measure every plate: tables, report.html and failures.csv go to EXPERIMENT/out/.

    A rerun skips the work that is up to date; a second run of the same experiment at once is refused
    (EXPERIMENT/out/.lock names the run that holds it). Plates run in parallel on a local Dask cluster, or on
    the cluster at --scheduler (for SLURM, see the rootscope.batch docs: dask-jobqueue). Exits with
    code 1 when some scans or plates failed (listed in failures.csv).
    """
    from ..pipeline import run_experiment

    result = run_experiment(experiment, workers=workers, scheduler=scheduler, force=force,
                            echo=lambda note: typer.echo(f"warning: {note}", err=True))
    typer.echo(result.summary)
    for path in [*result.tables.values(), result.report]:
        if path is not None:
            typer.echo(f"wrote {path}")
    if result.n_failures:
        typer.echo(f"{result.n_failures} failures listed in {result.failures_csv}", err=True)
        raise typer.Exit(1)
