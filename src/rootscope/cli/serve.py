"""``rootscope serve``: the local labelling, training and review page."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def serve(
    folder: Path = typer.Argument(..., help="Experiment folder (scans in raw/) or a folder of images."),
    port: int = typer.Option(8000, help="Port on this machine."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this machine only)."),
    allow_host: list[str] = typer.Option([], "--allow-host", help="Another name the page is opened by (e.g. "
                                         "mypc.local; repeatable). Other names are refused, against DNS rebinding."),
    preview_px: int = typer.Option(1600, help="Longest side of the pictures sent to the page, whole scan or zoomed "
                                   "view (labels are painted and saved at full size)."),
) -> None:
    """Paint labels, train the pixel classifier live, look at its output and the pipeline's results.

    Labels go to FOLDER/labels/ as the label PNGs `rootscope pixel train` reads; the model to the
    config's [models] pixel (default FOLDER/models/pixel.model), which `rootscope run` then uses.
    """
    from ..errors import RootscopeError

    try:
        import uvicorn

        from ..web.app import create_app
    except ModuleNotFoundError as exc:
        raise RootscopeError(f"the page needs the web extra ({exc.name} is missing): "
                             "pip install 'rootscope[web]'.") from None
    from ..web.app import LOOPBACK

    hosts = [f"{name}:{port}" for name in (*LOOPBACK, host, *allow_host)] if allow_host else None
    web = create_app(folder, preview_px=preview_px, hosts=hosts)
    typer.echo(f"rootscope: {len(web.state.workspace.scans)} scans in {folder}; open http://{host}:{port}/ "
               "(Ctrl+C stops)")
    uvicorn.run(web, host=host, port=port, log_level="warning")
