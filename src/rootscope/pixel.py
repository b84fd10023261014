"""Pixel classification from scribbles: filter-bank features + Random Forest (or LightGBM).

A label image is uint8 with 0 = unlabelled and ``k`` = the k-th class (``class_names[k - 1]``).
:class:`PixelClassifier` learns from the labelled pixels only and classifies every pixel, tile by tile
(see :func:`rootscope.features.iter_feature_tiles`), so memory stays bounded on large scans.

Model file format (safe: loading executes no code and unpickles nothing). The file is a NumPy ``.npz``
archive read with ``allow_pickle=False``:

``metadata``    UTF-8 JSON as uint8: ``format`` (= ``"rootscope-pixel-classifier"``), ``format_version``,
                ``rootscope_version``, ``engine`` (``"forest"`` or ``"lightgbm"``), ``classes``,
                ``features`` (:class:`~rootscope.features.FeatureSettings`), ``n_channels``,
                ``feature_names``, ``postprocess``, ``training`` (pixels per class, images, seconds).
``forest_*``    Random Forest as flat node arrays, breadth-first per tree: ``feature`` (int32, -1 at
                leaves), ``threshold`` (float64; go right when ``x > threshold``), ``left`` (int32 global
                index of the left child, the right child is the next node; -1 at leaves), ``value``
                (float32 nodes x K, class fractions), ``roots`` (int32, first node of each tree).
``lightgbm``    the booster in LightGBM's own text format (uint8).
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numba
import numpy as np

from . import __version__
from .errors import InputError, ModelError, ShapeMismatchError
from .features import FeatureSettings, feature_names, iter_feature_tiles, n_image_channels
from .io import atomic_path

FORMAT = "rootscope-pixel-classifier"
FORMAT_VERSION = 1
ENGINES = ("forest", "lightgbm")


@dataclass
class PostProcess:
    """Clean-up applied by :meth:`PixelClassifier.predict`.

    ``min_object_px``: connected pieces of a foreground class smaller than this (pixels) become
    background. ``max_hole_px``: holes inside a foreground class up to this area (pixels) are filled
    with that class. ``root_threshold``: a pixel is ``root`` only when its root probability reaches
    this value (None = most probable class). Foreground = every class but ``background``.
    """

    min_object_px: int = 0
    max_hole_px: int = 0
    root_threshold: float | None = None


@dataclass
class ForestParams:
    """Random Forest settings (scikit-learn); ``max_samples`` is the bootstrap fraction per tree."""

    n_estimators: int = 100
    min_samples_leaf: int = 2
    max_depth: int | None = 20
    max_samples: float | None = 0.5
    max_features: str | float = "sqrt"


@dataclass
class _Forest:
    """A trained forest as flat arrays (see the module docstring).

    Nodes are numbered breadth-first per tree so that the right child of ``n`` is ``left[n] + 1``.
    For prediction, leaves become self-loops (``left = self``, ``threshold = +inf``) so that a step is
    branch-free (``node = left[node] + (x > threshold[node])``); 32 pixels descend in lockstep (so
    that their independent memory loads overlap) until all sit on leaves or the tree's depth is
    reached. Measured here: about 1.3x less CPU than scikit-learn's ``predict_proba`` on the same
    forest, and the same probabilities (benchmarks/bench_pixel.py).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    _steps: tuple[np.ndarray, ...] | None = field(default=None, init=False, repr=False, compare=False)

    ARRAYS = ("feature", "threshold", "left", "value", "roots")

    def _lockstep(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Self-looping leaves and per-tree depths (derived, not stored)."""
        n = self.feature.size
        leaf = self.left < 0
        index = np.arange(n, dtype=np.int32)
        depth = np.zeros(n, np.int32)
        for node in np.flatnonzero(~leaf):  # breadth-first: parents come before children
            depth[self.left[node] : self.left[node] + 2] = depth[node] + 1
        tree_depth = np.maximum.reduceat(depth, self.roots).astype(np.int32)
        # float32 thresholds rounded down: for float32 x, x > t32 exactly when x > t (float64)
        t32 = np.where(leaf, np.inf, self.threshold).astype(np.float32)
        up = t32.astype(np.float64) > self.threshold
        t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
        return (np.where(leaf, 0, self.feature).astype(np.int32), t32,
                np.where(leaf, index, self.left).astype(np.int32), tree_depth)

    @classmethod
    def from_sklearn(cls, model: Any) -> _Forest:
        parts: dict[str, list[np.ndarray]] = {k: [] for k in cls.ARRAYS}
        offset = 0
        for est in model.estimators_:
            t = est.tree_
            order = [0]  # breadth-first, children adjacent
            for node in order:
                if t.children_left[node] >= 0:
                    order += [t.children_left[node], t.children_right[node]]
            order = np.asarray(order)
            new_id = np.empty(t.node_count, np.int64)
            new_id[order] = np.arange(order.size)
            leaf = t.children_left[order] < 0
            value = t.value[order, 0, :].astype(np.float64)
            value /= np.maximum(value.sum(axis=1, keepdims=True), 1e-12)
            parts["feature"].append(np.where(leaf, -1, t.feature[order]).astype(np.int32))
            parts["threshold"].append(t.threshold[order].astype(np.float64))
            parts["left"].append(np.where(leaf, -1, new_id[t.children_left[order]] + offset).astype(np.int32))
            parts["value"].append(value.astype(np.float32))
            parts["roots"].append(np.array([offset], np.int32))
            offset += order.size
        return cls(**{k: np.concatenate(v) for k, v in parts.items()})

    def check(self, n_features: int, n_classes: int) -> None:
        n = self.feature.size
        ok = (
            all(getattr(self, k).shape[0] == n for k in ("threshold", "left", "value"))
            and self.value.ndim == 2 and self.value.shape[1] == n_classes
            and self.roots.size > 0 and int(self.roots.max()) < n
            and int(self.feature.max(initial=-1)) < n_features
            and int(self.left.max(initial=-1)) + 1 < n
            and bool(np.all((self.left < 0) == (self.feature < 0)))
        )
        if not ok:
            raise ValueError("inconsistent forest arrays")

    def predict_proba(self, planes: np.ndarray) -> np.ndarray:
        """Class fractions ``K x N`` for feature-major samples ``F x N`` (float32)."""
        if self._steps is None:
            self._steps = self._lockstep()
        feature, threshold, left, depth = self._steps
        out = np.zeros((self.value.shape[1], planes.shape[1]), np.float32)
        _forest_proba(planes, feature, threshold, left, self.value, self.roots, depth, out)
        return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _forest_proba(x, feature, threshold, left, value, roots, depth, out):  # pragma: no cover - compiled
    """Average leaf fractions over trees; blocks of 1024 pixels, one tree at a time, 32 in lockstep."""
    n = x.shape[1]
    n_classes = value.shape[1]
    scale = np.float32(1.0 / roots.size)
    for b in numba.prange((n + 1023) // 1024):
        lo, hi = b * 1024, min(n, b * 1024 + 1024)
        nodes = np.empty(32, np.int32)
        for t in range(roots.size):
            for g0 in range(lo, hi, 32):
                gn = min(32, hi - g0)
                for j in range(gn):
                    nodes[j] = roots[t]
                for _ in range(depth[t]):
                    moved = 0
                    for j in range(gn):
                        nd = nodes[j]
                        step = left[nd] + np.int32(x[feature[nd], g0 + j] > threshold[nd])
                        moved |= step ^ nd
                        nodes[j] = step
                    if moved == 0:  # all 32 at their leaves
                        break
                for j in range(gn):
                    for k in range(n_classes):
                        out[k, g0 + j] += value[nodes[j], k]
        for p in range(lo, hi):
            for k in range(n_classes):
                out[k, p] *= scale


def _name(sources: Sequence[str] | None, i: int, what: str) -> str:
    return str(sources[i]) if sources is not None else f"{what} #{i + 1}"


def _check_pair(image: np.ndarray, labels: np.ndarray, image_name: str, label_name: str, k: int) -> None:
    if labels.ndim != 2:
        raise InputError(f"{label_name}: label image must be single-channel (got shape {labels.shape}).")
    if labels.shape != image.shape[:2]:
        h, w = image.shape[:2]
        raise ShapeMismatchError(
            f"{label_name} is {labels.shape[1]}x{labels.shape[0]} but {image_name} is {w}x{h}; "
            "export the labels at the image's full size."
        )
    top = int(labels.max(initial=0))
    if top > k:
        raise InputError(
            f"{label_name}: label value {top} but only {k} classes are named; values must be 0 "
            f"(unlabelled) or 1..{k}. Add the class name or fix the labels."
        )


@dataclass
class PixelClassifier:
    """Scribble-trained pixel classifier; ``classes[k - 1]`` is the class of label value ``k``.

    ``engine`` is ``"forest"`` (scikit-learn Random Forest, balanced class weights, all cores) or
    ``"lightgbm"``. ``max_pixels_per_class`` caps the training pixels drawn (seeded) from each class.
    """

    features: FeatureSettings = field(default_factory=FeatureSettings)
    engine: str = "forest"
    forest_params: ForestParams = field(default_factory=ForestParams)
    postprocess: PostProcess = field(default_factory=PostProcess)
    max_pixels_per_class: int = 20000
    seed: int = 0
    classes: list[str] = field(default_factory=list)
    n_channels: int = 0
    training: dict[str, Any] = field(default_factory=dict)
    _forest: _Forest | None = field(default=None, repr=False)
    _booster: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine '{self.engine}'; choose from {list(ENGINES)}.")

    # ------------------------------------------------------------------ training
    def training_pixels(
        self,
        images: Sequence[np.ndarray],
        label_images: Sequence[np.ndarray],
        class_names: Sequence[str],
        sources: Sequence[str] | None = None,
        label_sources: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features ``N x F`` and labels ``N`` (1..K) of the labelled pixels, checked and subsampled."""
        if len(images) != len(label_images) or not images:
            raise InputError(f"give one label image per image (got {len(images)} images, {len(label_images)} labels).")
        k = len(class_names)
        if k < 2:
            raise InputError(f"need at least two classes (got {list(class_names)}).")
        channels = {n_image_channels(im, self.features) for im in images}
        if len(channels) > 1:
            raise InputError("training images mix grey and colour; convert them to the same kind.")
        xs, ys = [], []
        for i, (image, labels) in enumerate(zip(images, label_images)):
            labels = np.asarray(labels)
            _check_pair(np.asarray(image), labels, _name(sources, i, "image"), _name(label_sources, i, "labels"), k)
            if not labels.any():
                continue
            for (rows, cols), feats in iter_feature_tiles(image, self.features, wanted=labels):
                tile_labels = labels[rows, cols]
                where = tile_labels > 0
                if where.any():
                    xs.append(feats[where])
                    ys.append(tile_labels[where])
        if not xs:
            names = ", ".join(str(_name(label_sources, i, "labels")) for i in range(len(label_images)))
            raise InputError(f"{names}: no labelled pixels (all 0); paint a few strokes of each class.")
        x, y = np.concatenate(xs), np.concatenate(ys)
        counts = np.bincount(y, minlength=k + 1)[1:]
        missing = [class_names[i] for i in range(k) if counts[i] == 0]
        if missing:
            files = ", ".join(str(_name(label_sources, i, "labels")) for i in range(len(label_images)))
            raise InputError(
                f"{files}: no pixels of class {missing} (label value "
                f"{[class_names.index(m) + 1 for m in missing]}); paint some or drop the class name."
            )
        rng = np.random.default_rng(self.seed)
        keep = np.concatenate([
            rng.permutation(np.flatnonzero(y == c))[: self.max_pixels_per_class] for c in range(1, k + 1)
        ])
        keep.sort()
        self.n_channels = channels.pop()
        return x[keep], y[keep]

    def fit(
        self,
        images: Sequence[np.ndarray],
        label_images: Sequence[np.ndarray],
        class_names: Sequence[str] = ("root", "background"),
        sources: Sequence[str] | None = None,
        label_sources: Sequence[str] | None = None,
    ) -> PixelClassifier:
        """Learn from the labelled pixels (label 0 ignored) of ``images`` (float [0, 1], H x W (x 3)).

        ``sources``/``label_sources`` name the files in error messages. Raises InputError or
        ShapeMismatchError for labels of the wrong size, no labels at all or a class without pixels.
        """
        start = time.perf_counter()
        x, y = self.training_pixels(images, label_images, class_names, sources, label_sources)
        self.classes = list(class_names)
        if self.engine == "forest":
            from sklearn.ensemble import RandomForestClassifier

            p = self.forest_params
            model = RandomForestClassifier(
                n_estimators=p.n_estimators, min_samples_leaf=p.min_samples_leaf, max_depth=p.max_depth,
                max_samples=p.max_samples, max_features=p.max_features, class_weight="balanced",
                n_jobs=os.cpu_count(), random_state=self.seed,
            ).fit(x, y)
            self._forest, self._booster = _Forest.from_sklearn(model), None
        else:
            import lightgbm as lgb

            weights = (len(y) / (len(self.classes) * np.bincount(y)[1:]))[y - 1]
            model = lgb.LGBMClassifier(
                n_estimators=100, num_leaves=31, learning_rate=0.1, subsample=0.8, subsample_freq=1,
                colsample_bytree=0.5, n_jobs=os.cpu_count(), random_state=self.seed, verbose=-1,
            ).fit(x, y - 1, sample_weight=weights)
            self._booster, self._forest = model.booster_, None
        counts = np.bincount(y, minlength=len(self.classes) + 1)[1:]
        self.training = {
            "images": len(images),
            "pixels_per_class": dict(zip(self.classes, counts.tolist())),
            "n_features": int(x.shape[1]),
            "seconds": round(time.perf_counter() - start, 3),
            "sources": [str(s) for s in sources] if sources is not None else [],
        }
        return self

    # ------------------------------------------------------------------ prediction
    def _check_ready(self, image: np.ndarray) -> None:
        if self._forest is None and self._booster is None:
            raise ModelError("the pixel classifier is not trained; call fit() or load a model.")
        if n_image_channels(image, self.features) != self.n_channels:
            kind = "grey" if self.n_channels == 1 else "colour"
            raise InputError(f"this model was trained on {kind} images; give {kind} images.")

    def proba_tiles(self, image: np.ndarray) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
        """``((rows, cols), probabilities K x th x tw)`` per feature tile."""
        image = np.asarray(image)
        self._check_ready(image)
        for (rows, cols), feats in iter_feature_tiles(image, self.features):
            planes = np.moveaxis(feats, -1, 0)
            th, tw = planes.shape[1:]
            if self._forest is not None:
                flat = np.ascontiguousarray(planes).reshape(planes.shape[0], -1)
                proba = self._forest.predict_proba(flat)
            else:
                samples = np.ascontiguousarray(feats).reshape(th * tw, -1)
                proba = np.asarray(self._booster.predict(samples), np.float32)
                proba = np.stack([1 - proba, proba]) if proba.ndim == 1 else proba.T
            yield (rows, cols), proba.reshape(-1, th, tw)

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 ``K x H x W`` (sum 1 per pixel), computed tile by tile.

        ``image`` is float in [0, 1] or the file's uint8 / uint16 (converted tile by tile).
        """
        h, w = np.asarray(image).shape[:2]
        out = np.empty((len(self.classes), h, w), np.float32)
        for (rows, cols), proba in self.proba_tiles(image):
            out[:, rows, cols] = proba
        return out

    def predict(self, image: np.ndarray, proba: np.ndarray | None = None, *, clean: bool = True) -> np.ndarray:
        """Class mask, uint8 ``H x W`` with values 1..K, after :attr:`postprocess`.

        Without ``proba`` each tile's probabilities become mask values at once, so the mask (1 byte per
        pixel) is the only full-size output: 400 MB at 20000 x 20000 instead of ``K x 1.6`` GB.
        ``clean=False`` leaves out the whole-mask step (:func:`clean_mask`), for a caller that frees the
        image first.
        """
        if proba is not None:
            return postprocess_mask(proba, self.classes, self.postprocess)
        mask = np.empty(np.asarray(image).shape[:2], np.uint8)
        for (rows, cols), tile in self.proba_tiles(image):
            mask[rows, cols] = best_class(tile, self.classes, self.postprocess)
        return clean_mask(mask, self.classes, self.postprocess) if clean else mask

    # ------------------------------------------------------------------ files
    def metadata(self) -> dict[str, Any]:
        """What the model file records besides the trained arrays."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "rootscope_version": __version__,
            "engine": self.engine,
            "classes": self.classes,
            "features": self.features.to_dict(),
            "n_channels": self.n_channels,
            "feature_names": feature_names(self.features, self.n_channels),
            "postprocess": asdict(self.postprocess),
            "training": self.training,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model (format in the module docstring) atomically."""
        if self._forest is None and self._booster is None:
            raise ModelError(f"{path}: nothing to save, the classifier is not trained.")
        arrays = {"metadata": np.frombuffer(json.dumps(self.metadata()).encode(), np.uint8)}
        if self._forest is not None:
            arrays.update({f"forest_{k}": getattr(self._forest, k) for k in _Forest.ARRAYS})
        else:
            arrays["lightgbm"] = np.frombuffer(self._booster.model_to_string().encode(), np.uint8)
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PixelClassifier:
        """Read a model written by :meth:`save`; ModelError naming the file for anything else."""
        path = Path(path)
        meta, arrays = _read_archive(path)
        try:
            features = FeatureSettings.from_dict(meta["features"])
            model = cls(
                features=features, engine=meta["engine"], postprocess=PostProcess(**meta["postprocess"]),
                classes=list(meta["classes"]), n_channels=int(meta["n_channels"]), training=meta["training"],
            )
            n_features = len(feature_names(features, model.n_channels))
            if meta["engine"] == "forest":
                model._forest = _Forest(**{k: arrays[f"forest_{k}"] for k in _Forest.ARRAYS})
                model._forest.check(n_features, len(model.classes))
            else:
                import lightgbm as lgb

                model._booster = lgb.Booster(model_str=bytes(arrays["lightgbm"]).decode())
                if model._booster.num_feature() != n_features:
                    raise ValueError("LightGBM feature count does not match the feature settings")
        except Exception as exc:  # noqa: BLE001 - any defect in a file that passed the format check = damaged
            raise ModelError(
                f"{path}: rootscope pixel-classifier file is damaged ({type(exc).__name__}: {exc}). "
                "Retrain it with `rootscope pixel train`."
            ) from exc
        return model


def _read_archive(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metadata and arrays of a model file, with ModelError for missing, foreign or corrupt files."""
    if not path.is_file():
        raise ModelError(f"{path}: model file not found. Check the path or train one with `rootscope pixel train`.")
    if not is_pixel_model(path):
        raise ModelError(
            f"{path}: not a rootscope pixel-classifier file (no rootscope metadata). Give a model "
            "written by `rootscope pixel train` (ilastik projects and pickles are not read)."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(bytes(arrays.pop("metadata")).decode())
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: model file is corrupt or truncated ({exc}). Re-copy or retrain it.") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not a rootscope pixel-classifier file (format {meta.get('format')!r}).")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{path}: pixel-classifier format version {version} written by rootscope "
            f"{meta.get('rootscope_version')}; this rootscope {__version__} reads version {FORMAT_VERSION}. "
            "Retrain the model with this version (or use the rootscope that wrote it)."
        )
    return meta, arrays


