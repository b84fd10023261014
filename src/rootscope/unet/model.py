"""A small U-Net (Ronneberger et al. 2015) in plain PyTorch, and the model file that carries it.

The network maps ``N x C x H x W`` images to ``N x K x H x W`` logits (same size: padded 3 x 3
convolutions). ``H`` and ``W`` must be multiples of ``2 ** depth``; the tiling in
:mod:`rootscope.unet.predict` takes care of that. The model file is a ``torch.save`` of a plain dict
(weights + metadata, ``format: "rootscope-unet"``) that is read back with ``weights_only=True``:
no pickled code is ever executed.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .. import __version__
from ..errors import ModelError
from ..io import atomic_path

FORMAT = "rootscope-unet"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a U-Net.

    ``depth`` is the number of 2 x down-samplings; ``width`` the channels of the first level (doubled
    at each level); ``norm`` is ``"batch"`` or ``"group"``; ``up`` is ``"bilinear"`` (interpolation then
    1 x 1 convolution) or ``"transpose"`` (2 x 2 transposed convolution).
    """

    in_channels: int = 3
    out_channels: int = 2
    depth: int = 4
    width: int = 16
    norm: str = "batch"
    up: str = "bilinear"

    def __post_init__(self) -> None:
        if self.norm not in ("batch", "group"):
            raise ModelError(f"U-Net norm must be 'batch' or 'group' (got {self.norm!r}).")
        if self.up not in ("bilinear", "transpose"):
            raise ModelError(f"U-Net up-sampling must be 'bilinear' or 'transpose' (got {self.up!r}).")
        if not 1 <= self.depth <= 6 or self.width < 2 or self.in_channels < 1 or self.out_channels < 1:
            raise ModelError(f"U-Net settings out of range: {self}.")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this many pixels."""
        return 2**self.depth


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(min(8, channels // 2) or 1, channels)


class ConvBlock(nn.Sequential):
    """Two (3 x 3 convolution, normalisation, ReLU) layers."""

    def __init__(self, c_in: int, c_out: int, norm: str) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), _norm(norm, c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), _norm(norm, c_out), nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Double the size, halve the channels, concatenate the skip connection, convolve."""

    def __init__(self, c_in: int, c_out: int, norm: str, up: str) -> None:
        super().__init__()
        if up == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(c_in, c_out, 1)
            )
        self.conv = ConvBlock(2 * c_out, c_out, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """U-Net: an encoder of ``depth`` levels, a bottleneck, a mirrored decoder and a 1 x 1 head."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.width * 2**level for level in range(config.depth + 1)]
        self.down = nn.ModuleList([ConvBlock(config.in_channels, widths[0], config.norm)])
        self.down.extend(ConvBlock(widths[i], widths[i + 1], config.norm) for i in range(config.depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            Up(widths[i + 1], widths[i], config.norm, config.up) for i in reversed(range(config.depth))
        )
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)


def fuse_batchnorm(model: UNet) -> UNet:
    """A copy of an eval-mode BatchNorm U-Net with each BatchNorm folded into its convolution (faster)."""
    fused = copy.deepcopy(model).eval()
    for block in fused.modules():
        if isinstance(block, ConvBlock):
            for i in (0, 3):
                block[i] = fuse_conv_bn_eval(block[i], block[i + 1])
                block[i + 1] = nn.Identity()
    return fused


# ------------------------------------------------------------------------------------ model file
def save_model_file(path: str | os.PathLike, model: UNet, meta: dict[str, Any], **extra: Any) -> Path:
    """Write weights + metadata atomically as a rootscope U-Net file.

    ``meta`` holds plain data (classes, normalisation, tile, training summary, metrics, task);
    ``extra`` adds resumable training state (optimizer, epoch...) to checkpoints.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rootscope_version": __version__,
        "architecture": asdict(model.config),
        **meta,
        "state_dict": state,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def is_unet_model(path: str | os.PathLike) -> bool:
    """True when ``path`` is a rootscope U-Net file (cheap check; never unpickles code)."""
    try:
        return _read_payload(Path(path)).get("format") == FORMAT
    except (ModelError, OSError):
        return False


def _read_payload(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"{path}: model file not found.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for foreign files
        raise ModelError(
            f"{path}: not a rootscope U-Net model file ({type(exc).__name__}). Train one with "
            "`rootscope unet train`, or pass a pixel-classifier model made by `rootscope pixel train`."
        ) from exc
    if not isinstance(payload, dict):
        raise ModelError(f"{path}: not a rootscope U-Net model file (holds a {type(payload).__name__}).")
    return payload


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a rootscope U-Net file (safely, ``weights_only``) and check its format marker and version."""
    path = Path(path)
    payload = _read_payload(path)
    if payload.get("format") != FORMAT:
        raise ModelError(
            f"{path}: this file was not written by rootscope's U-Net (no '{FORMAT}' marker); it may come "
            "from another tool. Train a model with `rootscope unet train`."
        )
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(
            f"{path}: written by a newer rootscope ({payload.get('rootscope_version')}); upgrade rootscope "
            f"(this is {__version__})."
        )
    return payload


def build_model(payload: dict[str, Any], path: str | os.PathLike = "<model>") -> UNet:
    """The network of a model payload with its weights loaded, in eval mode on the CPU."""
    try:
        model = UNet(UNetConfig(**payload["architecture"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"{path}: model file is damaged or incomplete ({exc}). Retrain the model.") from exc
    return model.eval()
