"""Overlap-tile inference: any image size, no seams, bounded memory, optional flip TTA.

Tiles of at most ``tile x tile`` pixels overlap by ``overlap`` pixels; the tile side is shrunk (in
steps of the network's multiple) to the smallest that needs no more tiles, so few pixels are computed
twice. Pixels beyond the image border are mirrored (as ``np.pad(mode="reflect")``), tile by tile.
Each tile's output is weighted by a separable window that is 0 on its outer ``overlap // 4`` pixels
(where the convolutions see the tile border) and rises as sin^2 across the rest of the overlap, divided
by the sum of the windows over all tiles: the blend is seamless, and where the network's receptive
field fits inside the overlap the result equals one pass over the whole image. Tiles are normalised,
run (in the runtime's precision and memory format) and blended straight into the output, so memory
is the output, the image and a few tiles.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .. import io
from ..errors import ConfigError, ModelError
from .data import as_channels
from .model import Up, UNet, build_model, fuse_batchnorm, read_model_file
from .runtime import Runtime, select_runtime


def window_1d(tile: int, overlap: int) -> np.ndarray:
    """Blend weights along one tile side: 0 on the outer ``overlap // 4`` px, sin^2 ramps, 1 inside."""
    margin = overlap // 4
    ramp = overlap - 2 * margin
    w = np.ones(tile, np.float32)
    rise = np.sin(0.5 * np.pi * (np.arange(ramp) + 0.5) / ramp) ** 2 if ramp else np.zeros(0)
    w[:margin] = 0.0
    w[margin : margin + ramp] = rise
    w[tile - margin - ramp :] = w[: margin + ramp][::-1]
    return w


