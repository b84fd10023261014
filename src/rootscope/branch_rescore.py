"""Second stage of branch-point detection: the heat-map's candidate peaks re-scored by boosted trees.

The heat-map alone scores some true branching points (young laterals, crowded parents) below some
false ones (bends, crossings, touching roots). Each candidate peak above a low threshold gets a few
numbers that describe the network's two outputs around it (:data:`FEATURES`): the heat-map's height
and spread, the root mask's depth there, how many roots leave it (arms crossing circles of 3, 5 and
8 work px: 2 along a root, 3 at a branching, 4 at a crossing), the distance to the nearest junction
of the mask's skeleton, and its crowding by other candidates. Gradient-boosted trees (scikit-learn),
trained on images that neither the network nor the tuning of the threshold saw, turn them into the
probability that the candidate is a true point. The trees are kept as plain arrays
(:class:`BoostedTrees`) in the model file, so detection needs neither scikit-learn nor pickled code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from .metrics import match_points

#: What each column of :func:`candidate_features` holds (work px; ``ring``: mean on a circle).
FEATURES = ("heat", "heat_mean_5px", "root_mean_3px", "root_depth_px", "arms_3px", "arms_5px", "arms_8px",
            "root_ring_3px", "root_ring_5px", "root_ring_8px", "neighbours_8px", "neighbour_best_8px",
            "heat_ring_2px_ratio", "heat_ring_4px_ratio", "junction_distance_px")
#: Candidates are the heat-map's peaks above this (recall of the candidates ~0.96 on synthetic plates).
CANDIDATE_THRESHOLD = 0.2
_ANGLES = np.linspace(0.0, 2.0 * np.pi, 32, endpoint=False)
_FAR_PX = 20.0


def _ring(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: float) -> np.ndarray:
    """``K x 32`` samples of ``values`` on circles of ``radius`` px around (rows, cols), nearest pixel."""
    h, w = values.shape
    r = np.clip(np.rint(rows[:, None] + radius * np.sin(_ANGLES)).astype(int), 0, h - 1)
    c = np.clip(np.rint(cols[:, None] + radius * np.cos(_ANGLES)).astype(int), 0, w - 1)
    return values[r, c]


def _arms(root: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Roots crossing each circle (runs of root probability > 0.5 along it) and the ring's mean probability."""
    ring = _ring(root, rows, cols, radius)
    on = ring > 0.5
    return (on & ~np.roll(on, 1, axis=1)).sum(axis=1), ring.mean(axis=1)


