"""The filter bank equals scipy.ndimage's Gaussian-derivative filters, and tiles equal one pass."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import ndimage as ndi

from rootscope.errors import ConfigError
from rootscope.features import (
    SCALES,
    FeatureSettings,
    compute_features,
    compute_features_tiled,
    feature_names,
    gaussian_kernel,
)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return ndi.gaussian_filter(rng.random((150, 170, 3)), (1.0, 1.0, 0)).astype(np.float32)


def _reference(channel: np.ndarray, name: str, sigma: float) -> list[np.ndarray]:
    """The features as scipy.ndimage computes them (float64, reflect borders, truncate 4)."""
    x = channel.astype(np.float64)

    def g(order: int | tuple[int, int], s: float = sigma) -> np.ndarray:
        return ndi.gaussian_filter(x, s, order=order, mode="reflect", truncate=4.0)

    if name == "gaussian":
        return [g(0)]
    if name == "log":
        return [g((2, 0)) + g((0, 2))]
    if name == "gradient":
        return [np.hypot(g((1, 0)), g((0, 1)))]
    if name == "dog":
        return [g(0) - g(0, 0.66 * sigma)]
    if name == "hessian":
        a, b, c = g((0, 2)), g((1, 1)), g((2, 0))
    else:  # structure: gradient at sigma, products smoothed at sigma / 2
        ix, iy = g((0, 1)), g((1, 0))
        a, b, c = (ndi.gaussian_filter(p, sigma / 2, mode="reflect") for p in (ix * ix, ix * iy, iy * iy))
    mean, half = (a + c) / 2, np.sqrt(((a - c) / 2) ** 2 + b * b)
    return [mean + half, mean - half]


def test_every_feature_equals_the_scipy_reference_to_1e_3(image: np.ndarray) -> None:
    settings = FeatureSettings(filters={f: SCALES for f in ("gaussian", "log", "gradient", "dog", "structure", "hessian")}, color="rgb")
    feats = compute_features(image, settings)
    names = feature_names(settings, 3)
    assert feats.shape == (150, 170, 3 * 7 * 8) == (*image.shape[:2], len(names))
    channels = {"r": 0, "g": 1, "b": 2}
    for i, name in enumerate(names):
        ch, filt, idx, sigma = re.fullmatch(r"(\w):([a-z]+)(\d?)@([\d.]+)", name).groups()
        refs = _reference(image[..., channels[ch]], filt, float(sigma))
        ref = refs[int(idx or 1) - 1]
        # relative to the filter's range (for a rank-1 tensor the smaller eigenvalue is ~0 on both sides)
        err = np.abs(feats[..., i] - ref).max() / max(np.abs(r).max() for r in refs)
        assert err < 1e-3, name


def test_tiles_with_halo_equal_one_pass(image: np.ndarray) -> None:
    whole = compute_features(image, FeatureSettings(tile=4096))
    tiled = compute_features_tiled(image, FeatureSettings(tile=64))
    assert np.abs(tiled - whole).max() <= 1e-5 * np.abs(whole).max()


def test_selection_keeps_names_and_order() -> None:
    settings = FeatureSettings(filters={"hessian": (1.0,), "gaussian": (0.3, 5.0)}, color="gray")
    assert feature_names(settings, 1) == ["gray:gaussian@0.3", "gray:hessian1@1", "gray:hessian2@1", "gray:gaussian@5"]
    image = np.zeros((80, 90), np.float32)
    image[40, 45] = 1.0
    feats = compute_features(image, settings)
    assert feats.shape == (80, 90, 4)
    assert feats[..., 1].min() < 0 and np.isclose(feats[..., 0].sum(), 1.0, atol=1e-4)  # a bright blob: negative curvature


def test_derivative_kernels_are_antisymmetric_and_sum_as_derivatives() -> None:
    k1, k2 = gaussian_kernel(3.5, 1), gaussian_kernel(3.5, 2)
    x = np.arange(k1.size) - k1.size // 2
    assert np.allclose(k1, -k1[::-1]) and np.isclose((k1 * x).sum(), 1.0, atol=1e-3)  # correlation with x gives d/dx x = 1
    assert np.isclose(k2.sum(), 0.0, atol=1e-4) and np.isclose((k2 * x**2).sum(), 2.0, atol=2e-2)  # truncation at 4 sigma: -0.6 %


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown feature filter"):
        FeatureSettings(filters={"sobel": (1.0,)})
    with pytest.raises(ConfigError, match="colour space"):
        FeatureSettings(color="cmyk")
    with pytest.raises(ConfigError, match="positive"):
        FeatureSettings(filters={"gaussian": (0.0,)})


def test_settings_round_trip_through_json_form() -> None:
    settings = FeatureSettings(filters={"dog": (1.6, 3.5)}, color="hsv", tile=256)
    assert FeatureSettings.from_dict(settings.to_dict()) == settings


@pytest.mark.parametrize("color", ["gray", "rgb", "lab"])
def test_uint8_and_uint16_scans_give_the_features_of_their_float_conversion(image: np.ndarray, color: str) -> None:
    """Scans kept as the file's integers (``io.read_scan(convert=False)``) are converted tile by tile in the
    bank: the features equal those of the float image in one pass and in tiles (to 1e-6: OpenCV's filters
    round by the buffers' alignment, 2e-9 apart here, as for any two float copies)."""
    from rootscope import io

    settings = FeatureSettings(filters={"gaussian": (1.0,), "hessian": (1.0, 3.5)}, color=color, tile=64)
    for bits in (8, 16):
        raw = io.from_float(image, bits)
        expected = compute_features(io.to_float(raw)[0], settings)
        assert np.abs(compute_features(raw, settings) - expected).max() < 1e-6
        tiled = compute_features_tiled(io.to_float(raw)[0], settings)
        assert np.abs(compute_features_tiled(raw, settings) - tiled).max() < 1e-6
