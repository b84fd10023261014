"""One entry point for every segmentation model: pixel classifier or U-Net.

:func:`load_segmenter` reads a model file and returns an object with ``classes`` (list of names; mask
value ``k`` is ``classes[k - 1]``), ``predict_proba(image) -> float32 K x H x W`` and
``predict(image) -> uint8 H x W`` with values 1..K. Pixel-classifier files are recognised here; any
other file is offered to :func:`rootscope.unet.load_segmenter` (imported only then, as it needs torch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tifffile

from . import io
from .errors import ModelError
from .pixel import PixelClassifier, best_class, clean_mask, is_pixel_model


class Segmenter(Protocol):
    """What ``rootscope segment`` needs from a model."""

    classes: list[str]

    def predict_proba(self, image: np.ndarray) -> np.ndarray: ...

    def predict(self, image: np.ndarray) -> np.ndarray: ...


def load_segmenter(path: str | os.PathLike) -> Segmenter:
    """Load a pixel-classifier or U-Net model file; ModelError naming the file for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found. Train one with `rootscope pixel train` or `rootscope unet train`.")
    if is_pixel_model(path):
        return PixelClassifier.load(path)
    unet = _unet_module()
    if unet is not None and unet.is_unet_model(path):
        return unet.load_segmenter(path)
    raise ModelError(
        f"{path}: not a rootscope model (neither a pixel classifier nor a U-Net), or the file is damaged. "
        "Give a file written by "
        "`rootscope pixel train` or `rootscope unet train`."
    )


def _unet_module() -> Any:
    """``rootscope.unet`` when it (and torch) can be imported, else None."""
    try:
        from . import unet
    except ImportError:
        return None
    return unet


def segment_image(segmenter: Segmenter, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask (uint8 H x W, 1..K) and probabilities (float32 K x H x W) of one image in one pass.

    A pixel classifier applies its post-processing to the mask; other models give the most probable
    class (what their ``predict`` does).
    """
    proba = segmenter.predict_proba(image)
    if isinstance(segmenter, PixelClassifier):
        return segmenter.predict(image, proba=proba), proba
    return (proba.argmax(0) + 1).astype(np.uint8), proba


def segment_file(segmenter: Segmenter, path: str | os.PathLike, probabilities: str | os.PathLike | None = None
                 ) -> np.ndarray:
    """Mask (uint8 H x W, 1..K) of one image file; with ``probabilities``, also its class probabilities
    written there (float32 K x H x W TIFF, axes CYX, the class names in its metadata).

    A pixel classifier reads the file's uint8 / uint16 (a memory map for an uncompressed TIFF),
    classifies it tile by tile, writes each tile's probabilities into a memory-mapped TIFF and frees the
    scan before the whole-mask clean-up: about 2.8 GB at 20000 x 20000 RGB (scan 1.2 GB, then mask 0.4 GB
    + the clean-up's labels 1.6 GB). Other models get the float scan and give their ``predict`` (their
    probabilities are computed whole).
    """
    if not isinstance(segmenter, PixelClassifier):
        image = io.read_image(path)
        if probabilities is None:
            return segmenter.predict(image)
        mask, proba = segment_image(segmenter, image)
        with io.atomic_path(probabilities) as tmp:
            tifffile.imwrite(tmp, proba, photometric="minisblack", metadata=_proba_metadata(segmenter))
        return mask
    scan = io.read_scan(path, convert=False)
    if probabilities is None:
        mask = segmenter.predict(scan.pixels, clean=False)
    else:
        mask = np.empty(scan.pixels.shape[:2], np.uint8)
        shape = (len(segmenter.classes), *mask.shape)
        with io.atomic_path(probabilities) as tmp:
            planes = tifffile.memmap(tmp, shape=shape, dtype=np.float32, photometric="minisblack",
                                     metadata=_proba_metadata(segmenter))
            for (rows, cols), tile in segmenter.proba_tiles(scan.pixels):
                planes[:, rows, cols] = tile
                mask[rows, cols] = best_class(tile, segmenter.classes, segmenter.postprocess)
            planes.flush()
            del planes
    del scan  # the only reference to the pixels: freed (or unmapped) before the clean-up
    return clean_mask(mask, segmenter.classes, segmenter.postprocess)


def _proba_metadata(segmenter: Segmenter) -> dict[str, Any]:
    return {"axes": "CYX", "classes": list(segmenter.classes)}