def _junction_distance(root: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Distance (px, at most 20) from each point to the nearest skeleton pixel of the mask with 3+ neighbours."""
    from scipy.spatial import cKDTree
    from skimage.morphology import skeletonize

    skeleton = skeletonize(root > 0.5).astype(np.uint8)
    neighbours = cv2.filter2D(skeleton, -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT) - skeleton
    junctions = np.argwhere((skeleton > 0) & (neighbours >= 3))
    if not len(junctions) or not len(rows):
        return np.full(len(rows), _FAR_PX)
    distance, _ = cKDTree(junctions).query(np.column_stack([rows, cols]), distance_upper_bound=_FAR_PX)
    return np.minimum(distance, _FAR_PX)


def _neighbours(peaks: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """For each (x, y, score) peak: how many others lie closer than ``radius`` and the best score among them
    (0 when none); pairs from a k-d tree, so memory grows with the pairs, not with the square of the peaks."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(peaks[:, :2]).query_pairs(np.nextafter(radius, 0.0), output_type="ndarray")
    a, b = (pairs[:, 0], pairs[:, 1]) if len(pairs) else (np.zeros(0, int), np.zeros(0, int))
    count = np.bincount(np.concatenate([a, b]), minlength=len(peaks))
    best = np.zeros(len(peaks))
    np.maximum.at(best, a, peaks[b, 2])
    np.maximum.at(best, b, peaks[a, 2])
    return count, best


def candidate_features(heat: np.ndarray, root: np.ndarray, min_distance: int = 3,
                       threshold: float = CANDIDATE_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Candidate peaks of a heat-map and their features.

    ``heat`` and ``root`` are the network's ``h x w`` outputs at work scale (0..1). Returns the
    candidates as ``K x 3`` work-scale (x, y, heat) from :func:`rootscope.branches.find_peaks` with
    suppression radius ``min_distance`` and ``threshold``, and ``K x len(FEATURES)`` float64 features.
    """
    from .branches import find_peaks

    heat = np.asarray(heat, np.float32)
    root = np.asarray(root, np.float32)
    peaks = find_peaks(heat, threshold, min_distance)
    if not len(peaks):
        return peaks, np.zeros((0, len(FEATURES)))
    cols = np.clip(np.rint(peaks[:, 0]).astype(int), 0, heat.shape[1] - 1)
    rows = np.clip(np.rint(peaks[:, 1]).astype(int), 0, heat.shape[0] - 1)
    score = np.maximum(peaks[:, 2], 1e-3)
    depth = cv2.distanceTransform((root > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    arms = [_arms(root, rows, cols, r) for r in (3, 5, 8)]
    neighbours, neighbour_best = _neighbours(peaks, 8.0)
    columns = [
        peaks[:, 2], cv2.blur(heat, (5, 5))[rows, cols], cv2.blur(root, (3, 3))[rows, cols], depth[rows, cols],
        *(a for a, _ in arms), *(m for _, m in arms), neighbours, neighbour_best,
        _ring(heat, rows, cols, 2).mean(axis=1) / score, _ring(heat, rows, cols, 4).mean(axis=1) / score,
        _junction_distance(root, rows, cols),
    ]
    return peaks, np.column_stack(columns).astype(np.float64)


def candidate_labels(points: np.ndarray, truth: np.ndarray, radius: float) -> np.ndarray:
    """For each (x, y) candidate: True when it is matched one-to-one to a true point within ``radius``."""
    labels = np.zeros(len(points), bool)
    if len(points) and len(truth):
        labels[match_points(np.asarray(points)[:, :2], truth, radius).pairs[:, 0]] = True
    return labels


@dataclass
class BoostedTrees:
    """Binary gradient-boosted regression trees as flat arrays: ``p = sigmoid(baseline + rate * sum of leaves)``.

    The nodes of all trees are concatenated; tree ``t`` starts at node ``roots[t]``; a leaf has
    ``feature == -1``; an inner node goes to ``left`` when ``x[feature] <= threshold`` (``x`` as
    float32, as scikit-learn compares), else to ``right``. ``depth``: the deepest leaf's depth.
    """

    baseline: float
    rate: float
    depth: int
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, seed: int = 0, trees: int = 100, leaves: int = 31,
            rate: float = 0.1, min_leaf: int = 20) -> BoostedTrees:
        """Train scikit-learn's :class:`~sklearn.ensemble.GradientBoostingClassifier` on features ``x`` and
        boolean labels ``y`` and convert it."""
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(n_estimators=trees, max_depth=None, max_leaf_nodes=leaves,
                                           min_samples_leaf=min_leaf, learning_rate=rate, random_state=seed)
        return cls.from_sklearn(model.fit(np.asarray(x, np.float32), np.asarray(y, bool)), x[:1])

    @classmethod
    def from_sklearn(cls, model: Any, example: np.ndarray) -> BoostedTrees:
        """A fitted binary ``GradientBoostingClassifier`` as arrays; ``example``: one row of features, to read
        the model's starting log-odds off its decision function (public API only)."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left", "right", "value")}
        roots, offset, depth = [], 0, 0
        for estimator in model.estimators_[:, 0]:
            t = estimator.tree_
            leaf = t.children_left < 0
            roots.append(offset)
            parts["feature"].append(np.where(leaf, -1, t.feature))
            parts["threshold"].append(t.threshold)
            parts["left"].append(np.where(leaf, 0, t.children_left) + offset)
            parts["right"].append(np.where(leaf, 0, t.children_right) + offset)
            parts["value"].append(t.value[:, 0, 0])
            offset += t.node_count
            depth = max(depth, int(t.max_depth))
        example = np.asarray(example, np.float32).reshape(1, -1)
        trees_sum = sum(e.predict(example)[0] for e in model.estimators_[:, 0])
        baseline = float(model.decision_function(example)[0] - model.learning_rate * trees_sum)
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(baseline, float(model.learning_rate), depth, np.asarray(roots, np.int64),
                   arrays["feature"].astype(np.int64), arrays["threshold"].astype(np.float64),
                   arrays["left"].astype(np.int64), arrays["right"].astype(np.int64), arrays["value"].astype(np.float64))

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Log-odds for ``K x F`` features (all trees walked together, one level per step)."""
        x = np.asarray(x, np.float32).astype(np.float64)
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        rows = np.arange(len(x))[:, None]
        for _ in range(self.depth):
            feature = self.feature[node]
            inner = feature >= 0
            left = x[rows, np.maximum(feature, 0)] <= self.threshold[node]
            node = np.where(inner, np.where(left, self.left[node], self.right[node]), node)
        return self.baseline + self.rate * self.value[node].sum(axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probability (0..1) that each row of features is a true point."""
        return 1.0 / (1.0 + np.exp(-self.decision(x)))

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (for a model file loaded with ``weights_only=True``)."""
        return {f.name: (v.tolist() if isinstance(v := getattr(self, f.name), np.ndarray) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoostedTrees:
        ints = ("roots", "feature", "left", "right")
        return cls(float(data["baseline"]), float(data["rate"]), int(data["depth"]),
                   *(np.asarray(data[k], np.int64 if k in ints else np.float64)
                     for k in ("roots", "feature", "threshold", "left", "right", "value")))


def rescore(heat: np.ndarray, root: np.ndarray, trees: BoostedTrees, min_distance: int = 3,
            threshold: float = CANDIDATE_THRESHOLD) -> np.ndarray:
    """Candidate peaks of a heat-map (``K x 3`` work-scale (x, y, score)) with the trees' probability as
    score, strongest first."""
    peaks, features = candidate_features(heat, root, min_distance, threshold)
    if not len(peaks):
        return peaks
    peaks = np.column_stack([peaks[:, :2], trees.predict(features)])
    return peaks[np.argsort(-peaks[:, 2], kind="stable")]


def training_set(outputs: Sequence[tuple[np.ndarray, np.ndarray, float]], truths: Sequence[np.ndarray], *,
                 min_distance: int = 3, radius: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the candidates of many images: ``outputs`` holds (heat, root, scale) at work
    scale, ``truths`` the full-size (x, y) points; a candidate is true when matched within ``radius`` full px."""
    from .branches import to_full

    xs, ys = [], []
    for (heat, root, scale), truth in zip(outputs, truths):
        peaks, features = candidate_features(heat, root, min_distance)
        xs.append(features)
        ys.append(candidate_labels(to_full(peaks, scale), truth, radius))
    return np.vstack(xs).reshape(-1, len(FEATURES)), np.concatenate(ys).astype(bool)
