"""What the labelling page works on: the scans of a folder, their label images, a live pixel classifier.

A workspace is an experiment folder (scans under ``raw/<plate>/`` or flat in ``raw/``, settings from
its ``rootscope.toml``) or any folder of images. Everything here is plain Python on arrays, so the web
layer (:mod:`rootscope.web.app`) stays thin and this is tested without HTTP.

- Labels are the label images every other command reads: ``labels/<plate>/<scan stem>.png`` (or
  ``labels/<stem>.png`` for a plain folder), uint8, 0 = unlabelled, ``k`` = ``classes[k - 1]``, at the
  scan's full size. Strokes arrive in full-size (or preview) pixels and are drawn at full size, without
  anti-aliasing, and each stroke is written atomically; the last strokes can be undone.
- Pictures show the whole scan at preview size, or a view: a rectangle in full-size pixels drawn at
  the size the page asks for (zoom and pan). Classes are enlarged pixel by pixel (nearest neighbour)
  and shrunk keeping thin strokes; the scan and the doubt are shrunk by area averaging.
- The live model is a :class:`~rootscope.pixel.PixelClassifier` trained from every labelled scan and
  saved atomically to ``[models] pixel`` of the config (default ``models/pixel.model``), so
  ``rootscope run`` uses what was painted here; the model it replaces is kept as ``*.previous.model``.
  A model path among the scans or labels is refused when the workspace opens. A U-Net named in the
  config can be shown instead, to correct its output by painting.
- Review: the pipeline's overlay and trait rows of a scan, when ``out/`` holds them.
- Scans are only read, never written. A write that fails (a folder that is not writable) raises
  :class:`~rootscope.errors.OutputError` naming the folder.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from .. import io
from ..config import Config, load_config
from ..errors import ConfigError, InputError, ModelError, OutputError
from ..experiment import discover
from ..pixel import PixelClassifier, is_pixel_model, postprocess_mask

#: RGB colours for well-known class names; other classes take the palette in order.
CLASS_COLOURS = {"background": (60, 110, 230), "root": (250, 190, 20), "seed": (40, 190, 90),
                 "shoot": (220, 60, 200), "bubble": (0, 200, 220), "label": (150, 150, 150)}
PALETTE = [(230, 80, 60), (130, 90, 220), (240, 140, 40), (90, 200, 200), (200, 200, 60)]
UNDO_STEPS = 20
#: Scans (full-size pixels) and predictions (class probabilities) kept in memory: a 16 MP RGB scan is
#: 190 MB as float32 and its four-class probabilities 250 MB.
KEEP_IN_MEMORY = 3
#: A view covering at most this fraction of a scan is predicted on its own (with the features' halo);
#: a larger one has the whole scan predicted once and cut from it.
VIEW_FRACTION = 0.25
#: Most points in one stroke; a stroke's coordinates lie within this many scan sizes of the scan's corner.
MAX_POINTS = 10_000
MAX_REACH = 10


class UnknownScanError(InputError):
    """A scan key that the workspace does not have (HTTP 404 on the page)."""


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into a one-line :class:`~rootscope.errors.OutputError`
    naming its folder (HTTP 409 on the page), as :mod:`rootscope.io` does for "permission denied"."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror or exc}): make {path.parent} a folder you can "
                          "write to, then try again.") from None


@dataclass(frozen=True)
class ScanRef:
    """One scan of the workspace: ``key`` is ``<plate>/<stem>`` (or ``<stem>``), unique and URL-safe."""

    key: str
    path: Path
    plate: str


@dataclass(frozen=True)
class Stroke:
    """A brush stroke: ``points`` N x 2 (x, y) and ``width`` (the brush diameter) in full-size or
    preview pixels, ``label`` the class value to paint (0 erases). Pixel (row, col) covers
    ``[col, col + 1) x [row, row + 1)``, so a point anywhere in it paints it."""

    points: np.ndarray
    width: float
    label: int


@dataclass(frozen=True)
class Window:
    """Where a picture comes from and how large it is drawn: ``rows``, ``cols`` slices of the scan
    (full-size pixels) and ``shape`` (height, width) of the picture."""

    rows: slice
    cols: slice
    shape: tuple[int, int]


def class_colours(classes: list[str]) -> list[tuple[int, int, int]]:
    """RGB colour per class, known names first, the palette for the others."""
    others = iter(PALETTE * (len(classes) // len(PALETTE) + 1))
    return [CLASS_COLOURS.get(name.lower()) or next(others) for name in classes]


def find_scans(root: Path, config: Config) -> list[ScanRef]:
    """The experiment's scans (plates in order, scans in time order) or a plain folder's images."""
    if (root / config.input.raw).is_dir():
        return [ScanRef(f"{plate.name}/{path.stem}", path, plate.name)
                for plate in discover(root, config).plates for path in plate.scans]
    scans = [ScanRef(path.stem, path, "") for path in io.list_images(root)]
    if not scans:
        raise InputError(f"{root}: no scans found. Give an experiment folder (scans in raw/) or a folder of "
                         "PNG, JPEG or TIFF images.")
    return scans


def paint(labels: np.ndarray, stroke: Stroke, scale: float = 1.0) -> np.ndarray:
    """``labels`` with ``stroke`` (in pixels of a picture = full size x ``scale``) drawn at full size.

    The brush covers the pixels under the stroke's points and ``r = floor(width / 2)`` pixels on each
    side: a line ``2 r + 1`` pixels wide (width 1: exactly the pixels the points fall in).
    """
    points = np.floor(np.asarray(stroke.points, float) / scale).astype(np.int32).reshape(-1, 1, 2)
    radius = int(stroke.width / scale) // 2
    out = labels.copy()
    if len(points) == 1:
        cv2.circle(out, tuple(int(v) for v in points[0, 0]), radius, stroke.label, -1, cv2.LINE_8)
    else:  # OpenCV draws thickness 2 r as 2 r + 1 pixels
        cv2.polylines(out, [points], False, stroke.label, max(1, 2 * radius), cv2.LINE_8)
    return out


def resize(picture: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``picture`` at ``shape`` (height, width): pixel by pixel when enlarged, area-averaged when shrunk."""
    h, w = shape
    if picture.shape[:2] == (h, w):
        return picture
    enlarge = h >= picture.shape[0] and w >= picture.shape[1]
    return cv2.resize(picture, (w, h), interpolation=cv2.INTER_NEAREST_EXACT if enlarge else cv2.INTER_AREA)


