"""Branching points (where a lateral root leaves its parent): a U-Net heat-map, peaks, skeleton junctions.

Targets are Gaussian heat-maps around annotated points (from the synthetic ground truth, from RSML —
a child root's first point — or from a CSV of ``x,y``). The network is :class:`rootscope.unet.UNet`
trained by :func:`rootscope.unet.train` with :class:`BranchTask`: output 0 is the branching-point
heat-map (sigmoid), output 1 (optional) the root mask, so that the skeleton baseline and the fusion
need no second model. Images are worked on at ``scale`` (the shipped :data:`DEFAULT_MODEL` and
:data:`MEDIUM_MODEL`: full size; the training default and :data:`COARSE_MODEL`: half size, 4x fewer pixels),
after resizing to the resolution the model learnt when the image's px/mm is known; every point this module returns
is in full-size ``(x, y)`` pixels. With re-scoring trees in the model file, the heat-map's candidate
peaks are scored by them (:mod:`rootscope.branch_rescore`).

>>> heat = heatmap(np.array([[20.0, 30.0]]), (64, 64), sigma=2.0)
>>> find_peaks(heat, threshold=0.5)[:, :2].round().tolist()
[[20.0, 30.0]]
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from . import io, rsml
from .branch_rescore import CANDIDATE_THRESHOLD, FEATURES, BoostedTrees, rescore, training_set
from .errors import InputError, ModelError
from .metrics import match_points, match_points_ignoring

KIND = "branch-points"
POINT_SUFFIXES = (".csv", ".rsml")
#: The shipped image-only model (U-Net width 8, full size, trained on synthetic plates by
#: benchmarks/train_branch_model.py).
DEFAULT_MODEL = Path(__file__).parent / "models" / "branches_synth_w8.pt"
#: The shipped model for scans of about 11 px/mm (U-Net width 16, trained on 1500 px synthetic plates).
MEDIUM_MODEL = Path(__file__).parent / "models" / "branches_synth_11px_w16.pt"
#: The shipped half-size model (works at 7.35 px/mm): better than the default on scans coarser than ~10 px/mm.
COARSE_MODEL = Path(__file__).parent / "models" / "branches_synth_half.pt"
#: An image enlarged more than this to the network's resolution is blurrier than what it learnt: a warning says so.
MAX_ENLARGE = 1.5


# ------------------------------------------------------------------------------------ targets
def heatmap(points: np.ndarray, shape: tuple[int, int], sigma: float = 2.0) -> np.ndarray:
    """``H x W`` float32 map: the maximum of unit-height Gaussians (``sigma`` px) at ``K x 2`` (x, y) points."""
    heat = np.zeros(shape, np.float32)
    reach = int(np.ceil(3 * sigma))
    for x, y in np.asarray(points, float).reshape(-1, 2):
        c0, r0 = max(int(np.floor(x)) - reach, 0), max(int(np.floor(y)) - reach, 0)
        c1, r1 = min(int(np.floor(x)) + reach + 2, shape[1]), min(int(np.floor(y)) + reach + 2, shape[0])
        if c0 >= c1 or r0 >= r1:
            continue
        gx = np.exp(-((np.arange(c0, c1) - x) ** 2) / (2 * sigma**2))
        gy = np.exp(-((np.arange(r0, r1) - y) ** 2) / (2 * sigma**2))
        np.maximum(heat[r0:r1, c0:c1], np.outer(gy, gx).astype(np.float32), out=heat[r0:r1, c0:c1])
    return heat


def points_from_csv(path: str | os.PathLike) -> np.ndarray:
    """``K x 2`` (x, y) points from a CSV with columns ``x`` and ``y`` (px)."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the point table ({exc}); write a CSV with columns x,y.") from exc
    if not {"x", "y"} <= set(table.columns):
        raise InputError(f"{path}: needs columns x and y (has {', '.join(map(str, table.columns))}).")
    points = table[["x", "y"]].to_numpy(np.float64)
    if not np.isfinite(points).all():
        raise InputError(f"{path}: x and y must be numbers on every row (found empty or non-numeric values).")
    return points


def points_from_rsml(path: str | os.PathLike) -> np.ndarray:
    """``K x 2`` (x, y) branching points of an RSML file: the first point of each child root."""
    return rsml.branching_points(rsml.read_rsml(path))[["x", "y"]].to_numpy(np.float64).reshape(-1, 2)


def read_points(path: str | os.PathLike) -> np.ndarray:
    """Branching points (x, y) from a ``.csv`` (columns x,y) or a ``.rsml`` file."""
    path = Path(path)
    if path.suffix.lower() == ".rsml":
        return points_from_rsml(path)
    if path.suffix.lower() == ".csv":
        return points_from_csv(path)
    raise InputError(f"{path}: points must be a .csv (columns x,y) or an .rsml file.")


def synthetic_points(frame: Any) -> np.ndarray:
    """``K x 2`` (x, y) branching points of a :class:`rootscope.synth.SynthFrame` that lie inside its image."""
    xy = frame.branch_points[["x", "y"]].to_numpy(float).reshape(-1, 2)
    h, w = frame.mask.shape
    return xy[(xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)]


def synthetic_hidden(frame: Any) -> np.ndarray:
    """For each point of :func:`synthetic_points`: True when its lateral is still shorter than the
    parent's diameter there (it lies inside the parent's outline, so no image or mask shows it)."""
    hidden = [child.points[0, :2] for _, child in rsml.hidden_laterals(frame.scene)]
    xy = synthetic_points(frame)
    if not hidden or not len(xy):
        return np.zeros(len(xy), bool)
    gap = np.hypot(*(xy[:, None, :] - np.asarray(hidden)[None, :, :]).transpose(2, 0, 1)).min(axis=1)
    return gap < 1e-3


