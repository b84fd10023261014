"""The HTTP face of a :class:`~rootscope.web.workspace.Workspace`: JSON and pictures for ``static/index.html``.

Routes (``KEY`` is a scan key, ``<plate>/<stem>``; pictures are PNG or JPEG at preview size):

- ``GET  /api/info``                      classes and colours, scans, models, where labels and the model go;
- ``GET  /api/scans/KEY/size``            the scan's full size in pixels;
- ``GET  /api/scans/KEY/image.jpg``       the scan;
- ``GET  /api/scans/KEY/labels.png``      its labels (RGBA); ``POST .../strokes`` paints one stroke (points and
  width in preview pixels, or in full-size pixels with ``"full_size": true``), ``POST .../undo`` takes
  the last one back;
- ``POST /api/train``                     trains the pixel classifier on every labelled scan;
- ``GET  /api/scans/KEY/prediction.png?model=live|unet`` and ``.../uncertainty.png``: the model's classes
  and where it is unsure;
- ``GET  /api/scans/KEY/results``         the pipeline's trait rows of the scan; ``.../overlay.png`` its overlay.

The four pictures (image, labels, prediction, uncertainty) take an optional view: ``?x0=&y0=&x1=&y1=``
(a rectangle in full-size pixels, ``[x0, x1) x [y0, y1)``) and ``px`` (the picture's width; by default
the rectangle's own, shrunk to the preview size): the page's zoom and pan.

A :class:`~rootscope.errors.RootscopeError` becomes HTTP 400 (404 for an unknown scan, 409 for a file
that could not be written) with its message, which names the file and the fix, as on the command line.

Every request passes :class:`Guard`, which answers with a one-line JSON ``detail`` instead of the route:

- 403 when the ``Host`` header is not the server's own address (127.0.0.1, localhost, [::1] or the
  address it listens on, at its port), against DNS rebinding, or an ``Origin`` header is not the page's;
- 415 when a POST (PUT, PATCH, DELETE) is not ``Content-Type: application/json``, which a page of another
  site cannot send without the server's leave, so no other page can train or undo (the page sends ``{}``);
- 413 when the body is over :data:`MAX_BODY` bytes.

Every answer carries :data:`SECURITY_HEADERS`: no inline script, no plugins, no framing, no MIME sniffing.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import cv2
import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InputError, OutputError, RootscopeError
from .workspace import MAX_POINTS, Stroke, UnknownScanError, Window, Workspace

STATIC = Path(__file__).parent / "static"
#: Largest request body in bytes (a stroke of MAX_POINTS points is about 0.4 MB of JSON).
MAX_BODY = 2_000_000
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECURITY_HEADERS = [
    (b"content-security-policy", b"script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
]


class Refusal(Exception):
    """A request :class:`Guard` answers itself: HTTP ``status`` with the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _address(host: str) -> str:
    """``name:port`` of a Host value, in lower case, port 80 when none is given."""
    host = host.lower()
    return host if ":" in host and not host.endswith("]") else f"{host}:80"