def is_pixel_model(path: str | os.PathLike) -> bool:
    """True when ``path`` looks like a rootscope pixel-classifier file (a zip with metadata)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "metadata.npy" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


# ---------------------------------------------------------------------- post-processing
def _background_index(classes: Sequence[str]) -> int:
    """0-based index of the background class (named ``background``, else the last)."""
    return classes.index("background") if "background" in classes else len(classes) - 1


def postprocess_mask(proba: np.ndarray, classes: Sequence[str], options: PostProcess) -> np.ndarray:
    """Mask uint8 ``H x W`` (1..K) from probabilities ``K x H x W`` with the clean-up of ``options``."""
    return clean_mask(best_class(proba, classes, options), classes, options)


def best_class(proba: np.ndarray, classes: Sequence[str], options: PostProcess) -> np.ndarray:
    """Per-pixel part of :func:`postprocess_mask`: uint8 ``H x W`` (1..K), most probable class after
    ``options.root_threshold`` (so it may run tile by tile)."""
    order = np.argsort(-proba, axis=0)
    best = order[0]
    if options.root_threshold is not None and "root" in classes:
        r = classes.index("root")
        weak = (best == r) & (proba[r] < options.root_threshold)
        best = np.where(weak, order[1], best)
    return (best + 1).astype(np.uint8)


def clean_mask(mask: np.ndarray, classes: Sequence[str], options: PostProcess) -> np.ndarray:
    """Whole-mask part of :func:`postprocess_mask` (in place): small objects and holes of ``options``."""
    bg = _background_index(classes) + 1
    for value in range(1, len(classes) + 1):
        if value == bg:
            continue
        if options.min_object_px > 0:
            _fill_small(mask, mask == value, options.min_object_px, bg)
        if options.max_hole_px > 0:
            _fill_small(mask, mask != value, options.max_hole_px + 1, value, border_ok=False)
    return mask


def _fill_small(mask: np.ndarray, binary: np.ndarray, min_px: int, value: int, border_ok: bool = True) -> None:
    """Set ``mask`` to ``value`` on the 8-connected components of ``binary`` smaller than ``min_px``
    (excluding border-touching ones if asked), box by box: no full-size index array besides OpenCV's labels."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(binary.view(np.uint8), connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < min_px
    small[0] = False
    if not border_ok:
        h, w = binary.shape
        x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
        touches = (x == 0) | (y == 0) | (x + stats[:, cv2.CC_STAT_WIDTH] == w) | (y + stats[:, cv2.CC_STAT_HEIGHT] == h)
        small &= ~touches
    for i in np.flatnonzero(small):  # each is under min_px pixels, so its box is small
        x, y, w, h = stats[i, :4]
        box = mask[y : y + h, x : x + w]
        box[lab[y : y + h, x : x + w] == i] = value
