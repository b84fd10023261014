"""The HTTP face of a :class:`~rootscope.web.workspace.Workspace`: JSON and pictures for ``static/index.html``.

Routes (``KEY`` is a scan key, ``<plate>/<stem>``; pictures are PNG or JPEG at preview size):

- ``GET  /api/info``                      classes and colours, scans, models, where labels and the model go;
- ``GET  /api/scans/KEY/image.jpg``       the scan;
- ``GET  /api/scans/KEY/labels.png``      its labels (RGBA); ``POST .../strokes`` paints one stroke,
  ``POST .../undo`` takes the last one back;
- ``POST /api/train``                     trains the pixel classifier on every labelled scan;
- ``GET  /api/scans/KEY/prediction.png?model=live|unet`` and ``.../uncertainty.png``: the model's classes
  and where it is unsure;
- ``GET  /api/scans/KEY/results``         the pipeline's trait rows of the scan; ``.../overlay.png`` its overlay.

A :class:`~rootscope.errors.RootscopeError` becomes HTTP 400 (404 for an unknown scan) with its message,
which names the file and the fix, as on the command line.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from ..errors import RootscopeError
from .workspace import Stroke, UnknownScanError, Workspace

STATIC = Path(__file__).parent / "static"


class StrokeIn(BaseModel):
    """A stroke as the page sends it: preview pixels."""

    points: list[tuple[float, float]] = Field(min_length=1)
    width: float
    label: int


def _picture(array: np.ndarray, suffix: str = ".png") -> Response:
    code = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}[array.shape[2]]
    ok, data = cv2.imencode(suffix, cv2.cvtColor(array, code), [cv2.IMWRITE_JPEG_QUALITY, 90])
    media = "image/png" if suffix == ".png" else "image/jpeg"
    return Response(data.tobytes(), media_type=media, headers={"Cache-Control": "no-store"})


def create_app(folder: str | os.PathLike, *, preview_px: int = 1600) -> FastAPI:
    """The labelling and review page for ``folder`` (an experiment or a folder of images)."""
    space = Workspace(folder, preview_px=preview_px)
    app = FastAPI(title="rootscope", docs_url=None, redoc_url=None)
    app.state.workspace = space

    @app.exception_handler(RootscopeError)
    def _error(request: Request, exc: RootscopeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404 if isinstance(exc, UnknownScanError) else 400)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        path = STATIC / Path(name).name
        if not path.is_file():
            return JSONResponse({"detail": f"no file {name}"}, status_code=404)
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    @app.get("/api/info")
    def info() -> dict:
        labelled = set(space.labelled())
        return {
            "folder": str(space.root),
            "classes": [{"value": k, "name": name, "colour": "#%02x%02x%02x" % colour}
                        for k, (name, colour) in enumerate(zip(space.classes, space.colours), start=1)],
            "scans": [{"key": s.key, "plate": s.plate, "name": s.path.name, "labelled": s.key in labelled}
                      for s in space.scans.values()],
            "models": space.models(),
            "model_path": str(space.model_path),
            "labels_dir": str(space.root / "labels"),
        }

    @app.get("/api/scans/{key:path}/image.jpg")
    def image(key: str) -> Response:
        return _picture(space.preview(key), ".jpg")

    @app.get("/api/scans/{key:path}/labels.png")
    def labels(key: str) -> Response:
        return _picture(space.label_picture(key))

    @app.post("/api/scans/{key:path}/strokes")
    def stroke(key: str, body: StrokeIn) -> dict:
        counts = space.add_stroke(key, Stroke(np.asarray(body.points, float), body.width, body.label))
        return {"labelled": counts, "file": str(space.label_path(key))}

    @app.post("/api/scans/{key:path}/undo")
    def undo(key: str) -> dict:
        return {"labelled": space.undo(key)}

    @app.post("/api/train")
    def train() -> dict:
        return space.train()

    @app.get("/api/scans/{key:path}/prediction.png")
    def prediction(key: str, model: str = "live") -> Response:
        return _picture(space.prediction_picture(key, model))

    @app.get("/api/scans/{key:path}/uncertainty.png")
    def uncertainty(key: str, model: str = "live") -> Response:
        return _picture(space.uncertainty_picture(key, model))

    @app.get("/api/scans/{key:path}/results")
    def results(key: str) -> dict:
        return {"rows": space.result_rows(key), "overlay": space.result_overlay(key) is not None}

    @app.get("/api/scans/{key:path}/overlay.png")
    def overlay(key: str) -> Response:
        path = space.result_overlay(key)
        if path is None:
            return JSONResponse({"detail": f"no pipeline overlay for {key}; run `rootscope run {space.root}`."},
                                status_code=404)
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    return app