class Guard:
    """ASGI middleware: refuses foreign hosts and origins, non-JSON writes and large bodies (see the
    module docstring) and adds :data:`SECURITY_HEADERS`. ``hosts``: the Host values to accept
    (``name:port``) instead of the loopback names and the listening address, at the listening port."""

    def __init__(self, app: ASGIApp, hosts: Collection[str] | None = None) -> None:
        self.app = app
        self.hosts = None if hosts is None else {_address(h) for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        try:
            body = await self._check(scope, receive)
        except Refusal as refusal:
            return await JSONResponse({"detail": str(refusal)}, refusal.status)(scope, receive, secured)

        async def replay() -> Message:  # the body read here, then whatever comes next (a disconnect)
            nonlocal body
            if body is None:
                return await receive()
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        await self.app(scope, replay, secured)

    async def _check(self, scope: Scope, receive: Receive) -> bytes:
        """The request's body; Refusal when the request is not the page's own or too large."""
        headers = Headers(scope=scope)
        name, port = scope.get("server") or ("127.0.0.1", 80)
        own = f"[{name}]" if ":" in name else name
        allowed = self.hosts if self.hosts is not None else {f"{n}:{port}" for n in (*LOOPBACK, own)}
        host = _address(headers.get("host", ""))
        if host not in allowed:
            raise Refusal(403, f"Host {headers.get('host')!r} is not this server's address; open the page at "
                               f"{' or '.join(sorted(allowed))} (other names are refused against DNS rebinding).")
        origin = headers.get("origin")
        scheme, _, address = (origin or "").lower().partition("://")
        if origin is not None and (scheme != scope["scheme"] or _address(address) != host):
            raise Refusal(403, f"requests from the page {origin} are refused: only this server's own page "
                               f"({scope['scheme']}://{headers.get('host')}) may use it.")
        if scope["method"] not in SAFE_METHODS and \
                headers.get("content-type", "").partition(";")[0].strip().lower() != "application/json":
            raise Refusal(415, f"{scope['method']} {scope['path']} needs Content-Type: application/json (a page of "
                               "another site cannot send it); send {} when there is nothing to say.")
        too_large = Refusal(413, f"request body over {MAX_BODY} bytes, the most this server takes; send less "
                                 f"(strokes of at most {MAX_POINTS} points).")
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            raise too_large
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise Refusal(400, "the request ended before its body did.")
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                raise too_large
        return bytes(body)


class StrokeIn(BaseModel):
    """A stroke as the page sends it: preview pixels, or full-size pixels when ``full_size``."""

    points: list[tuple[float, float]] = Field(min_length=1)
    width: float
    label: int
    full_size: bool = False


class ViewQuery:
    """The optional view of a picture: a rectangle in full-size pixels and the picture's width."""

    def __init__(self, x0: int | None = None, y0: int | None = None, x1: int | None = None,
                 y1: int | None = None, px: int | None = None) -> None:
        self.rect = (x0, y0, x1, y1)
        self.px = px

    def window(self, space: Workspace, key: str) -> Window:
        """The workspace's window for this query; InputError for half a rectangle."""
        given = [v is not None for v in self.rect]
        if any(given) and not all(given):
            raise InputError(f"view of scan {key}: give all four of x0, y0, x1, y1 (full-size pixels) or none "
                             f"(got {', '.join(f'{n}={v}' for n, v in zip(('x0', 'y0', 'x1', 'y1'), self.rect))}).")
        return space.window(key, self.rect if all(given) else None, self.px)


def _picture(array: np.ndarray, suffix: str = ".png") -> Response:
    code = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}[array.shape[2]]
    quality = [cv2.IMWRITE_JPEG_QUALITY, 90] if suffix == ".jpg" else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(array, code), quality)
    media = "image/png" if suffix == ".png" else "image/jpeg"
    return Response(data.tobytes(), media_type=media, headers={"Cache-Control": "no-store"})


def create_app(folder: str | os.PathLike, *, preview_px: int = 1600,
               hosts: Collection[str] | None = None) -> FastAPI:
    """The labelling and review page for ``folder`` (an experiment or a folder of images).

    ``hosts``: the Host header values (``name:port``) to accept; by default 127.0.0.1, localhost,
    [::1] and the address the server listens on, at the port it listens on.
    """
    space = Workspace(folder, preview_px=preview_px)
    app = FastAPI(title="rootscope", docs_url=None, redoc_url=None)
    app.state.workspace = space
    app.add_middleware(Guard, hosts=hosts)

    @app.exception_handler(RootscopeError)
    def _error(request: Request, exc: RootscopeError) -> JSONResponse:
        status = 404 if isinstance(exc, UnknownScanError) else 409 if isinstance(exc, OutputError) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

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
            "preview_px": space.preview_px,
        }

    @app.get("/api/scans/{key:path}/size")
    def size(key: str) -> dict:
        h, w = space.image(key).shape[:2]
        return {"width": w, "height": h}

    @app.get("/api/scans/{key:path}/image.jpg")
    def image(key: str, view: ViewQuery = Depends()) -> Response:
        return _picture(space.preview(key, view.window(space, key)), ".jpg")

    @app.get("/api/scans/{key:path}/labels.png")
    def labels(key: str, view: ViewQuery = Depends()) -> Response:
        return _picture(space.label_picture(key, view.window(space, key)))

    @app.post("/api/scans/{key:path}/strokes")
    def stroke(key: str, body: StrokeIn) -> dict:
        counts = space.add_stroke(key, Stroke(np.asarray(body.points, float), body.width, body.label),
                                  full_size=body.full_size)
        return {"labelled": counts, "file": str(space.label_path(key))}

    @app.post("/api/scans/{key:path}/undo")
    def undo(key: str) -> dict:
        return {"labelled": space.undo(key)}

    @app.post("/api/train")
    def train() -> dict:
        return space.train()

    @app.get("/api/scans/{key:path}/prediction.png")
    def prediction(key: str, model: str = "live", view: ViewQuery = Depends()) -> Response:
        return _picture(space.prediction_picture(key, model, view.window(space, key)))

    @app.get("/api/scans/{key:path}/uncertainty.png")
    def uncertainty(key: str, model: str = "live", view: ViewQuery = Depends()) -> Response:
        return _picture(space.uncertainty_picture(key, model, view.window(space, key)))

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
