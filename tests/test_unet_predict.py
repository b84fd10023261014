"""U-Net inference: mirrored tile reads, fitted tile grids, blend weights, the fast inference model, input types."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rootscope.errors import ConfigError, InputError
from rootscope.unet import UNet, UNetConfig, predict_tiled, select_runtime
from rootscope.unet.predict import Segmenter, TileGrid, class_mask, inference_model, mirror_index
from rootscope.unet import runtime
from rootscope.unet.runtime import Runtime

FP32 = Runtime(torch.device("cpu"), None, channels_last=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def trained_like(config: UNetConfig, seed: int = 0) -> UNet:
    """A U-Net with random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = UNet(config).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    return model


def test_mirror_index_matches_numpy_reflect_padding():
    for size in (1, 2, 3, 7, 40):
        padded = np.pad(np.arange(size), 100, mode="reflect")
        for start in (-60, -13, -1, 0, 5, size - 3):
            index = mirror_index(start, 50, size)
            assert np.array_equal(np.arange(size)[index], padded[100 + start : 150 + start])
    assert mirror_index(3, 10, 20) == slice(3, 13)


def test_fitted_grid_covers_the_image_with_no_more_tiles_and_blend_weights_sum_to_one():
    for size in (1, 37, 96, 500, 2000, 5000):
        for tile, overlap, multiple in ((512, 64, 16), (768, 64, 16), (64, 48, 4), (64, 16, 8)):
            full, fit = TileGrid(size, tile, overlap), TileGrid.fit(size, tile, overlap, multiple)
            assert fit.tile <= tile and fit.tile % multiple == 0 and fit.n <= full.n
            assert fit.length >= size + 2 * fit.pad
            total = np.zeros(size)
            for span in fit.spans():
                total[span.into] += span.weight
            assert np.allclose(total, 1.0, atol=1e-6)
    assert TileGrid.fit(2000, 768, 64, 16).tile == 752  # 3 tiles of 752 px instead of 3 of 768


@pytest.mark.parametrize("norm,up", [("batch", "bilinear"), ("group", "bilinear"), ("batch", "transpose")])
def test_inference_model_gives_the_same_output(norm, up):
    model = trained_like(UNetConfig(2, 3, depth=2, width=8, norm=norm, up=up))
    x = torch.rand(2, 2, 32, 48, generator=torch.Generator().manual_seed(1))
    fast = inference_model(model, FP32)
    with torch.no_grad():
        assert torch.allclose(fast(x), model(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())


def test_tiled_output_does_not_depend_on_batch_and_tta_averages_the_flips():
    model = inference_model(trained_like(UNetConfig(1, 2, depth=2, width=4)), FP32)
    # 88 x 56 px with 48-px tiles, 16 px overlap: the grid is its own mirror image, so flipping the image
    # flips every tile in place and TTA equals the mean of the predictions of the flipped images
    image = np.random.default_rng(0).random((88, 56, 1), np.float32)
    one = predict_tiled(model, image, FP32, tile=48, overlap=16, batch=1, multiple=4)
    three = predict_tiled(model, image, FP32, tile=48, overlap=16, batch=3, multiple=4)
    assert np.abs(one - three).max() < 1e-5
    flips = [predict_tiled(model, np.ascontiguousarray(image[::a, ::b]), FP32, tile=48, overlap=16, multiple=4)
             [:, ::a, ::b] for a, b in ((1, 1), (-1, 1), (1, -1), (-1, -1))]
    tta = predict_tiled(model, image, FP32, tile=48, overlap=16, tta=True, multiple=4)
    assert np.abs(tta - np.mean(flips, axis=0)).max() < 1e-5
    assert np.abs(tta - one).max() > 1e-3  # the flips do change the output of a random network


def test_segmenter_reads_8_16_bit_grey_and_rgba_like_float():
    model = trained_like(UNetConfig(3, 2, depth=2, width=4))
    seg = Segmenter(model, ["background", "root"], [0.4, 0.5, 0.6], [0.2, 0.25, 0.3], runtime=FP32, tile=64,
                    overlap=16)
    rgb = np.random.default_rng(2).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    ref = seg.predict_proba(rgb.astype(np.float32) / 255)
    assert np.abs(seg.predict_proba(rgb) - ref).max() < 1e-5
    assert np.abs(seg.predict_proba(rgb.astype(np.uint16) * 257) - ref).max() < 1e-5
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.abs(seg.predict_proba(rgba) - ref).max() < 1e-5
    assert np.abs(seg.predict_proba(rgb[:, ::-1]) - seg.predict_proba(rgb[:, ::-1].copy())).max() < 1e-6
    grey = rgb[..., 0]
    assert np.abs(seg.predict_proba(grey) - seg.predict_proba(np.repeat(grey[..., None], 3, 2) / 255)).max() < 1e-5
    mask = seg.predict(rgb)
    assert mask.dtype == np.uint8 and np.array_equal(mask, ref.argmax(0) + 1)
    with pytest.raises(InputError, match="pixel type int32"):
        seg.predict(rgb.astype(np.int32))
    with pytest.raises(ConfigError, match="multiples of 4"):
        Segmenter(model, ["a", "b"], [0.5] * 3, [0.2] * 3, runtime=FP32, tile=66, overlap=16)
    assert seg.batch == 1  # one tile at a time is fastest on the CPU


def test_class_mask_in_row_chunks_equals_argmax():
    probs = np.random.default_rng(3).random((4, 37, 11)).astype(np.float32)
    assert np.array_equal(class_mask(probs, rows=5), (probs.argmax(0) + 1).astype(np.uint8))


def test_auto_device_prefers_cuda_then_mps_with_their_precisions(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cuda = select_runtime("auto")
    assert cuda.device.type == "cuda" and cuda.amp_dtype == torch.float16 and cuda.channels_last
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    mps = select_runtime("auto")
    assert mps.device.type == "mps" and mps.amp_dtype is None
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    cpu = select_runtime("auto")
    assert cpu.device.type == "cpu" and cpu.channels_last
    assert select_runtime("auto", "fp32") == Runtime(torch.device("cpu"), None, channels_last=False)
    monkeypatch.setattr(runtime, "cpu_bf16_ok", lambda: False)
    assert select_runtime("cpu") == Runtime(torch.device("cpu"), None, channels_last=True)
