"""The CUDA path: training and prediction on a GPU agree with the CPU (skipped where PyTorch sees no GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rootscope import branches as br
from rootscope.metrics import match_points
from rootscope.synth import SynthConfig, make_series
from rootscope.unet import SegmentationTask, TrainConfig, balanced_class_weights, load_segmenter, train
from rootscope.unet.runtime import select_runtime

from test_unet import segmentation_samples, toy_plate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch sees no CUDA GPU on this machine")


def test_auto_picks_the_gpu_with_half_precision():
    runtime = select_runtime("auto")
    assert runtime.device.type == "cuda" and runtime.amp_dtype == torch.float16


def test_training_on_the_gpu_learns_and_its_model_predicts_alike_on_cpu(tmp_path):
    samples = segmentation_samples(5)
    task = SegmentationTask(["background", "root"], balanced_class_weights(samples, 2))
    config = TrainConfig(epochs=8, lr=1e-2, depth=2, width=8, tile=64, batch=8, tiles_per_epoch=32, val_tiles=8,
                         device="cuda")
    result = train(samples, task, tmp_path / "toy.pt", config)
    assert result.history["dice_root"].max() > 0.85
    image, mask = toy_plate(99)
    on_gpu = load_segmenter(result.best_path, device="cuda", tile=64, overlap=32).predict(image)
    on_cpu = load_segmenter(result.best_path, device="cpu", precision="fp32", tile=64, overlap=32).predict(image)
    truth = mask == 1
    assert 2 * np.sum((on_gpu == 2) & truth) / (np.sum(on_gpu == 2) + truth.sum()) > 0.8
    assert np.mean(on_gpu == on_cpu) > 0.99  # fp16 on the GPU, fp32 on the CPU: a few edge pixels may differ


def test_shipped_branch_model_finds_the_same_points_on_gpu_and_cpu():
    frame = make_series(frames=3, seed=101, config=SynthConfig(size=2000))[-1]
    gpu, cpu = br.load_branch_model(device="cuda"), br.load_branch_model(device="cpu", precision="fp32")
    heat_gpu, heat_cpu = gpu.predict(frame.image).heat, cpu.predict(frame.image).heat
    assert np.abs(heat_gpu - heat_cpu).max() < 0.05
    on_gpu, on_cpu = gpu.detect(frame.image), cpu.detect(frame.image)
    assert len(on_cpu) > 20
    same = match_points(on_gpu[:, :2], on_cpu[:, :2], 1.0)
    assert same.tp >= 0.9 * max(len(on_gpu), len(on_cpu))  # fp16 and fp32: a point at the threshold may flip