@dataclass(frozen=True)
class TileGrid:
    """Where tiles go along one axis of length ``size``: mirror ``pad`` before, ``n`` tiles every ``stride``."""

    size: int
    tile: int
    overlap: int

    @classmethod
    def fit(cls, size: int, tile: int, overlap: int, multiple: int) -> TileGrid:
        """The grid of the smallest tile side (a multiple of ``multiple``, at most ``tile``) that needs
        no more tiles than ``tile`` does: fewer pixels computed twice, the same blending."""
        full = cls(size, tile, overlap)
        step = -(-(size + 2 * full.pad - overlap) // full.n)
        return cls(size, min(tile, -(-(step + overlap) // multiple) * multiple), overlap)

    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def pad(self) -> int:
        """Mirror padding before the image: the first pixel lies where the first tile's weight is 1."""
        return self.overlap - self.overlap // 4

    @property
    def n(self) -> int:
        return max(1, -(-(self.size + 2 * self.pad - self.tile) // self.stride) + 1)

    @property
    def length(self) -> int:
        return (self.n - 1) * self.stride + self.tile

    def spans(self) -> list[Span]:
        """Each tile along this axis: what it reads, and where and with which weights its output goes."""
        window = window_1d(self.tile, self.overlap)
        total = np.zeros(self.length, np.float32)
        for i in range(self.n):
            total[i * self.stride : i * self.stride + self.tile] += window
        total = total[self.pad : self.pad + self.size]
        spans = []
        for i in range(self.n):
            start = i * self.stride - self.pad
            lo, hi = max(0, -start), min(self.tile, self.size - start)
            spans.append(Span(mirror_index(start, self.tile, self.size), slice(lo, hi),
                              slice(start + lo, start + hi), window[lo:hi] / total[start + lo : start + hi]))
        return spans


class Span(NamedTuple):
    """One tile along one axis: the image indices it reads (mirrored beyond the border), the part of the
    tile inside the image, where that part goes, and its blend weights (window / sum of all windows)."""

    read: np.ndarray | slice
    part: slice
    into: slice
    weight: np.ndarray


def mirror_index(start: int, length: int, size: int) -> np.ndarray | slice:
    """Indices of ``length`` pixels from ``start`` along an axis of ``size``, mirrored at both ends as
    ``np.pad(mode="reflect")`` does (repeatedly for short axes); a slice when no mirroring is needed."""
    if 0 <= start and start + length <= size:
        return slice(start, start + length)
    if size == 1:
        return np.zeros(length, np.intp)
    period = 2 * (size - 1)
    index = np.abs(np.arange(start, start + length)) % period
    return np.where(index >= size, period - index, index)


def read_tile(image: np.ndarray, rows: np.ndarray | slice, cols: np.ndarray | slice) -> np.ndarray:
    """``image[rows][:, cols]`` reading no more than the tile (a view when both are slices)."""
    if isinstance(rows, slice):
        return image[rows][:, cols]
    if isinstance(cols, slice):
        return image[:, cols][rows]
    return image[np.ix_(rows, cols)]


def check_tiling(tile: int, overlap: int, multiple: int) -> None:
    """Tiles and their steps must keep the pooling grid: multiples of ``2 ** depth``."""
    if tile % multiple or overlap % multiple or not 0 <= overlap < tile:
        raise ConfigError(
            f"tile ({tile}) and overlap ({overlap}) must be multiples of {multiple} with overlap < tile."
        )


def inference_model(model: UNet, runtime: Runtime) -> UNet:
    """A copy of ``model`` made faster for prediction, same outputs (to float rounding), on the runtime.

    BatchNorm is folded into the convolutions, and each bilinear up-sampling step runs its 1 x 1
    convolution before interpolating (both are linear and the interpolation weights sum to 1, so they
    commute): a quarter of the pixels and half the channels to interpolate.
    """
    fast = fuse_batchnorm(model) if model.config.norm == "batch" else copy.deepcopy(model).eval()
    for block in fast.modules():
        if isinstance(block, Up) and isinstance(block.up, nn.Sequential):
            upsample, conv = block.up
            block.up = nn.Sequential(conv, upsample)
    return runtime.prepare(fast).eval()


def predict_tiled(model: torch.nn.Module, image: np.ndarray, runtime: Runtime, *, tile: int = 512,
                  overlap: int = 64, batch: int = 4, tta: bool = False, activation: str = "softmax",
                  multiple: int = 16, mean: np.ndarray | None = None,
                  std: np.ndarray | None = None, unit: bool = False) -> np.ndarray:
    """Network output for an ``H x W x C`` image, as ``K x H x W`` float32.

    The image is fed as ``(image - mean) / std`` per channel (``mean``/``std`` None: as it is; it may be
    any numeric type when they are given), tile by tile; with ``unit``, uint8 / uint16 tiles are first
    scaled to [0, 1] as :func:`rootscope.io.to_float` does (the values of converting the whole image).
    ``tile`` is the largest tile side (px).
    ``activation`` (``softmax``, ``sigmoid`` or ``none``) is applied per tile before blending; ``tta``
    averages the four flips of each tile. Memory: the output plus ``batch`` tiles in flight.
    """
    check_tiling(tile, overlap, multiple)
    if activation not in ("softmax", "sigmoid", "none"):
        raise ConfigError(f"activation must be softmax, sigmoid or none (got {activation!r}).")
    h, w = image.shape[:2]
    tiles = [(r, c) for r in TileGrid.fit(h, tile, overlap, multiple).spans()
             for c in TileGrid.fit(w, tile, overlap, multiple).spans()]
    shift = None if mean is None else torch.as_tensor(np.asarray(mean, np.float32), device=runtime.device)
    scale = None if std is None else torch.as_tensor(np.asarray(std, np.float32), device=runtime.device)
    full = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(image.dtype) if unit else None
    flips = [(), (2,), (3,), (2, 3)] if tta else [()]
    out: torch.Tensor | None = None
    with torch.inference_mode():
        for first in range(0, len(tiles), batch):
            chunk = tiles[first : first + batch]
            x = torch.from_numpy(np.stack([read_tile(image, r.read, c.read) for r, c in chunk]))
            x = x.to(runtime.device).float()  # a fresh copy: normalised in place
            if full is not None:
                x.div_(full)
            if shift is not None:
                x.sub_(shift)
            if scale is not None:
                x.div_(scale)
            x = runtime.tensor(x.permute(0, 3, 1, 2))  # N x H x W x C memory is channels-last already
            y: torch.Tensor | None = None
            for dims in flips:
                with runtime.autocast():
                    z = model(x.flip(dims) if dims else x).float()
                z = z.softmax(1) if activation == "softmax" else z.sigmoid() if activation == "sigmoid" else z
                z = z.flip(dims) if dims else z
                y = z if y is None else y.add_(z)
            assert y is not None
            if tta:
                y.div_(len(flips))
            y = y.cpu()
            if out is None:
                out = torch.zeros((y.shape[1], h, w), dtype=torch.float32)
            for (r, c), probs in zip(chunk, y):
                weight = torch.from_numpy(np.outer(r.weight, c.weight))
                out[:, r.into, c.into].addcmul_(probs[:, r.part, c.part], weight)
    assert out is not None
    return out.numpy()


class Segmenter:
    """A trained U-Net ready to segment images of any size.

    ``classes`` name the outputs; :meth:`predict_proba` gives ``K x H x W`` float32 probabilities and
    :meth:`predict` a uint8 mask with values 1..K (1 = ``classes[0]``).
    """

    def __init__(self, model: UNet, classes: list[str], mean: list[float], std: list[float], *,
                 runtime: Runtime, tile: int = 768, overlap: int = 64, batch: int | None = None,
                 tta: bool = False, path: Path | None = None, meta: dict | None = None) -> None:
        check_tiling(tile, overlap, model.config.multiple)
        self.classes = classes
        self.runtime = runtime
        self.model = inference_model(model, runtime)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.tile, self.overlap, self.tta = tile, overlap, tta
        self.batch = batch or (1 if runtime.device.type == "cpu" else 4)
        self.path = path
        self.meta = meta or {}

    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The image with the model's channels (a view when it has them, alpha dropped) and the
        per-channel shift and scale that normalise it, 8- and 16-bit scaling to [0, 1] included."""
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., None]
        if image.shape[2] == 4:
            image = image[..., :3]
        full = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(image.dtype, 1.0)
        channels = self.model.config.in_channels
        if image.shape[2] != channels or (image.dtype.kind != "f" and full == 1.0):
            # grey <-> colour, or bool (other types raise InputError): the whole image as float in [0, 1]
            image = as_channels(image if image.dtype.kind == "f" else io.to_float(image)[0], channels)
            full = 1.0
        return image, self.mean * full, self.std * full

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities ``K x H x W`` (float32, summing to 1) of an ``H x W [x C]`` image in [0, 1]."""
        pixels, mean, std = self._prepare(image)
        return predict_tiled(self.model, pixels, self.runtime, tile=self.tile, overlap=self.overlap,
                             batch=self.batch, tta=self.tta, multiple=self.model.config.multiple, mean=mean, std=std)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Class mask (uint8, 1..K) of an ``H x W [x C]`` image in [0, 1]."""
        return class_mask(self.predict_proba(image))


def class_mask(probs: np.ndarray, rows: int = 256) -> np.ndarray:
    """Most probable class (uint8, 1..K) of ``K x H x W`` probabilities, ``rows`` image rows at a time."""
    mask = np.empty(probs.shape[1:], np.uint8)
    for r in range(0, probs.shape[1], rows):
        mask[r : r + rows] = probs[:, r : r + rows].argmax(0) + 1
    return mask


def load_segmenter(path: str | os.PathLike, *, device: str = "auto", precision: str = "auto",
                   tile: int | None = None, overlap: int | None = None, batch: int | None = None,
                   tta: bool = False) -> Segmenter:
    """Load a U-Net segmentation model file (safely) for prediction.

    ``tile`` defaults to 768 px (or the training tile when larger), ``overlap`` to 64 px (rounded up to
    the network's multiple), ``batch`` to 1 tile at a time on the CPU (fastest there) and 4 on a GPU.
    Raises ModelError naming the file when it is not a U-Net segmentation model.
    """
    path = Path(path)
    payload = read_model_file(path)
    if payload.get("kind") != "segmentation":
        raise ModelError(f"{path}: is a U-Net of kind {payload.get('kind')!r}, not a segmentation model; "
                         "use the command that made it (e.g. `rootscope branches detect`).")
    model = build_model(payload, path)
    multiple = model.config.multiple
    tile = tile or max(768, int(payload.get("tile", 0)))
    overlap = overlap if overlap is not None else max(64, multiple)
    overlap = -(-overlap // multiple) * multiple
    norm = payload["normalisation"]
    return Segmenter(model, list(payload["classes"]), norm["mean"], norm["std"],
                     runtime=select_runtime(device, precision), tile=tile, overlap=overlap, batch=batch,
                     tta=tta, path=path, meta={k: v for k, v in payload.items() if k != "state_dict"})
