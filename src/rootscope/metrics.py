"""Accuracy measures: overlap of masks, matching of points, length errors.

All functions are pure: arrays in, numbers out. Point coordinates may be (x, y) or (row, col), as
long as both sets use the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree


def confusion(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of two boolean masks."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {truth.shape}")
    tp = int(np.count_nonzero(pred & truth))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(truth)) - tp


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice = F1 of two boolean masks (1.0 when both are empty)."""
    tp, fp, fn = confusion(pred, truth)
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2.0 * tp / denom


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    tp, fp, fn = confusion(pred, truth)
    denom = tp + fp + fn
    return 1.0 if denom == 0 else tp / denom


def precision_recall(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Pixel precision and recall of a boolean mask (1.0 where undefined)."""
    tp, fp, fn = confusion(pred, truth)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


def per_class_scores(pred: np.ndarray, truth: np.ndarray, n_classes: int, ignore: int | None = None) -> dict[int, dict[str, float]]:
    """Dice, IoU, precision and recall per class index of two label images.

    Pixels where ``truth == ignore`` are left out (e.g. 0 = unlabelled in sparse labels).
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    keep = np.ones(truth.shape, bool) if ignore is None else truth != ignore
    scores: dict[int, dict[str, float]] = {}
    for k in range(n_classes):
        if k == ignore:
            continue
        p, t = (pred == k) & keep, (truth == k) & keep
        precision, recall = precision_recall(p, t)
        scores[k] = {"dice": dice(p, t), "iou": iou(p, t), "precision": precision, "recall": recall}
    return scores


@dataclass
class PointMatch:
    """Result of one-to-one matching of predicted points to true points within a radius."""

    tp: int
    fp: int
    fn: int
    pairs: np.ndarray  # K x 2 indices (predicted, true)
    distances: np.ndarray  # K distances of the matched pairs

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 1.0 if denom == 0 else 2.0 * self.tp / denom

    @property
    def mean_error(self) -> float:
        """Mean distance of matched pairs (NaN when nothing matched)."""
        return float(self.distances.mean()) if len(self.distances) else float("nan")


def match_points(pred: np.ndarray, truth: np.ndarray, radius: float) -> PointMatch:
    """Match predicted to true points one to one (Hungarian), counting pairs closer than ``radius``.

    Each point is used at most once, so duplicates of one prediction count as false positives.
    A pair at exactly ``radius`` matches.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    empty = np.zeros((0, 2), dtype=int)
    if len(pred) == 0 or len(truth) == 0:
        return PointMatch(0, len(pred), len(truth), empty, np.zeros(0))
    # Sparse candidate pairs keep this fast for thousands of points.
    tree = cKDTree(truth)
    candidates = tree.query_ball_point(pred, r=radius + 1e-9)
    big = 1e6
    rows = [i for i, c in enumerate(candidates) if c]
    if not rows:
        return PointMatch(0, len(pred), len(truth), empty, np.zeros(0))
    cols = sorted({j for i in rows for j in candidates[i]})
    col_index = {j: k for k, j in enumerate(cols)}
    cost = np.full((len(rows), len(cols)), big)
    for r, i in enumerate(rows):
        for j in candidates[i]:
            cost[r, col_index[j]] = np.hypot(*(pred[i] - truth[j]))
    ri, ci = linear_sum_assignment(cost)
    ok = cost[ri, ci] <= radius + 1e-9
    pairs = np.stack([np.asarray(rows)[ri[ok]], np.asarray(cols)[ci[ok]]], axis=1) if ok.any() else empty
    tp = int(ok.sum())
    return PointMatch(tp, len(pred) - tp, len(truth) - tp, pairs, cost[ri[ok], ci[ok]])


def match_points_ignoring(pred: np.ndarray, truth: np.ndarray, ignored: np.ndarray, radius: float) -> PointMatch:
    """:func:`match_points` against ``truth``, where a prediction left unmatched that matches one of the
    ``ignored`` true points (one that may be found or not, e.g. a lateral still inside its parent's
    outline) counts neither as a false positive nor as found."""
    match = match_points(pred, truth, radius)
    rest = np.delete(np.asarray(pred, dtype=np.float64).reshape(-1, 2), match.pairs[:, 0], axis=0)
    spared = match_points(rest, ignored, radius).tp
    return PointMatch(match.tp, match.fp - spared, match.fn, match.pairs, match.distances)


def relative_error(measured: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``|measured - true| / true`` element-wise (NaN where true is 0)."""
    measured = np.asarray(measured, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(true != 0, np.abs(measured - true) / np.abs(true), np.nan)