def find_point_file(folder: str | os.PathLike, stem: str) -> Path | None:
    """``folder/<stem>.csv`` or ``folder/<stem>.rsml`` (first found), else None."""
    for suffix in POINT_SUFFIXES:
        path = Path(folder) / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


# ------------------------------------------------------------------------------------ samples
@dataclass(frozen=True)
class BranchSettings:
    """What the branch network sees and predicts.

    ``scale``: work resolution relative to the image; ``sigma``: heat-map Gaussian in work px;
    ``mask_input``: the root mask is an extra input channel; ``mask_head``: a second output learns the
    root mask (for the skeleton baseline and fusion); ``radius``: matching radius in full-size px used
    for the validation F1; ``pos_weight``: extra loss weight on heat-map pixels (x target value);
    ``work_px_per_mm``: the resolution the network was trained at (training px/mm x ``scale``), so that an
    image of another resolution is resized to it at detection (None: unknown, ``scale`` is used as is).
    """

    scale: float = 0.5
    sigma: float = 2.0
    mask_input: bool = False
    mask_head: bool = True
    radius: float = 6.0
    pos_weight: float = 20.0
    work_px_per_mm: float | None = None


def _resize(array: np.ndarray, scale: float, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    if scale == 1.0:
        return array
    h, w = array.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    out = cv2.resize(array, size, interpolation=interpolation)
    return out.reshape(size[1], size[0], *array.shape[2:])


def work_image(image: np.ndarray, mask: np.ndarray | None, settings: BranchSettings,
               colour: int | None = None) -> np.ndarray:
    """The network input at work scale: ``h x w x C`` float32 (``colour`` channels, default as given:
    grey 1 or RGB 3; + the root mask channel when ``settings.mask_input``)."""
    from .unet.data import as_channels, image_channels

    image = as_channels(image, colour or image_channels(np.asarray(image)))
    channels = [_resize(image, settings.scale)]
    if settings.mask_input:
        if mask is None:
            raise InputError("this branch model reads the root mask as an input channel; give a mask.")
        channels.append(_resize((np.asarray(mask) > 0).astype(np.float32), settings.scale)[..., None])
    return np.concatenate(channels, axis=2)


def make_sample(image: np.ndarray, points: np.ndarray, mask: np.ndarray | None = None, *,
                settings: BranchSettings = BranchSettings(), name: str = "", seed: int = 0,
                colour: int | None = None) -> Any:
    """A training :class:`rootscope.unet.Sample` from an image, its (x, y) branching points and root mask.

    The target is ``h x w x 1`` (heat-map) or ``h x w x 2`` (+ root mask when ``settings.mask_head``)
    at work scale. Tiles favour three groups equally: the points (jittered by up to a quarter tile
    so the network sees them anywhere in a tile), root pixels (hard negatives: crossings, bends) and,
    through the sampler's random share, background.
    """
    from .unet import Sample

    if settings.mask_head and mask is None:
        raise InputError(f"{name or 'image'}: the branch model learns the root mask too; give a mask "
                         "or train without the mask head.")
    x = work_image(image, mask, settings, colour)
    h, w = x.shape[:2]
    pts = np.asarray(points, float).reshape(-1, 2) * settings.scale
    channels = [heatmap(pts, (h, w), settings.sigma)]
    rng = np.random.default_rng(seed)
    focus = []
    if len(pts):
        centres = np.repeat(pts[:, ::-1], 8, axis=0) + rng.uniform(-24, 24, (8 * len(pts), 2))
        focus.append(np.clip(np.rint(centres), 0, [h - 1, w - 1]).astype(np.int32))
    if mask is not None:
        root = _resize((np.asarray(mask) > 0).astype(np.float32), settings.scale, cv2.INTER_LINEAR)
        if settings.mask_head:
            channels.append(root)
        on = np.argwhere(root > 0.5).astype(np.int32)
        if len(on):
            focus.append(on[rng.choice(len(on), min(len(on), 50_000), replace=False)])
    return Sample(x, np.stack(channels, axis=2), focus, name)


# ------------------------------------------------------------------------------------ peaks
def find_peaks(heat: np.ndarray, threshold: float = 0.5, min_distance: int = 3) -> np.ndarray:
    """Local maxima of an ``H x W`` map: non-maximum suppression in a disc of ``min_distance`` px.

    Returns ``K x 3`` float (x, y, score), strongest first; positions are refined to sub-pixel by
    the weighted centroid of the 3 x 3 neighbourhood. A flat top gives one peak (its centre).
    """
    heat = np.asarray(heat, np.float32)
    size = 2 * int(min_distance) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    top = (heat >= cv2.dilate(heat, kernel)) & (heat >= threshold)
    n, _, _, centroids = cv2.connectedComponentsWithStats(top.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros((0, 3))
    cx, cy = centroids[1:, 0], centroids[1:, 1]
    r = np.clip(np.rint(cy).astype(int), 0, heat.shape[0] - 1)
    c = np.clip(np.rint(cx).astype(int), 0, heat.shape[1] - 1)
    padded = np.pad(heat, 1, mode="edge")
    dr, dc = np.mgrid[-1:2, -1:2]
    win = padded[r[:, None, None] + 1 + dr, c[:, None, None] + 1 + dc]
    win = np.maximum(win - win.min(axis=(1, 2), keepdims=True), 1e-12)
    x = c + (win * dc).sum((1, 2)) / win.sum((1, 2))
    y = r + (win * dr).sum((1, 2)) / win.sum((1, 2))
    peaks = np.stack([x, y, heat[r, c]], axis=1)
    return peaks[np.argsort(-peaks[:, 2], kind="stable")]


def _torch_peaks(heat: Any, threshold: float, min_distance: int) -> list[np.ndarray]:
    """(x, y, score) peaks of each ``N x H x W`` tensor map (square NMS; for validation)."""
    import torch.nn.functional as F

    size = 2 * min_distance + 1
    top = (heat >= F.max_pool2d(heat[:, None], size, 1, min_distance)[:, 0]) & (heat >= threshold)
    out = []
    for k in range(len(heat)):
        rc = top[k].nonzero().numpy()
        out.append(np.column_stack([rc[:, 1], rc[:, 0], heat[k][top[k]].numpy()]) if len(rc) else np.zeros((0, 3)))
    return out


# ------------------------------------------------------------------------------------ the task
@dataclass
class BranchTask:
    """Heat-map regression (+ optional root mask) for :func:`rootscope.unet.train`.

    Loss: binary cross-entropy of the sigmoid heat-map against the Gaussian target, each pixel weighted
    ``1 + pos_weight x target`` (the rare positive pixels count as much as the background), plus plain
    binary cross-entropy of the root-mask output. ``score`` is the best F1 (radius in work px) of peaks
    over thresholds 0.1..0.9 on the validation tiles; ``threshold`` is the one that gave it.
    """

    settings: BranchSettings = BranchSettings()

    @property
    def n_outputs(self) -> int:
        return 1 + int(self.settings.mask_head)

    def loss(self, logits: Any, target: Any) -> Any:
        import torch.nn.functional as F

        heat_t = target[:, 0]
        weight = 1.0 + self.settings.pos_weight * heat_t
        loss = (F.binary_cross_entropy_with_logits(logits[:, 0], heat_t, reduction="none") * weight).mean()
        if self.settings.mask_head:
            loss = loss + F.binary_cross_entropy_with_logits(logits[:, 1], target[:, 1])
        return loss

    def metrics(self, logits: Any, target: Any) -> dict[str, float]:
        heat = logits[:, 0].float().sigmoid()
        radius = self.settings.radius * self.settings.scale
        truth = _torch_peaks(target[:, 0].float(), 0.5, 2)
        candidates = _torch_peaks(heat, 0.05, 2)
        best = {"f1": -1.0}
        for t in np.round(np.arange(0.1, 0.95, 0.05), 2):
            tp = fp = fn = 0
            for pred, true in zip(candidates, truth):
                m = match_points(pred[pred[:, 2] >= t, :2], true[:, :2], radius)
                tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
            f1 = 2 * tp / max(2 * tp + fp + fn, 1)
            if f1 > best["f1"]:
                best = {"f1": f1, "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
                        "threshold": float(t)}
        out = {**best, "score": best["f1"]}
        if self.settings.mask_head:
            pred, true = logits[:, 1] > 0, target[:, 1] > 0.5
            inter = float((pred & true).sum())
            out["dice_root"] = 2 * inter / max(float(pred.sum() + true.sum()), 1.0)
        return out

    def meta(self) -> dict[str, Any]:
        outputs = ["branch_heatmap"] + (["root"] if self.settings.mask_head else [])
        return {"kind": KIND, "classes": outputs, "branch_settings": asdict(self.settings)}


def default_config(time_limit: float | None = None, **changes: Any) -> Any:
    """Training settings for branch points: 64 work-px tiles (128 px of the image), a 3-level U-Net of
    width 8, 80 % of training tiles near points or on roots, validation tiles anywhere (points as
    frequent as in whole images, so the validation threshold is not biased low), no blur (it erases
    just-emerged laterals)."""
    from .unet import Augment, TrainConfig

    base = {"epochs": 200, "time_limit": time_limit, "tile": 64, "batch": 16, "tiles_per_epoch": 256,
            "val_tiles": 128, "focus_fraction": 0.8, "val_focus_fraction": 0.0, "depth": 3, "width": 8,
            "lr": 5e-3, "patience": 200, "augment": Augment(p_blur=0.0)}
    return TrainConfig(**{**base, **changes})


def train_branches(samples: Sequence[Any], out: str | os.PathLike, config: Any = None, *,
                   settings: BranchSettings = BranchSettings(), meta: dict[str, Any] | None = None,
                   resume: bool = False, report: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Train a branch-point U-Net on samples from :func:`make_sample`; writes the model file ``out``.

    ``config`` is a :class:`rootscope.unet.TrainConfig` (default: :func:`default_config`). Once
    training stops, the best model's peak threshold is tuned on the whole validation images
    (:func:`tune_threshold`). Returns the :class:`rootscope.unet.TrainResult`.
    """
    from .unet import train

    config = config or default_config()
    if not samples:
        raise InputError("no training images with branching points.")
    if not any(len(s.focus) and len(s.focus[0]) for s in samples):
        raise InputError("no branching point in any training image; annotate some before training.")
    return train(samples, BranchTask(settings), out, config, meta=meta, resume=resume, report=report,
                 finish=lambda best: tune_threshold(best, samples, config))


def _pooled_f1(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray], radius: float) -> float:
    tp = fp = fn = 0
    for pred, true in zip(preds, truths):
        m = match_points(pred[:, :2], true, radius)
        tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
    return 2 * tp / max(2 * tp + fp + fn, 1)


THRESHOLDS = np.round(np.arange(0.1, 0.96, 0.05), 2)
NMS_PX = (1, 2, 3, 4)
#: Test-time augmentation choices: 1 = none, 4 = the four flips, 8 = the eight rotations and flips.
TTA_CHOICES = (1, 4, 8)


def tune_detection(predict: Callable[[int], Sequence[BranchPrediction]], truths: Sequence[np.ndarray],
                   settings: BranchSettings, *, tta: Sequence[int] = TTA_CHOICES,
                   junctions: Callable[[BranchPrediction], np.ndarray] | None = None) -> dict[str, Any]:
    """Detection settings of the best pooled F1 on validation images.

    ``predict(n)`` gives the validation predictions with ``n``-fold test-time augmentation;
    ``truths`` their full-size (x, y) points. For each ``tta`` choice the peak threshold and the
    non-maximum-suppression radius (``nms_px``, work px) are searched; the choice with the best F1
    wins (ties: the cheaper one). With ``junctions`` (skeleton points of a prediction, full size)
    the :func:`fuse` levels are then tuned for the winner. Returns ``{"tta", "threshold", "nms_px",
    "f1"[, "fusion"], "candidates"}`` (``candidates``: the best of each ``tta`` choice).
    """
    candidates, kept = [], {}
    for n in tta:
        predictions = list(predict(n))
        best: dict[str, Any] = {"tta": int(n), "f1": -1.0}
        for nms in NMS_PX:
            peaks = [to_full(find_peaks(p.heat, 0.05, nms), p.scale) for p in predictions]
            for t in THRESHOLDS:
                f1 = _pooled_f1([c[c[:, 2] >= t] for c in peaks], truths, settings.radius)
                if f1 > best["f1"]:
                    best = {"tta": int(n), "threshold": float(t), "nms_px": nms, "f1": f1}
        candidates.append(best)
        if max(candidates, key=lambda c: c["f1"]) is best:
            kept = {"best": best, "predictions": predictions}
    best = dict(kept["best"])
    if junctions is not None:
        predictions = kept["predictions"]
        peaks = [to_full(find_peaks(p.heat, 0.05, best["nms_px"]), p.scale) for p in predictions]
        best["fusion"] = _tune_fusion(peaks, predictions, [junctions(p) for p in predictions], truths,
                                      settings.radius)
    return {**best, "candidates": candidates}


def _tune_fusion(peaks: Sequence[np.ndarray], predictions: Sequence[BranchPrediction], points: Sequence[np.ndarray],
                 truths: Sequence[np.ndarray], radius: float) -> dict[str, float]:
    """The :func:`fuse` levels of the best pooled F1 for full-size ``peaks`` (any score) and skeleton ``points``."""
    fusion = {"f1": -1.0}
    for support in np.round(np.arange(0.05, 0.65, 0.05), 2):
        for strong in THRESHOLDS:
            fused = [fuse(pk, j, p, support=support, strong=strong, radius=radius)
                     for pk, j, p in zip(peaks, points, predictions)]
            f1 = _pooled_f1(fused, truths, radius)
            if f1 > fusion["f1"]:
                fusion = {"support": float(support), "strong": float(strong), "f1": f1}
    return fusion


def fit_rescorer(predictions: Sequence[BranchPrediction], truths: Sequence[np.ndarray], settings: BranchSettings,
                 nms_px: int, *, seed: int = 0) -> BoostedTrees:
    """Boosted trees that re-score the candidate peaks (:mod:`rootscope.branch_rescore`), trained on the
    predictions of images that neither trained the network nor tune the thresholds; ``truths``: their
    full-size (x, y) points."""
    if any(p.root is None for p in predictions):
        raise ModelError("re-scoring reads the network's root mask: train the branch model with its mask head.")
    x, y = training_set([(p.heat, p.root, p.scale) for p in predictions], truths, min_distance=nms_px,
                        radius=settings.radius)
    if y.all() or not y.any():
        raise InputError(f"re-scoring needs true and false candidates; these images gave {len(y)} candidates, "
                         f"{int(y.sum())} true. Use more images, with branching points.")
    return BoostedTrees.fit(x, y, seed=seed)


def tune_rescorer(trees: BoostedTrees, predictions: Sequence[BranchPrediction], truths: Sequence[np.ndarray],
                  settings: BranchSettings, nms_px: int, *,
                  junctions: Callable[[BranchPrediction], np.ndarray] | None = None) -> dict[str, Any]:
    """Score threshold (and :func:`fuse` levels, with ``junctions``) of the best pooled F1 of the re-scored
    candidates on validation predictions. Returns ``{"threshold", "f1"[, "fusion"]}``."""
    peaks = [to_full(rescore(p.heat, p.root, trees, nms_px), p.scale) for p in predictions]
    best = max(({"threshold": float(t), "f1": _pooled_f1([c[c[:, 2] >= t] for c in peaks], truths, settings.radius)}
                for t in THRESHOLDS), key=lambda c: c["f1"])
    if junctions is not None:
        best["fusion"] = _tune_fusion(peaks, predictions, [junctions(p) for p in predictions], truths,
                                      settings.radius)
    return best


def store_detection(path: str | os.PathLike, tuned: dict[str, Any], **notes: Any) -> Path:
    """Write the detection settings of :func:`tune_detection` (and ``notes``) into the model file ``path``.

    A re-scorer stored before is dropped (its threshold was tuned on the old settings): fit it again."""
    settings = {"threshold": tuned["threshold"], "nms_px": tuned["nms_px"], "tta": tuned["tta"],
                "threshold_f1_validation_images": tuned["f1"],
                **({"fusion": tuned["fusion"]} if "fusion" in tuned else {})}
    return _update_model_file(path, settings, drop=("rescorer", "fusion"), **notes)


def store_rescorer(path: str | os.PathLike, trees: BoostedTrees, tuned: dict[str, Any], **notes: Any) -> Path:
    """Write re-scoring trees and their tuned threshold (:func:`tune_rescorer`) into the model file ``path``:
    detection then thresholds the trees' scores. The heat-map's own settings stay under ``rescorer.plain``."""
    from .unet import read_model_file

    payload = read_model_file(path)
    plain = {k: payload[k] for k in ("threshold", "threshold_f1_validation_images", "fusion") if k in payload}
    plain = payload.get("rescorer", {}).get("plain", plain)
    settings = {"threshold": tuned["threshold"], "threshold_f1_validation_images": tuned["f1"],
                **({"fusion": tuned["fusion"]} if "fusion" in tuned else {}),
                "rescorer": {"trees": trees.to_dict(), "features": list(FEATURES),
                             "candidate_threshold": CANDIDATE_THRESHOLD, "plain": plain, **notes}}
    return _update_model_file(path, settings, drop=("fusion",), payload=payload)


def _update_model_file(path: str | os.PathLike, settings: dict[str, Any], drop: Sequence[str] = (),
                       payload: dict[str, Any] | None = None, **notes: Any) -> Path:
    """Rewrite the model file ``path`` (its ``payload`` when already read) with ``settings`` and ``notes``
    (keys in ``drop`` removed first)."""
    from .unet import build_model, read_model_file, save_model_file

    payload = payload if payload is not None else read_model_file(path)
    model = build_model(payload, path)
    fixed = ("format", "format_version", "rootscope_version", "architecture", "state_dict", *drop)
    return save_model_file(path, model, {**{k: v for k, v in payload.items() if k not in fixed}, **settings,
                                         **notes})


def tune_threshold(path: str | os.PathLike, samples: Sequence[Any], config: Any) -> dict[str, Any]:
    """Store in the model file the detection settings with the best F1 on the held-out validation images.

    Validation tiles are few and cut points at their edges; this runs the model on the whole
    validation images of ``train`` (same split) instead and tunes with :func:`tune_detection`
    (test-time augmentation, peak threshold, suppression radius and, with a root-mask output, the
    :func:`fuse` levels on the skeleton of the network's own mask). Returns its result.
    """
    from .unet import build_model, read_model_file, select_runtime
    from .unet.data import split_samples

    _, val = split_samples(samples, config.val_fraction, config.seed)
    payload = read_model_file(path)
    detector = BranchDetector(build_model(payload, path), payload,
                              runtime=select_runtime(config.device, config.precision))
    s = detector.settings
    truths = [to_full(find_peaks(sample.target[..., 0], 0.5, 2), s.scale)[:, :2] for sample in val]

    def junctions(p: BranchPrediction) -> np.ndarray:
        return skeleton_points(detector.root_mask(p, tuple(round(n / p.scale) for n in p.heat.shape)))

    tuned = tune_detection(lambda n: [detector.predict_work(sample.image, tta=n) for sample in val], truths, s,
                           junctions=junctions if s.mask_head else None)
    store_detection(path, tuned)
    return tuned


# ------------------------------------------------------------------------------------ detection
@dataclass
class BranchPrediction:
    """Network outputs at work scale: ``heat`` (h x w, 0..1) and ``root`` (h x w probabilities or None)."""

    heat: np.ndarray
    root: np.ndarray | None
    scale: float


def check_tta(tta: int, path: Path | None = None) -> int:
    """``tta`` if it is one of :data:`TTA_CHOICES`, else InputError."""
    if tta not in TTA_CHOICES:
        raise InputError(f"{path or 'branch model'}: test-time augmentation must be one of "
                         f"{', '.join(map(str, TTA_CHOICES))} (views averaged), not {tta}.")
    return tta


class BranchDetector:
    """A trained branch-point U-Net: heat-map (and root mask) of any image, peaks as full-size (x, y, score).

    ``tta``: views averaged before peak finding (1, 4 flips or 8 rotations and flips; default the
    model file's, tuned on validation images with the threshold it goes with).
    """

    def __init__(self, model: Any, payload: dict[str, Any], *, runtime: Any, path: Path | None = None,
                 tile: int = 512, overlap: int = 64, batch: int = 4, tta: int | None = None) -> None:
        from .unet.model import fuse_batchnorm

        self.settings = BranchSettings(**payload["branch_settings"])
        self.model = runtime.prepare(fuse_batchnorm(model) if model.config.norm == "batch" else model).eval()
        self.runtime = runtime
        norm = payload["normalisation"]
        self.mean = np.asarray(norm["mean"], np.float32)
        self.std = np.asarray(norm["std"], np.float32)
        self.threshold = float(payload.get("threshold", (payload.get("metrics") or {}).get("threshold", 0.5)))
        self.nms_px = int(payload.get("nms_px", max(1, round(self.settings.radius * self.settings.scale / 2))))
        self.fusion = payload.get("fusion")
        rescorer = payload.get("rescorer") or {}
        if rescorer and rescorer.get("features") != list(FEATURES):
            raise ModelError(f"{path or 'branch model'}: its re-scoring trees read other features than this "
                             "rootscope computes; re-fit them (benchmarks/train_branch_model.py --tune-only).")
        self.rescorer = BoostedTrees.from_dict(rescorer["trees"]) if rescorer else None
        self.candidate_threshold = float(rescorer.get("candidate_threshold", CANDIDATE_THRESHOLD))
        self.tta = check_tta(int(payload.get("tta", 1)) if tta is None else tta, path)
        self.tile, self.overlap, self.batch = tile, overlap, batch
        self.path = path
        self.meta = {k: v for k, v in payload.items() if k != "state_dict"}

    def scale_for(self, px_per_mm: float | None) -> float:
        """Work scale for an image of ``px_per_mm``: the network's training resolution over the image's
        (when both are known), else the trained ``scale``."""
        if px_per_mm is None or self.settings.work_px_per_mm is None:
            return self.settings.scale
        if px_per_mm <= 0:
            raise InputError(f"px_per_mm must be positive, not {px_per_mm}.")
        return float(self.settings.work_px_per_mm / px_per_mm)

    def predict(self, image: np.ndarray, mask: np.ndarray | None = None, *, px_per_mm: float | None = None,
                tta: int | None = None) -> BranchPrediction:
        """Heat-map and root probability of an ``H x W [x 3]`` image in [0, 1] (``mask`` if the model reads one),
        worked on at the network's training resolution when ``px_per_mm`` is given (:meth:`scale_for`);
        ``tta`` overrides the detector's test-time augmentation."""
        image = np.asarray(image)
        colour = self.model.config.in_channels - int(self.settings.mask_input)
        settings = replace(self.settings, scale=self.scale_for(px_per_mm))
        if settings.scale > MAX_ENLARGE:
            warnings.warn(f"{self.path or 'branch model'}: an image of {px_per_mm:g} px/mm is enlarged "
                          f"{settings.scale:.1f}x to the {self.settings.work_px_per_mm:g} px/mm this network learnt, "
                          f"and finds fewer points; for scans this coarse use a model trained nearer their "
                          f"resolution ({COARSE_MODEL}, or `rootscope branches train --px-per-mm`).", stacklevel=2)
        h, w = image.shape[:2]
        same_size = (max(1, int(round(w * settings.scale))), max(1, int(round(h * settings.scale)))) == (w, h)
        if (image.dtype in (np.uint8, np.uint16) and same_size and not settings.mask_input
                and image.ndim == 3 and image.shape[2] == colour):
            # work size = scan size (_resize would copy it): the scan as read, converted tile by tile
            return self.predict_work(image, settings.scale, tta=tta)
        if image.dtype.kind != "f":
            image = io.to_float(image)[0]
        return self.predict_work(work_image(image, mask, settings, colour), settings.scale, tta=tta)

    def predict_work(self, x: np.ndarray, scale: float | None = None, *, tta: int | None = None) -> BranchPrediction:
        """Outputs for an input already at work scale (``h x w x C``, as :func:`work_image` makes it;
        ``scale``: its size relative to the image, default the trained one), averaged over ``tta`` views
        (default the detector's): 4 = the flips, 8 = the flips of the image and of its transpose. A uint8 /
        uint16 ``x`` is scaled to [0, 1] and normalised tile by tile (the same values, no full-size float copy)."""
        from .unet import predict_tiled

        tta = self.tta if tta is None else check_tta(tta, self.path)
        norm = {"mean": self.mean, "std": self.std, "unit": True} if x.dtype in (np.uint8, np.uint16) else {}
        if not norm:
            x = (x - self.mean) / self.std
        views = [x, x.transpose(1, 0, 2)] if tta == 8 else [x]
        out = None
        for k, view in enumerate(views):
            y = predict_tiled(self.model, np.ascontiguousarray(view), self.runtime, tile=self.tile,
                              overlap=self.overlap, batch=self.batch, tta=tta > 1, activation="sigmoid",
                              multiple=self.model.config.multiple, **norm)
            y = y.transpose(0, 2, 1) if k else y
            out = y if out is None else (out + y) / 2
        assert out is not None
        return BranchPrediction(out[0], out[1] if self.settings.mask_head else None,
                                self.settings.scale if scale is None else scale)

    @property
    def min_distance(self) -> int:
        """Non-maximum suppression radius in work px (tuned on validation images; else half the matching radius)."""
        return self.nms_px

    def root_mask(self, prediction: BranchPrediction, shape: tuple[int, int]) -> np.ndarray:
        """The network's own root mask at full size ``shape`` (root probability > 0.5), boolean."""
        if prediction.root is None:
            raise ModelError(f"{self.path or 'model'}: has no root-mask output; give a mask to fuse with "
                             "skeleton junctions, or detect without fusion.")
        mask = _resize((prediction.root > 0.5).astype(np.uint8), 1 / prediction.scale, cv2.INTER_NEAREST)
        out = np.zeros(shape, bool)
        h, w = min(shape[0], mask.shape[0]), min(shape[1], mask.shape[1])
        out[:h, :w] = mask[:h, :w] > 0
        return out

    def peaks(self, prediction: BranchPrediction, threshold: float | None = None) -> np.ndarray:
        """``K x 3`` full-size (x, y, score) peaks of a prediction's heat-map, or with a re-scorer its
        candidate peaks scored by the trees (threshold: the tuned one, on that score)."""
        t = self.threshold if threshold is None else threshold
        if self.rescorer is None:
            return to_full(find_peaks(prediction.heat, t, min_distance=self.min_distance), prediction.scale)
        peaks = rescore(prediction.heat, prediction.root, self.rescorer, self.min_distance, self.candidate_threshold)
        return to_full(peaks[peaks[:, 2] >= t], prediction.scale)

    def detect(self, image: np.ndarray, mask: np.ndarray | None = None, *, threshold: float | None = None,
               fuse_junctions: bool = False, px_per_mm: float | None = None, tta: int | None = None) -> np.ndarray:
        """Branching points of an image as ``K x 3`` (x, y, score), full-size px.

        With ``fuse_junctions``, skeleton branch points of the predicted root mask (or of ``mask``)
        are fused with the network peaks (:func:`fuse`). ``px_per_mm``: the image's scale, so that it is
        seen at the resolution the network was trained at. ``tta`` overrides the test-time augmentation
        (the stored threshold was tuned with the stored one).
        """
        prediction = self.predict(image, mask, px_per_mm=px_per_mm, tta=tta)
        shape = np.asarray(image).shape[:2]
        del image  # this frame's reference: a scan the caller let go of is freed before the post-processing
        peaks = self.peaks(prediction, threshold)
        if not fuse_junctions:
            return peaks
        if mask is None:
            mask = self.root_mask(prediction, shape)
        junctions = skeleton_points(mask)
        return fuse(peaks, junctions, prediction, **self.fusion_levels(threshold))

    def fusion_levels(self, threshold: float | None = None) -> dict[str, float]:
        """:func:`fuse` settings: those tuned on validation images (model file ``fusion``) or, without
        them or with another ``threshold`` ``t``, support ``t / 2`` and strong ``(1 + t) / 2``."""
        if threshold is None and self.fusion:
            return {"support": float(self.fusion["support"]), "strong": float(self.fusion["strong"]),
                    "radius": self.settings.radius}
        t = self.threshold if threshold is None else threshold
        return {"support": 0.5 * t, "strong": 0.5 * (1.0 + t), "radius": self.settings.radius}


def to_full(peaks: np.ndarray, scale: float) -> np.ndarray:
    """Work-scale (x, y, score) peaks -> full-size pixels (pixel centres kept aligned)."""
    peaks = np.asarray(peaks, float).reshape(-1, 3).copy()
    peaks[:, :2] = (peaks[:, :2] + 0.5) / scale - 0.5
    return peaks


@functools.cache
def _learnt_px_per_mm(path: Path) -> float:
    """The resolution a shipped model learnt at (its file read once per process)."""
    from .unet import read_model_file

    return float(read_model_file(path)["branch_settings"]["work_px_per_mm"])


def shipped_model_for(px_per_mm: float) -> Path:
    """The shipped model for scans of ``px_per_mm``: the one of :data:`DEFAULT_MODEL` (14.7 px/mm),
    :data:`MEDIUM_MODEL` (11 px/mm) and :data:`COARSE_MODEL` (7.35 px/mm) that learnt at the resolution
    nearest it (by ratio)."""
    return min((DEFAULT_MODEL, MEDIUM_MODEL, COARSE_MODEL),
               key=lambda path: abs(np.log(_learnt_px_per_mm(path) / px_per_mm)))


def is_branch_model(path: str | os.PathLike) -> bool:
    """True when ``path`` is a rootscope U-Net file of kind branch-points."""
    from .unet import is_unet_model, read_model_file

    return is_unet_model(path) and read_model_file(path).get("kind") == KIND


def load_branch_model(path: str | os.PathLike = DEFAULT_MODEL, *, device: str = "auto", precision: str = "auto",
                      tile: int = 512, overlap: int = 64, batch: int = 4, tta: int | None = None) -> BranchDetector:
    """Load a branch-point model file (safely) made by :func:`train_branches` (default: the shipped one).

    ``tta`` overrides the test-time augmentation stored in the file (1, 4 or 8 views).

    Raises ModelError naming the file when it is another kind of model.
    """
    from .unet import build_model, read_model_file, select_runtime

    path = Path(path)
    payload = read_model_file(path)
    if payload.get("kind") != KIND:
        raise ModelError(f"{path}: is a model of kind {payload.get('kind')!r}, not a branch-point model; train "
                         "one with `rootscope branches train`.")
    model = build_model(payload, path)
    multiple = model.config.multiple
    return BranchDetector(model, payload, runtime=select_runtime(device, precision), path=path, batch=batch, tta=tta,
                          tile=-(-tile // multiple) * multiple, overlap=-(-overlap // multiple) * multiple)


# ------------------------------------------------------------------------------------ baseline, fusion
def skeleton_points(mask: np.ndarray, seed_mask: np.ndarray | None = None) -> np.ndarray:
    """Skeleton baseline: branch points (x, y) of :func:`rootscope.architecture.find_architecture`.

    ``mask`` is a boolean ``H x W`` root mask; crossings are resolved there (two roots passing is
    no branching point).
    """
    from .architecture import find_architecture

    arch = find_architecture(np.asarray(mask) > 0, seed_mask=seed_mask)
    return arch.branch_points()[:, ::-1].reshape(-1, 2).astype(float)


def junction_points(mask: np.ndarray) -> np.ndarray:
    """Raw skeleton junctions (x, y): nodes with three or more branches, crossings included."""
    from .skeleton import skeleton_graph

    g, _ = skeleton_graph(np.asarray(mask) > 0)
    return g.nodes[g.degree() >= 3][:, ::-1].reshape(-1, 2).astype(float)


def fuse(peaks: np.ndarray, junctions: np.ndarray, prediction: BranchPrediction, *, support: float = 0.25,
         strong: float = 0.8, radius: float = 6.0) -> np.ndarray:
    """Skeleton junctions the network supports, plus strong network peaks no kept junction explains.

    A junction (x, y, full size) is kept when the heat-map reaches ``support`` within ``radius`` px
    of it; it is then moved to the nearest network peak within ``radius`` (the network places points
    on the parent's centreline, the skeleton off it), scored by the heat there. Network peaks
    (``K x 3``) scoring ``strong`` or more and farther than ``radius`` from the kept junctions are
    added (laterals too young to leave a skeleton branch). Returns ``K x 3`` (x, y, score).
    """
    from scipy.spatial import cKDTree

    peaks = np.asarray(peaks, float).reshape(-1, 3)
    junctions = np.asarray(junctions, float).reshape(-1, 2)
    h, w = prediction.heat.shape
    reach = max(1, int(round(radius * prediction.scale)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    local_max = cv2.dilate(prediction.heat.astype(np.float32), kernel)
    col = np.clip(np.rint((junctions[:, 0] + 0.5) * prediction.scale - 0.5).astype(int), 0, w - 1)
    row = np.clip(np.rint((junctions[:, 1] + 0.5) * prediction.scale - 0.5).astype(int), 0, h - 1)
    score = local_max[row, col]
    kept = np.column_stack([junctions, score])[score >= support]
    if len(peaks) and len(kept):
        dist, idx = cKDTree(peaks[:, :2]).query(kept[:, :2], distance_upper_bound=radius)
        near = np.isfinite(dist)
        kept[near, :2] = peaks[idx[near], :2]
        taken = cKDTree(kept[:, :2]).query(peaks[:, :2], distance_upper_bound=radius)[0]
        peaks = peaks[~np.isfinite(taken)]
    out = np.vstack([kept.reshape(-1, 3), peaks[peaks[:, 2] >= strong]])
    if len(out) > 1:  # two junctions moved onto one peak count once
        _, first = np.unique(np.round(out[:, :2], 3), axis=0, return_index=True)
        out = out[np.sort(first)]
    return out[np.argsort(-out[:, 2], kind="stable")]


def evaluate(pred: np.ndarray, truth: np.ndarray, radius: float = 6.0,
             ignore: np.ndarray | None = None) -> dict[str, float]:
    """Precision, recall, F1 and mean localisation error (px) of (x, y[, score]) points within ``radius``.

    ``ignore`` (one bool per true point) marks points that count neither way: missing them is no
    false negative, and a prediction that matches one (and no other true point) is no true and no false
    positive (e.g. laterals hidden inside their parent's outline, :func:`synthetic_hidden`).
    """
    pred = np.asarray(pred, float)
    pred = pred[:, :2] if pred.ndim == 2 else pred.reshape(-1, 2)
    truth = np.asarray(truth, float).reshape(-1, 2)
    ignore = np.zeros(len(truth), bool) if ignore is None else np.asarray(ignore, bool)
    m = match_points_ignoring(pred, truth[~ignore], truth[ignore], radius)
    tp, fp, fn, distances = m.tp, m.fp, m.fn, m.distances
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1,
            "error_px": float(distances.mean()) if len(distances) else float("nan")}


# ------------------------------------------------------------------------------------ file level
def load_point_set(image_dir: str | os.PathLike, points_dir: str | os.PathLike, *,
                   mask_dir: str | os.PathLike | None = None, settings: BranchSettings = BranchSettings(),
                   root_width_px: float = 5.0) -> tuple[list[Any], BranchSettings, list[str]]:
    """Training samples from images and ``<stem>.csv`` / ``<stem>.rsml`` point files of the same stem.

    Root masks (for the mask head or mask input) come from ``mask_dir`` (``<stem>.png``, root > 0) or,
    for RSML points, are drawn from the RSML at ``root_width_px``; a CSV without a mask trains no mask
    head (the returned settings say so). Returns ``(samples, settings, names of images without
    points)``. Raises InputError naming the folder when no image has a point file.
    """
    from .unet.data import find_partner, image_channels

    points_dir = Path(points_dir)
    if not points_dir.is_dir():
        raise InputError(f"{points_dir}: points folder not found.")
    pairs, skipped = [], []
    for path in io.list_images(image_dir):
        point_file = find_point_file(points_dir, path.stem)
        (pairs.append((path, point_file)) if point_file else skipped.append(path.name))
    if not pairs:
        raise InputError(f"{image_dir}: no image has a point file in {points_dir}; name them alike "
                         f"(plate1.png -> {points_dir.name}/plate1.csv with columns x,y, or plate1.rsml).")
    images = [io.read_image(path) for path, _ in pairs]
    needs_mask = settings.mask_head or settings.mask_input
    masks: list[np.ndarray | None] = []
    for (path, point_file), image in zip(pairs, images):
        mask = None
        partner = find_partner(Path(mask_dir), path.stem) if mask_dir else None
        if partner is not None:
            labels = io.read_labels(partner)
            mask = labels == 1 if 1 < labels.max() < 255 else labels > 0  # class masks: 1 = root
        elif needs_mask and point_file.suffix.lower() == ".rsml":
            mask = rsml.render_mask(rsml.read_rsml(point_file), image.shape[:2], width_px=root_width_px) > 0
        masks.append(mask)
    if needs_mask and any(m is None for m in masks):
        if settings.mask_input:
            missing = next(p for (p, _), m in zip(pairs, masks) if m is None)
            raise InputError(f"{missing}: no root mask; the mask input needs one per image (--masks MASK_DIR).")
        settings = replace(settings, mask_head=False)
    colour = max(image_channels(im) for im in images)
    samples = []
    for k, ((path, point_file), mask, image) in enumerate(zip(pairs, masks, images)):
        if mask is not None and mask.shape != image.shape[:2]:
            raise InputError(f"mask of {path} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                             f"{image.shape[1]}x{image.shape[0]}; export the mask at full size.")
        samples.append(make_sample(image, read_points(point_file), mask, settings=settings, name=path.stem,
                                   seed=k, colour=colour))
    return samples, settings, skipped
