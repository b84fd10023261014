"""ilastik-style filter bank: Gaussian-derivative features per colour channel and scale.

For every channel of the image and every selected scale ``sigma`` (pixels) the bank gives

``gaussian``   Gaussian smoothing ``G_s * I``
``log``        Laplacian of Gaussian ``I_xx + I_yy``
``gradient``   Gaussian gradient magnitude ``sqrt(I_x^2 + I_y^2)``
``dog``        difference of Gaussians ``G_s * I - G_{0.66 s} * I`` (ilastik's ratio)
``structure``  the two eigenvalues (largest first) of the structure tensor: products of the
               gradient at ``s`` smoothed at ``s / 2`` (ilastik's inner/outer scales)
``hessian``    the two eigenvalues (largest first) of the Hessian of Gaussian at ``s``

Kernels are the sampled Gaussian and its exact first/second derivatives, ``radius = int(4 s + 0.5)``,
normalised as :func:`scipy.ndimage.gaussian_filter` does (the smoothing kernel sums to one; the
derivative kernels are the analytic derivative times that normalised Gaussian). For ``s < 1`` a sampled
Gaussian is no longer band-limited, so the derivative kernels do not sum exactly to the continuous
moments (for ``s = 0.3`` the kernel has three taps); we keep scipy's definition so that results equal
the scipy reference, as ilastik keeps vigra's. Borders are mirrored without repeating the edge pixel
(scipy ``reflect`` = OpenCV ``BORDER_REFLECT``).

The filters are separable: each scale needs three row passes (orders 0, 1, 2) shared by six column
passes, done by OpenCV (multi-threaded). :func:`iter_feature_tiles` cuts a large scan into tiles with a
halo wide enough for the largest kernel, so a 10000 x 10000 scan is processed in bounded memory and the
tiles equal one pass over the whole image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .errors import ConfigError, InputError
from .io import to_float

#: ilastik's scales (pixels).
SCALES: tuple[float, ...] = (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
#: Filter name -> number of output features per channel and scale.
FILTERS: dict[str, int] = {"gaussian": 1, "log": 1, "gradient": 1, "dog": 1, "structure": 2, "hessian": 2}
#: Colour spaces: name -> channel names.
COLORS: dict[str, tuple[str, ...]] = {
    "gray": ("gray",),
    "rgb": ("r", "g", "b"),
    "lab": ("L", "a", "b"),
    "hsv": ("h", "s", "v"),
}
DOG_RATIO = 0.66
TRUNCATE = 4.0


def _default_filters() -> dict[str, tuple[float, ...]]:
    return {
        "gaussian": SCALES,
        "log": SCALES[1:],
        "gradient": SCALES[1:],
        "dog": SCALES[1:],
        "structure": SCALES[1:],
        "hessian": SCALES[1:],
    }


@dataclass(frozen=True)
class FeatureSettings:
    """Which filters at which scales (pixels), on which colour space, and the tile size (pixels).

    ``filters`` maps a filter name of :data:`FILTERS` to its scales. ``color`` is one of
    :data:`COLORS`; a grey image always gives one channel. ``background`` (pixels, opt-in; None =
    off) subtracts from each channel its Gaussian smoothing at that scale before the bank, so the
    features see local contrast and not the lighting or tint of the photo (plates shot under other
    lamps); it widens the tile halo to ``4 background``.
    """

    filters: dict[str, tuple[float, ...]] = field(default_factory=_default_filters)
    color: str = "gray"
    tile: int = 1024
    background: float | None = None

    def __post_init__(self) -> None:
        unknown = set(self.filters) - set(FILTERS)
        if unknown:
            raise ConfigError(f"unknown feature filter(s) {sorted(unknown)}; choose from {list(FILTERS)}.")
        if self.color not in COLORS:
            raise ConfigError(f"unknown colour space '{self.color}'; choose from {list(COLORS)}.")
        bad = [s for scales in self.filters.values() for s in scales if not s > 0]
        if bad:
            raise ConfigError(f"feature scales must be positive pixels (got {bad}).")
        if not any(self.filters.values()):
            raise ConfigError("no feature selected: give at least one filter with one scale.")
        if self.background is not None and not self.background > 0:
            raise ConfigError(f"background scale must be positive pixels or None (got {self.background}).")
        if self.tile < 64:
            raise ConfigError(f"feature tile must be at least 64 px (got {self.tile}).")
        object.__setattr__(self, "filters", {k: tuple(float(s) for s in v) for k, v in self.filters.items() if v})

    @property
    def scales(self) -> tuple[float, ...]:
        """All scales used by some filter, ascending."""
        return tuple(sorted({s for v in self.filters.values() for s in v}))

    @property
    def halo(self) -> int:
        """Pixels of context each output pixel depends on (the tile overlap)."""
        bank = max(_support(name, s) for name, scales in self.filters.items() for s in scales)
        return bank + (_radius(self.background) if self.background else 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        data = {"filters": {k: list(v) for k, v in self.filters.items()}, "color": self.color, "tile": self.tile}
        if self.background is not None:
            data["background"] = self.background
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSettings:
        """Inverse of :meth:`to_dict`."""
        background = data.get("background")
        return cls({k: tuple(v) for k, v in data["filters"].items()}, str(data["color"]), int(data["tile"]),
                   None if background is None else float(background))


def _radius(sigma: float) -> int:
    return max(1, int(TRUNCATE * sigma + 0.5))


def _support(name: str, sigma: float) -> int:
    if name == "structure":
        return _radius(sigma) + _radius(sigma / 2)
    return _radius(sigma)


def gaussian_kernel(sigma: float, order: int) -> np.ndarray:
    """Sampled Gaussian (order 0) or its exact derivative (1, 2), float32, length ``2 r + 1``.

    Ready for correlation (OpenCV): it equals scipy's convolution kernel reversed.
    """
    r = _radius(sigma)
    x = np.arange(-r, r + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sigma) ** 2)
    phi /= phi.sum()
    if order == 0:
        k = phi
    elif order == 1:
        k = -x / sigma**2 * phi
    elif order == 2:
        k = (x**2 / sigma**4 - 1.0 / sigma**2) * phi
    else:
        raise ValueError(f"derivative order must be 0, 1 or 2 (got {order})")
    # scipy convolves with k; OpenCV correlates: reverse (matters for odd orders).
    return np.ascontiguousarray(k[::-1], dtype=np.float32)


_ONE = np.ones(1, np.float32)


def _rows(image: np.ndarray, k: np.ndarray) -> np.ndarray:
    return cv2.filter2D(image, cv2.CV_32F, k[None, :], borderType=cv2.BORDER_REFLECT)


def _cols(image: np.ndarray, k: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    return cv2.filter2D(image, cv2.CV_32F, k[:, None], dst=dst, borderType=cv2.BORDER_REFLECT)


def _smooth(image: np.ndarray, sigma: float, dst: np.ndarray | None = None) -> np.ndarray:
    return _cols(_rows(image, gaussian_kernel(sigma, 0)), gaussian_kernel(sigma, 0), dst)


def _eigenvalues(a: np.ndarray, b: np.ndarray, c: np.ndarray, big: np.ndarray, small: np.ndarray) -> None:
    """Eigenvalues of the symmetric 2 x 2 fields ``[[a, b], [b, c]]`` into ``big`` and ``small``."""
    mean = cv2.addWeighted(a, 0.5, c, 0.5, 0.0)
    d = cv2.magnitude(cv2.addWeighted(a, 0.5, c, -0.5, 0.0), b)
    cv2.add(mean, d, dst=big)
    cv2.subtract(mean, d, dst=small)


def to_channels(image: np.ndarray, color: str) -> list[np.ndarray]:
    """Split an ``H x W`` or ``H x W x 3/4`` image into float32 channels.

    ``image`` is float in [0, 1], or uint8 / uint16 as read with ``io.read_scan(..., convert=False)``:
    converted here (by :func:`rootscope.io.to_float`), so that a tiled caller converts one tile at a time.
    Lab is scaled to about [0, 1] (L / 100, (a, b + 128) / 255); HSV hue to [0, 1].
    """
    image = np.asarray(image)
    if image.dtype in (np.uint8, np.uint16):
        image = to_float(image)[0]
    if image.ndim == 2:
        return [np.ascontiguousarray(image, dtype=np.float32)]
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"expected an H x W or H x W x 3 image, got shape {image.shape}.")
    rgb = np.ascontiguousarray(image[..., :3], dtype=np.float32)
    if color == "gray":
        return [cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)]
    if color == "lab":
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
        lab *= np.array([1 / 100, 1 / 255, 1 / 255], np.float32)
        lab[..., 1:] += 128 / 255
        rgb = lab
    elif color == "hsv":
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV) * np.array([1 / 360, 1, 1], np.float32)
    return [np.ascontiguousarray(rgb[..., i]) for i in range(3)]


def feature_names(settings: FeatureSettings, n_channels: int) -> list[str]:
    """Names of the features in the order of :func:`compute_features`, e.g. ``r:hessian1@3.5``."""
    channels = ("gray",) if n_channels == 1 else COLORS[settings.color]
    names = []
    for ch in channels:
        for sigma in settings.scales:
            for name, count in FILTERS.items():
                if sigma in settings.filters.get(name, ()):
                    suffixes = [""] if count == 1 else [str(i) for i in range(1, count + 1)]
                    names += [f"{ch}:{name}{sfx}@{sigma:g}" for sfx in suffixes]
    return names


def n_image_channels(image: np.ndarray, settings: FeatureSettings) -> int:
    """Channels the bank sees for this image (1 for grey input or ``color='gray'``)."""
    return 1 if np.asarray(image).ndim == 2 or settings.color == "gray" else 3


def _channel_features(channel: np.ndarray, settings: FeatureSettings, planes: Iterator[np.ndarray]) -> None:
    """Write the features of one channel, in :func:`feature_names` order, into the next ``planes``."""
    wanted = settings.filters
    for sigma in settings.scales:
        want = {name for name in FILTERS if sigma in wanted.get(name, ())}
        k0, k1, k2 = (gaussian_kernel(sigma, o) for o in range(3))
        r0 = _rows(channel, k0)
        if want & {"gradient", "structure", "hessian"}:
            r1 = _rows(channel, k1)
            ix, iy = _cols(r1, k0), _cols(r0, k1)
        if want & {"log", "hessian"}:
            ixx, iyy = _cols(_rows(channel, k2), k0), _cols(r0, k2)
        for name in FILTERS:
            if name not in want:
                continue
            if name == "gaussian":
                _cols(r0, k0, next(planes))
            elif name == "log":
                cv2.add(ixx, iyy, dst=next(planes))
            elif name == "gradient":
                cv2.magnitude(ix, iy, magnitude=next(planes))
            elif name == "dog":
                cv2.subtract(_cols(r0, k0), _smooth(channel, DOG_RATIO * sigma), dst=next(planes))
            elif name == "structure":
                outer = sigma / 2
                sxx, sxy, syy = (_smooth(cv2.multiply(p, q), outer) for p, q in ((ix, ix), (ix, iy), (iy, iy)))
                _eigenvalues(sxx, sxy, syy, next(planes), next(planes))
            elif name == "hessian":
                _eigenvalues(ixx, _cols(r1, k1), iyy, next(planes), next(planes))


def compute_features(image: np.ndarray, settings: FeatureSettings | None = None) -> np.ndarray:
    """Filter bank of one image in one pass: float32 ``H x W x F`` (names: :func:`feature_names`).

    ``image`` is ``H x W`` or ``H x W x 3`` float in [0, 1] (or uint8 / uint16, see :func:`to_channels`). The result is a view of a feature-major
    ``F x H x W`` block (``np.moveaxis(result, -1, 0)`` is contiguous, which is what the classifier
    reads). Use :func:`iter_feature_tiles` for scans too large to hold ``H x W x F`` floats.
    """
    settings = settings or FeatureSettings()
    channels = to_channels(image, settings.color)
    if settings.background:
        channels = [cv2.subtract(ch, _smooth(ch, settings.background)) for ch in channels]
    h, w = channels[0].shape
    block = np.empty((len(feature_names(settings, len(channels))), h, w), np.float32)
    planes = iter(block)
    for channel in channels:
        _channel_features(channel, settings, planes)
    return block.transpose(1, 2, 0)


def tiles(shape: tuple[int, int], tile: int) -> Iterator[tuple[slice, slice]]:
    """Row/column slices of ``tile x tile`` blocks covering an ``H x W`` image (row-major order)."""
    h, w = shape[:2]
    for r in range(0, h, tile):
        for c in range(0, w, tile):
            yield slice(r, min(r + tile, h)), slice(c, min(c + tile, w))


def iter_feature_tiles(
    image: np.ndarray, settings: FeatureSettings | None = None, wanted: np.ndarray | None = None
) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """Yield ``((rows, cols), features)`` per tile of ``settings.tile`` pixels.

    Each tile is computed on the tile plus a halo of :attr:`FeatureSettings.halo` pixels (mirrored
    only at the true image border), so the features equal :func:`compute_features` on the whole image.
    Peak memory is about ``(tile + 2 halo)^2 x F`` floats instead of ``H x W x F``. With ``wanted``
    (H x W, e.g. the labelled pixels of a training image) only tiles holding a wanted pixel are computed.
    """
    settings = settings or FeatureSettings()
    image = np.asarray(image)
    h, w = image.shape[:2]
    halo = settings.halo
    for rows, cols in tiles((h, w), settings.tile):
        if wanted is not None and not wanted[rows, cols].any():
            continue
        r0, r1 = max(rows.start - halo, 0), min(rows.stop + halo, h)
        c0, c1 = max(cols.start - halo, 0), min(cols.stop + halo, w)
        feats = compute_features(image[r0:r1, c0:c1], settings)
        yield (rows, cols), feats[rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0]


def compute_features_tiled(image: np.ndarray, settings: FeatureSettings | None = None) -> np.ndarray:
    """:func:`compute_features` assembled from :func:`iter_feature_tiles` (same result)."""
    settings = settings or FeatureSettings()
    h, w = np.asarray(image).shape[:2]
    block = np.empty((len(feature_names(settings, n_image_channels(image, settings))), h, w), np.float32)
    for (rows, cols), feats in iter_feature_tiles(image, settings):
        block[:, rows, cols] = np.moveaxis(feats, -1, 0)
    return block.transpose(1, 2, 0)