def class_overlay(classes: np.ndarray, colours: list[tuple[int, int, int]], shape: tuple[int, int],
                  transparent: set[int] = frozenset()) -> np.ndarray:
    """RGBA picture (``shape``) of a class-index image (0 and ``transparent`` values clear). Enlarging
    repeats pixels; shrinking keeps thin strokes: each picture pixel shows the class covering most of it."""
    h, w = shape
    if h >= classes.shape[0] and w >= classes.shape[1]:
        classes = resize(classes.astype(np.uint8), shape)
    else:
        values = np.arange(1, len(colours) + 1)
        cover = np.stack([cv2.resize((classes == v).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
                          for v in values])
        classes = np.where(cover.max(axis=0) > 0, values[cover.argmax(axis=0)], 0)
    lut = np.zeros((256, 4), np.uint8)
    for value, colour in enumerate(colours, start=1):
        if value not in transparent:
            lut[value] = (*colour, 255)
    return lut[classes.astype(np.uint8)]


class Workspace:
    """Scans, labels and the live pixel classifier of one folder (see the module docstring).

    ``preview_px`` caps the longer side of the pictures the page shows: the whole scan (the preview)
    or a view of it (see :meth:`window`).
    """

    def __init__(self, root: str | os.PathLike, *, preview_px: int = 1600) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: folder not found. Give an experiment folder or a folder of images.")
        self.config = load_config(self.root)
        self.classes = list(self.config.classes)
        self.colours = class_colours(self.classes)
        self.scans = {scan.key: scan for scan in find_scans(self.root, self.config)}
        self.model_path = self.config.models.pixel or self.root / "models" / "pixel.model"
        self._check_model_path()
        self.preview_px = preview_px
        self._lock = threading.RLock()  # scans in memory, label files
        self._predict_lock = threading.Lock()  # predictions: painting goes on while one is computed
        self._undo: dict[str, deque[np.ndarray]] = {}
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._predictions: OrderedDict[tuple[str, str, float], tuple] = OrderedDict()
        self._views: OrderedDict[tuple, tuple] = OrderedDict()
        self._unet: tuple[Any, float] | None = None
        self.model: PixelClassifier | None = None
        if self.model_path.is_file() and is_pixel_model(self.model_path):
            self.model = PixelClassifier.load(self.model_path)

    def _check_model_path(self) -> None:
        """ConfigError when training would write the model (or keep the one it replaces) over a scan, a
        label file or anything under the raw or labels folder."""
        inputs = {scan.path.resolve() for scan in self.scans.values()}
        folders = [(self.root / self.config.input.raw).resolve(), (self.root / "labels").resolve()]
        for path in (self.model_path, self.previous_model_path):
            path = path.resolve()
            if path in inputs or any(path.is_relative_to(folder) for folder in folders):
                raise ConfigError(
                    f"{self.root / 'rootscope.toml'}: [models] pixel = {self.model_path} is among the scans or "
                    f"labels ({', '.join(map(str, folders))}), which training must not overwrite; set [models] "
                    'pixel to a file outside them, e.g. "models/pixel.model".')

    # ------------------------------------------------------------------ scans
    def scan(self, key: str) -> ScanRef:
        """The scan called ``key``; InputError listing a few valid keys otherwise."""
        if key not in self.scans:
            raise UnknownScanError(f"no scan '{key}' in {self.root}; known scans: {', '.join(list(self.scans)[:5])}...")
        return self.scans[key]

    def image(self, key: str) -> np.ndarray:
        """The scan as float32 in [0, 1] at full size (the last few are kept in memory)."""
        with self._lock:
            if key not in self._images:
                self._images[key] = io.read_image(self.scan(key).path)
                while len(self._images) > KEEP_IN_MEMORY:
                    self._images.popitem(last=False)
            self._images.move_to_end(key)
            return self._images[key]

    def scale(self, key: str) -> float:
        """Preview size / full size (<= 1)."""
        h, w = self.image(key).shape[:2]
        return min(1.0, self.preview_px / max(h, w))

    def window(self, key: str, rect: tuple[int, int, int, int] | None = None, px: int | None = None) -> Window:
        """The part of scan ``key`` a picture shows and the picture's size.

        ``rect`` = (x0, y0, x1, y1) in full-size pixels, ``[x0, x1) x [y0, y1)`` (None: the whole scan);
        ``px`` the picture's width (None: the rectangle's, shrunk to ``preview_px`` on its longer side).
        An empty rectangle, one outside the scan or a picture over ``preview_px`` raises InputError.
        """
        h, w = self.image(key).shape[:2]
        x0, y0, x1, y1 = rect if rect is not None else (0, 0, w, h)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise InputError(f"view x0={x0}, y0={y0}, x1={x1}, y1={y1} of scan {key} is empty or outside it: the scan is "
                             f"{w} x {h} px, give 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h} (full-size pixels).")
        if px is None:
            s = min(1.0, self.preview_px / max(x1 - x0, y1 - y0))
            shape = max(1, round((y1 - y0) * s)), max(1, round((x1 - x0) * s))
        else:
            shape = max(1, round(px * (y1 - y0) / (x1 - x0))), px
        if px is not None and (px < 1 or max(shape) > self.preview_px):
            raise InputError(f"view of scan {key}: px={px} asks for a {shape[1]} x {shape[0]} picture; give px >= 1 "
                             f"with the longer side at most {self.preview_px} px (the server's preview_px).")
        return Window(slice(y0, y1), slice(x0, x1), shape)

    def preview(self, key: str, window: Window | None = None) -> np.ndarray:
        """The scan (or ``window`` of it, see :meth:`window`) as 8-bit RGB, at preview (or the window's) size."""
        window = window or self.window(key)
        image = io.from_float(self.image(key)[window.rows, window.cols])
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        return resize(np.ascontiguousarray(image[..., :3]), window.shape)

    # ------------------------------------------------------------------ labels
    def label_path(self, key: str) -> Path:
        scan = self.scan(key)
        return self.root / "labels" / scan.plate / f"{scan.path.stem}.png"

    def labels(self, key: str) -> np.ndarray:
        """The scan's label image at full size (zeros when nothing is painted yet)."""
        path = self.label_path(key)
        shape = self.image(key).shape[:2]
        if not path.exists():
            return np.zeros(shape, np.uint8)
        labels = io.read_labels(path)
        if labels.shape != shape:
            raise InputError(f"{path} is {labels.shape[1]}x{labels.shape[0]} but its scan {self.scan(key).path} is "
                             f"{shape[1]}x{shape[0]}; move the label file away (it is not this scan's).")
        return labels

    def add_stroke(self, key: str, stroke: Stroke, *, full_size: bool = False) -> dict[str, int]:
        """Draw ``stroke`` (full-size pixels, else preview pixels) into the scan's labels and write them;
        returns labelled pixels per class."""
        scale = 1.0 if full_size else self.scale(key)
        self.check_stroke(key, stroke, scale)
        with self._lock:
            before = self.labels(key)
            after = paint(before, stroke, scale)
            with writing(self.label_path(key)):
                io.write_image(self.label_path(key), after)
            self._undo.setdefault(key, deque(maxlen=UNDO_STEPS)).append(before)
        return self.label_counts(after)

    def check_stroke(self, key: str, stroke: Stroke, scale: float) -> None:
        """InputError stating the bound a stroke (in pixels of a picture = full size x ``scale``) breaks:
        a class value, 1 to :data:`MAX_POINTS` finite points within :data:`MAX_REACH` scan sizes, and a
        brush width above 0 and at most the scan's longer side."""
        if not 0 <= stroke.label <= len(self.classes):
            raise InputError(f"label {stroke.label} is not a class: use 0 (erase) or 1..{len(self.classes)} "
                             f"({', '.join(self.classes)}).")
        side = max(self.image(key).shape[:2]) * scale  # the scan's longer side, in the stroke's pixels
        points = np.asarray(stroke.points, float)
        if points.ndim != 2 or points.shape[1] != 2 or not 1 <= len(points) <= MAX_POINTS:
            raise InputError(f"a stroke needs 1 to {MAX_POINTS} (x, y) points (got {len(points)}); "
                             "split a longer one.")
        if not (np.isfinite(points).all() and np.abs(points).max() <= MAX_REACH * side):
            raise InputError(f"stroke points must be finite with |x|, |y| <= {MAX_REACH * side:g} px "
                             f"({MAX_REACH} times the scan's longer side).")
        if not (np.isfinite(stroke.width) and 0 < stroke.width <= side):
            raise InputError(f"brush width must be above 0 and at most {side:g} px, the scan's longer side "
                             f"(got {stroke.width}).")

    def undo(self, key: str) -> dict[str, int]:
        """Put back the labels as they were before the last stroke; InputError when there is none."""
        with self._lock:
            history = self._undo.get(key)
            if not history:
                raise InputError(f"nothing to undo for {key} (strokes of this session only).")
            with writing(self.label_path(key)):
                io.write_image(self.label_path(key), history[-1])
            labels = history.pop()
        return self.label_counts(labels)

    def label_counts(self, labels: np.ndarray) -> dict[str, int]:
        counts = np.bincount(labels.ravel(), minlength=len(self.classes) + 1)
        return {name: int(n) for name, n in zip(self.classes, counts[1:])}

    def labelled(self) -> list[str]:
        """Keys of the scans that have a label file."""
        return [key for key in self.scans if self.label_path(key).exists()]

    def label_picture(self, key: str, window: Window | None = None) -> np.ndarray:
        """RGBA picture of the labels at preview size (or of ``window``)."""
        window = window or self.window(key)
        return class_overlay(self.labels(key)[window.rows, window.cols], self.colours, window.shape)

    # ------------------------------------------------------------------ model
    def train(self) -> dict[str, Any]:
        """Train the pixel classifier on every labelled scan, save it, and return what it learnt from."""
        labels = {key: painted for key in self.labelled() if (painted := self.labels(key)).any()}
        keys = list(labels)
        if not keys:
            raise InputError(f"{self.root / 'labels'}: nothing is labelled yet; paint a few strokes of each "
                             f"class ({', '.join(self.classes)}) and train again.")
        with self._lock:
            model = PixelClassifier(seed=0)
            model.fit([self.image(k) for k in keys], list(labels.values()), self.classes,
                      sources=[self.scan(k).path for k in keys], label_sources=[self.label_path(k) for k in keys])
            with writing(self.model_path):
                if self.model_path.is_file():
                    io.write_bytes(self.previous_model_path, self.model_path.read_bytes())
                model.save(self.model_path)
            self.model = model
        with self._predict_lock:
            self._predictions.clear()
            self._views.clear()
        return {"model": str(self.model_path), "scans": keys, **model.training}

    @property
    def previous_model_path(self) -> Path:
        """Where the model a training replaces is kept."""
        return self.model_path.with_name(f"{self.model_path.stem}.previous{self.model_path.suffix}")

    def models(self) -> dict[str, str]:
        """Models the page can show: ``live`` (trained here) and the config's U-Net, when they exist."""
        found = {"live": self.model_path} if self.model is not None else {}
        if self.config.models.unet is not None and self.config.models.unet.is_file():
            found["unet"] = self.config.models.unet
        return {name: str(path) for name, path in found.items()}

    def _segmenter(self, which: str) -> tuple[Any, float]:
        """The ``live`` or ``unet`` model and its file's modification time."""
        from ..segment import load_segmenter

        if which == "live":
            if self.model is None:
                raise ModelError("no pixel classifier yet: paint a few strokes of each class and press Train.")
            return self.model, self.model_path.stat().st_mtime
        if which == "unet" and "unet" in self.models():
            path = self.config.models.unet
            stamp = path.stat().st_mtime
            if self._unet is None or self._unet[1] != stamp:  # loaded once per version of the file, not per view
                self._unet = load_segmenter(path), stamp
            return self._unet
        raise ModelError(f"no model '{which}' here; available: {', '.join(self.models()) or 'none'}.")

    def segmentation(self, key: str, which: str = "live",
                     window: Window | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Class mask H x W (1..K, after the model's own clean-up, as the pipeline has it), probabilities
        K x H x W and class names of a scan (or of ``window`` of it), by the ``live`` or ``unet`` model.

        A window equals the same window of the whole-scan result. The last few whole-scan results are
        kept and cut from; a small window (at most :data:`VIEW_FRACTION` of the scan) is predicted on its
        own plus the features' halo when every step is per pixel (a pixel classifier without clean-up of
        small pieces), so a zoomed-in view of a new model is fast.
        """
        from ..segment import segment_image

        model, stamp = self._segmenter(which)
        image = self.image(key)
        h, w = image.shape[:2]
        rows, cols = (window.rows, window.cols) if window else (slice(0, h), slice(0, w))
        whole = (key, which, stamp)
        with self._predict_lock:
            if whole not in self._predictions and window is not None and self._per_pixel(model, window, (h, w)):
                view = (*whole, rows.start, rows.stop, cols.start, cols.stop)
                if view not in self._views:
                    self._views[view] = self._predict_window(model, image, rows, cols)
                    while len(self._views) > KEEP_IN_MEMORY:
                        self._views.popitem(last=False)
                self._views.move_to_end(view)
                return self._views[view]
            if whole not in self._predictions:
                self._predictions[whole] = (*segment_image(model, image), list(model.classes))
                while len(self._predictions) > KEEP_IN_MEMORY:
                    self._predictions.popitem(last=False)
            self._predictions.move_to_end(whole)
            mask, proba, names = self._predictions[whole]
            return mask[rows, cols], proba[:, rows, cols], names

    @staticmethod
    def _per_pixel(model: Any, window: Window, shape: tuple[int, int]) -> bool:
        """True when ``window`` is small and ``model`` gives each pixel from its neighbourhood only."""
        area = (window.rows.stop - window.rows.start) * (window.cols.stop - window.cols.start)
        local = isinstance(model, PixelClassifier) and not (model.postprocess.min_object_px
                                                           or model.postprocess.max_hole_px)
        return local and area <= VIEW_FRACTION * shape[0] * shape[1]

    @staticmethod
    def _predict_window(model: PixelClassifier, image: np.ndarray, rows: slice,
                        cols: slice) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Mask, probabilities and classes of ``image[rows, cols]``, predicted on the window plus the
        features' halo (mirrored only at the scan's border, as for the whole scan)."""
        h, w = image.shape[:2]
        halo = model.features.halo
        r0, c0 = max(rows.start - halo, 0), max(cols.start - halo, 0)
        r1, c1 = min(rows.stop + halo, h), min(cols.stop + halo, w)
        proba = model.predict_proba(image[r0:r1, c0:c1])
        proba = np.ascontiguousarray(proba[:, rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0])
        return postprocess_mask(proba, model.classes, model.postprocess), proba, list(model.classes)

    def prediction_picture(self, key: str, which: str = "live", window: Window | None = None) -> np.ndarray:
        """RGBA picture (preview size, or ``window``) of the predicted classes; the background class is clear."""
        window = window or self.window(key)
        mask, _, names = self.segmentation(key, which, window)
        clear = {k + 1 for k, name in enumerate(names) if name.lower() == "background"}
        return class_overlay(mask, class_colours(names), window.shape, clear)

    def uncertainty_picture(self, key: str, which: str = "live", window: Window | None = None) -> np.ndarray:
        """RGBA picture (preview size, or ``window``): red where the model is unsure (1 - top probability,
        scaled to the 1 - 1/K range), the places worth a correction stroke."""
        window = window or self.window(key)
        _, proba, _ = self.segmentation(key, which, window)
        doubt = (1.0 - proba.max(axis=0)) * len(proba) / max(len(proba) - 1, 1)
        doubt = resize(doubt.astype(np.float32), window.shape)
        out = np.zeros((*window.shape, 4), np.uint8)
        out[..., 0] = 255
        out[..., 3] = np.clip(doubt * 255, 0, 255).astype(np.uint8)
        return out

    # ------------------------------------------------------------------ review
    def result_overlay(self, key: str) -> Path | None:
        """The pipeline's overlay picture of this scan, when ``out/`` has one."""
        scan = self.scan(key)
        path = self.root / "out" / scan.plate / "overlays" / f"{scan.path.stem}.png"
        return path if scan.plate and path.is_file() else None

    def result_rows(self, key: str) -> list[dict[str, Any]]:
        """This scan's rows of ``out/traits.csv`` (empty when the pipeline has not run)."""
        path = self.root / "out" / "traits.csv"
        scan = self.scan(key)
        if not (scan.plate and path.is_file()):
            return []
        table = pd.read_csv(path)
        rows = table[(table.plate.astype(str) == scan.plate) & (table.scan.astype(str) == scan.path.name)]
        return rows.astype(object).where(rows.notna(), None).to_dict("records")
