"""Second-stage re-scoring of branch-point candidates: features, trees as arrays, learning a toy rule."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch
from sklearn.ensemble import GradientBoostingClassifier

from rootscope import branches as br
from rootscope.branch_rescore import FEATURES, BoostedTrees, candidate_features, rescore

ARMS = FEATURES.index("arms_5px")
JUNCTION = FEATURES.index("junction_distance_px")


def _shape(kind: str, size: int = 64, centre: tuple[int, int] = (32, 32)) -> np.ndarray:
    """Root probability (0/1) of a straight root, a T (a lateral leaving) or an X (a crossing) through ``centre``."""
    root = np.zeros((size, size), np.float32)
    x, y = centre
    cv2.line(root, (x, 0), (x, size - 1), 1.0, 3)
    if kind in ("T", "X"):
        cv2.line(root, (x, y), (size - 1, y + 12), 1.0, 3)
    if kind == "X":
        cv2.line(root, (x, y), (0, y - 12), 1.0, 3)
    return root


def _blob(size: int, centre: tuple[int, int], height: float) -> np.ndarray:
    return height * br.heatmap(np.array([centre], float), (size, size), sigma=2.0)


@pytest.mark.parametrize("kind, arms", [("I", 2), ("T", 3), ("X", 4)])
def test_arms_count_the_roots_leaving_a_candidate(kind, arms):
    peaks, features = candidate_features(_blob(64, (32, 32), 0.8), _shape(kind))
    assert len(peaks) == 1 and np.allclose(peaks[0, :2], (32, 32), atol=0.5)
    assert features.shape == (1, len(FEATURES))
    assert features[0, ARMS] == arms
    # a skeleton junction lies at a branching or a crossing, none along a plain root
    assert (features[0, JUNCTION] <= 2.0) == (kind != "I")


def test_trees_as_arrays_equal_scikit_learn_and_survive_a_safe_model_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    y = (x[:, 0] * x[:, 1] > 0) ^ (x[:, 2] > 1.0)
    trees = BoostedTrees.fit(x, y, trees=40, leaves=15, min_leaf=5)
    reference = GradientBoostingClassifier(n_estimators=40, max_depth=None, max_leaf_nodes=15, min_samples_leaf=5,
                                           learning_rate=0.1, random_state=0).fit(x.astype(np.float32), y)
    test = rng.normal(size=(300, 5))
    assert np.allclose(trees.predict(test), reference.predict_proba(test.astype(np.float32))[:, 1], atol=1e-12)
    assert ((trees.predict(test) > 0.5) == ((test[:, 0] * test[:, 1] > 0) ^ (test[:, 2] > 1.0))).mean() > 0.9
    torch.save({"trees": trees.to_dict()}, tmp_path / "t.pt")
    loaded = BoostedTrees.from_dict(torch.load(tmp_path / "t.pt", weights_only=True)["trees"])
    assert np.array_equal(loaded.predict(test), trees.predict(test))


def _toy_image(rng: np.random.Generator) -> tuple[br.BranchPrediction, np.ndarray]:
    """A 128 px image: a lateral leaving a root (true point) and a same-height heat blob on a plain root."""
    size = 128
    yt, yf = rng.integers(20, 108, 2)
    root = np.maximum(_shape("T", size, (40, int(yt))), _shape("I", size, (96, int(yf))))
    heat = np.maximum(_blob(size, (40, int(yt)), rng.uniform(0.4, 0.9)), _blob(size, (96, int(yf)), rng.uniform(0.4, 0.9)))
    return br.BranchPrediction(heat, root, 1.0), np.array([[40.0, float(yt)]])


@pytest.fixture(scope="module")
def toy_trees() -> BoostedTrees:
    rng = np.random.default_rng(1)
    train = [_toy_image(rng) for _ in range(40)]
    return br.fit_rescorer([p for p, _ in train], [t for _, t in train], br.BranchSettings(), nms_px=3)


def test_rescoring_learns_to_keep_branchings_and_drop_peaks_on_plain_roots(toy_trees):
    rng = np.random.default_rng(4)
    for prediction, truth in (_toy_image(rng) for _ in range(5)):
        peaks = rescore(prediction.heat, prediction.root, toy_trees)
        kept = peaks[peaks[:, 2] >= 0.5]
        assert len(kept) == 1 and np.hypot(*(kept[0, :2] - truth[0])) < 1.0


def test_fitting_needs_true_and_false_candidates():
    rng = np.random.default_rng(2)
    only_true = [_toy_image(rng) for _ in range(3)]
    with pytest.raises(br.InputError, match="true and false candidates"):
        br.fit_rescorer([p for p, _ in only_true], [np.zeros((0, 2)) for _ in only_true], br.BranchSettings(), 3)


def test_a_stored_rescorer_scores_the_detection_and_retuning_drops_it(tmp_path, toy_trees):
    path = tmp_path / "m.pt"
    shutil.copy(br.DEFAULT_MODEL, path)
    prediction, truth = _toy_image(np.random.default_rng(3))
    br.store_detection(path, {"threshold": 0.3, "nms_px": 3, "tta": 1, "f1": 0.9})  # heat-map peaks only
    plain = br.load_branch_model(path)
    assert plain.rescorer is None and len(plain.peaks(prediction)) == 2  # both blobs
    br.store_rescorer(path, toy_trees, {"threshold": 0.5, "f1": 1.0})
    detector = br.load_branch_model(path)
    assert detector.rescorer is not None and detector.threshold == 0.5
    assert detector.meta["rescorer"]["plain"]["threshold"] == 0.3
    found = detector.peaks(prediction)
    assert len(found) == 1 and np.hypot(*(found[0, :2] - truth[0])) < 1.0
    br.store_detection(path, {"threshold": 0.6, "nms_px": 3, "tta": 1, "f1": 0.9})
    assert br.load_branch_model(path).rescorer is None


def test_trees_fitted_on_other_features_are_refused(tmp_path, toy_trees):
    from rootscope.unet import read_model_file

    path = tmp_path / "m.pt"
    shutil.copy(br.DEFAULT_MODEL, path)
    br.store_rescorer(path, toy_trees, {"threshold": 0.5, "f1": 1.0})
    older = {**read_model_file(path)["rescorer"], "features": list(FEATURES[:-1])}
    br._update_model_file(path, {"rescorer": older})
    with pytest.raises(br.ModelError, match="other features"):
        br.load_branch_model(path)
