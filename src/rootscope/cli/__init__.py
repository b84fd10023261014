"""The ``rootscope`` command.

Each stage has its own small module here that adds its commands to :data:`app`; heavy libraries
(torch, dask) are imported inside the commands so that ``rootscope --help`` stays instant.
A :class:`~rootscope.errors.RootscopeError` is printed without a traceback and exits with code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import RootscopeError

app = typer.Typer(
    name="rootscope",
    help="Root phenotyping from plate scans: align, segment, measure, follow over time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

# Each module registers its commands on `app` when imported (order = order in --help).
from . import synth  # noqa: E402,F401
from . import align  # noqa: E402,F401
from . import unet  # noqa: E402,F401
from . import pixel  # noqa: E402,F401
from . import segment  # noqa: E402,F401
from . import run  # noqa: E402,F401
from . import analyze  # noqa: E402,F401
from . import branches  # noqa: E402,F401
from . import track  # noqa: E402,F401
from . import serve  # noqa: E402,F401


@app.callback()
def _root() -> None:
    """Root phenotyping from plate scans: align, segment, measure, follow over time."""


def main(argv: list[str] | None = None) -> int:
    """Run the app; a RootscopeError becomes a one-line message and exit code 2."""
    try:
        app(args=argv, prog_name="rootscope")
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except RootscopeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    return 0


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())


@app.command()
def version() -> None:
    """Print the rootscope version."""
    from .. import __version__

    typer.echo(__version__)
