"""U-Net segmentation: train image -> mask from dense masks or sparse labels; overlap-tile inference.

``rootscope segment`` uses :func:`is_unet_model` and :func:`load_segmenter` for U-Net model files;
other heads (branching-point heat-maps) reuse :class:`UNet`, :func:`train` with their own task, and
:func:`predict_tiled`.
"""

from __future__ import annotations

from .data import NO_AUGMENT, Augment, Sample, TileSampler, load_segmentation_set
from .model import UNet, UNetConfig, build_model, is_unet_model, read_model_file, save_model_file
from .predict import Segmenter, load_segmenter, predict_tiled
from .runtime import Runtime, select_runtime
from .train import (SegmentationTask, Task, TrainConfig, TrainResult, balanced_class_weights, calibrate_biases,
                    train)

__all__ = [
    "NO_AUGMENT", "Augment", "Runtime", "Sample", "SegmentationTask", "Segmenter", "Task", "TileSampler", "TrainConfig",
    "TrainResult", "UNet", "UNetConfig", "balanced_class_weights", "build_model", "calibrate_biases", "is_unet_model",
    "load_segmentation_set", "load_segmenter", "predict_tiled", "read_model_file", "save_model_file",
    "select_runtime", "train",
]
