"""Overlap-tile inference: any image size, no seams, bounded memory, optional flip TTA.

The image is mirror-padded and cut into ``tile x tile`` tiles that overlap by ``overlap`` pixels.
Each tile's output is weighted by a separable window that is 0 on its outer ``overlap // 4`` pixels
(where the convolutions see the tile border) and rises as sin^2 across the rest of the overlap, so
that the weights of neighbouring tiles add up to one: the blend is seamless, and where the network's
receptive field fits inside the overlap the result equals one pass over the whole image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import io
from ..errors import ConfigError, ModelError
from .data import as_channels
from .model import UNet, build_model, fuse_batchnorm, read_model_file
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


def check_tiling(tile: int, overlap: int, multiple: int) -> None:
    """Tiles and their steps must keep the pooling grid: multiples of ``2 ** depth``."""
    if tile % multiple or overlap % multiple or not 0 <= overlap < tile:
        raise ConfigError(
            f"tile ({tile}) and overlap ({overlap}) must be multiples of {multiple} with overlap < tile."
        )


def predict_tiled(model: torch.nn.Module, image: np.ndarray, runtime: Runtime, *, tile: int = 512,
                  overlap: int = 64, batch: int = 4, tta: bool = False, activation: str = "softmax",
                  multiple: int = 16) -> np.ndarray:
    """Network output for a normalised ``H x W x C`` float32 image, as ``K x H x W`` float32.

    ``activation`` (``softmax``, ``sigmoid`` or ``none``) is applied per tile before blending; ``tta``
    averages the four flips of each tile. Memory: the padded image plus ``K + 1`` padded planes.
    """
    check_tiling(tile, overlap, multiple)
    if activation not in ("softmax", "sigmoid", "none"):
        raise ConfigError(f"activation must be softmax, sigmoid or none (got {activation!r}).")
    h, w = image.shape[:2]
    rows, cols = TileGrid(h, tile, overlap), TileGrid(w, tile, overlap)
    padded = np.pad(image, ((rows.pad, rows.length - h - rows.pad), (cols.pad, cols.length - w - cols.pad), (0, 0)),
                    mode="reflect").transpose(2, 0, 1)
    weight = np.outer(window_1d(tile, overlap), window_1d(tile, overlap))
    acc: np.ndarray | None = None
    norm = np.zeros((rows.length, cols.length), np.float32)
    origins = [(r * rows.stride, c * cols.stride) for r in range(rows.n) for c in range(cols.n)]
    flips = [(), (2,), (3,), (2, 3)] if tta else [()]
    with torch.inference_mode():
        for start in range(0, len(origins), batch):
            chunk = origins[start : start + batch]
            x = runtime.tensor(torch.from_numpy(np.stack([padded[:, r : r + tile, c : c + tile] for r, c in chunk])))
            out = 0.0
            for dims in flips:
                with runtime.autocast():
                    y = model(x.flip(dims) if dims else x).float()
                if activation == "softmax":
                    y = y.softmax(1)
                elif activation == "sigmoid":
                    y = y.sigmoid()
                out = out + (y.flip(dims) if dims else y)
            probs = (out / len(flips)).cpu().numpy()
            if acc is None:
                acc = np.zeros((probs.shape[1], rows.length, cols.length), np.float32)
            for (r, c), p in zip(chunk, probs):
                acc[:, r : r + tile, c : c + tile] += p * weight
                norm[r : r + tile, c : c + tile] += weight
    assert acc is not None
    core = (slice(rows.pad, rows.pad + h), slice(cols.pad, cols.pad + w))
    return acc[:, core[0], core[1]] / norm[core]


class Segmenter:
    """A trained U-Net ready to segment images of any size.

    ``classes`` name the outputs; :meth:`predict_proba` gives ``K x H x W`` float32 probabilities and
    :meth:`predict` a uint8 mask with values 1..K (1 = ``classes[0]``).
    """

    def __init__(self, model: UNet, classes: list[str], mean: list[float], std: list[float], *,
                 runtime: Runtime, tile: int = 512, overlap: int = 64, batch: int = 4, tta: bool = False,
                 path: Path | None = None, meta: dict | None = None) -> None:
        check_tiling(tile, overlap, model.config.multiple)
        self.classes = classes
        self.runtime = runtime
        self.model = runtime.prepare(fuse_batchnorm(model) if model.config.norm == "batch" else model).eval()
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.tile, self.overlap, self.batch, self.tta = tile, overlap, batch, tta
        self.path = path
        self.meta = meta or {}

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.dtype.kind != "f":
            image = io.to_float(image)[0]
        image = as_channels(image, self.model.config.in_channels)
        return (image - self.mean) / self.std

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities ``K x H x W`` (float32, summing to 1) of an ``H x W [x C]`` image in [0, 1]."""
        return predict_tiled(self.model, self._prepare(image), self.runtime, tile=self.tile, overlap=self.overlap,
                             batch=self.batch, tta=self.tta, multiple=self.model.config.multiple)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Class mask (uint8, 1..K) of an ``H x W [x C]`` image in [0, 1]."""
        return (self.predict_proba(image).argmax(0) + 1).astype(np.uint8)


def load_segmenter(path: str | os.PathLike, *, device: str = "auto", precision: str = "auto",
                   tile: int | None = None, overlap: int | None = None, batch: int = 4,
                   tta: bool = False) -> Segmenter:
    """Load a U-Net segmentation model file (safely) for prediction.

    ``tile`` defaults to 512 px (or the training tile when larger), ``overlap`` to 64 px (rounded up to
    the network's multiple). Raises ModelError naming the file when it is not a U-Net segmentation model.
    """
    path = Path(path)
    payload = read_model_file(path)
    if payload.get("kind") != "segmentation":
        raise ModelError(f"{path}: is a U-Net of kind {payload.get('kind')!r}, not a segmentation model; "
                         "use the command that made it (e.g. `rootscope branches detect`).")
    model = build_model(payload, path)
    multiple = model.config.multiple
    tile = tile or max(512, int(payload.get("tile", 0)))
    overlap = overlap if overlap is not None else max(64, multiple)
    overlap = -(-overlap // multiple) * multiple
    norm = payload["normalisation"]
    return Segmenter(model, list(payload["classes"]), norm["mean"], norm["std"],
                     runtime=select_runtime(device, precision), tile=tile, overlap=overlap, batch=batch,
                     tta=tta, path=path, meta={k: v for k, v in payload.items() if k != "state_dict"})
