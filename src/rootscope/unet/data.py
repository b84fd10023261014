"""Training data for the U-Net: image + target pairs, random tiles, augmentation.

A :class:`Sample` holds one image (``H x W x C`` float32 in [0, 1]) and its target: either class
indices (``H x W`` uint8, 0 = unlabelled and ignored, 1..K = classes; dense masks are shifted by one
on reading) or any float32 ``H x W x K`` map (heat-maps). Tiles are cut at random places, biased
towards ``focus`` pixels (labelled or rare-class pixels, or points of interest), and augmented with
OpenCV: one affine warp per tile does the crop, flips, 90-degree turns, small rotations and scaling,
then brightness, contrast, gamma, noise and blur change the image only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import io
from ..errors import InputError, ShapeMismatchError

#: Class names for masks written the rootscope way (0 background, 1 root, 2 seed, 3 shoot).
DEFAULT_CLASSES = ("background", "root", "seed", "shoot")
MAX_FOCUS_POINTS = 100_000


@dataclass
class Sample:
    """One training image with its target and the pixels tiles should favour.

    ``focus`` is a list of ``N x 2`` (row, col) integer arrays; a biased tile is centred on a random
    point of a random non-empty group (one group per class, so rare classes are seen as often, and
    one of hard background: edges away from the classes).
    """

    image: np.ndarray
    target: np.ndarray
    focus: list[np.ndarray] = field(default_factory=list)
    name: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]


def as_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """An ``H x W`` or ``H x W x 3/4`` image as ``H x W x channels`` float32 (grey <-> RGB, alpha dropped)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 4:
        image = image[..., :3]
    if image.shape[2] == channels:
        return image
    if channels == 1:
        return image.mean(axis=2, keepdims=True)
    if image.shape[2] == 1:
        return np.repeat(image, channels, axis=2)
    raise InputError(f"cannot turn a {image.shape[2]}-channel image into {channels} channels.")


def image_channels(image: np.ndarray) -> int:
    """Channels a model should use for this image: 1 for grey, 3 for colour."""
    return 1 if image.ndim == 2 or image.shape[2] == 1 else 3


def class_focus(target: np.ndarray, n_classes: int, seed: int = 0) -> list[np.ndarray]:
    """(row, col) points of each labelled class (at most MAX_FOCUS_POINTS per class, random subset)."""
    rng = np.random.default_rng(seed)
    groups = []
    for k in range(1, n_classes + 1):
        points = np.argwhere(target == k).astype(np.int32)
        if len(points) > MAX_FOCUS_POINTS:
            points = points[rng.choice(len(points), MAX_FOCUS_POINTS, replace=False)]
        groups.append(points)
    return groups


def structure_focus(image: np.ndarray, target: np.ndarray, background: int = 1, top: float = 0.02,
                    clearance_px: int = 8, seed: int = 0) -> np.ndarray:
    """Background pixels with strong edges away from other classes (plate rims, labels, specks).

    These look most like roots and are rare on a plate, so tiles centred on them teach the network
    what is *not* a root. Returns (row, col) points: the ``top`` fraction of labelled background
    pixels by gradient magnitude, at least ``clearance_px`` from any other labelled class.
    """
    grey = image.mean(axis=2) if image.ndim == 3 else image
    grey = cv2.GaussianBlur(np.ascontiguousarray(grey, np.float32), (0, 0), 1.0)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    others = ((target > 0) & (target != background)).astype(np.uint8)
    near = cv2.dilate(others, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * clearance_px + 1,) * 2)) > 0
    candidates = (target == background) & ~near
    if not candidates.any():
        return np.zeros((0, 2), np.int32)
    threshold = np.quantile(magnitude[candidates], 1.0 - top)
    points = np.argwhere(candidates & (magnitude > threshold)).astype(np.int32)
    if len(points) > MAX_FOCUS_POINTS:
        points = points[np.random.default_rng(seed).choice(len(points), MAX_FOCUS_POINTS, replace=False)]
    return points


def segmentation_focus(image: np.ndarray, target: np.ndarray, n_classes: int, seed: int = 0) -> list[np.ndarray]:
    """Focus groups for segmentation: one per class (:func:`class_focus`) plus hard background."""
    return class_focus(target, n_classes, seed) + [structure_focus(image, target, seed=seed)]


# ---------------------------------------------------------------------------------- reading
def find_partner(folder: Path, stem: str) -> Path | None:
    """The image ``folder/<stem>.<ext>`` of any readable suffix (lower or upper case), else None."""
    for suffix in io.IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def load_segmentation_set(
    image_dir: str | os.PathLike,
    mask_dir: str | os.PathLike | None = None,
    label_dir: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[list[Sample], list[str], list[str]]:
    """Read images and their dense masks or sparse label images (same file stem) for training.

    Masks hold class indices 0..K-1 (``classes[v]``); label images hold 0 = unlabelled and 1..K
    (``classes[v - 1]``). Without ``classes`` the rootscope names are used (background, root, seed,
    shoot) up to the largest value found. Returns ``(samples, classes, skipped image names)``.
    Raises InputError / ShapeMismatchError naming the file for undeclared classes, a size mismatch,
    an empty label image, or when no image has a partner file.
    """
    if (mask_dir is None) == (label_dir is None):
        raise InputError("give exactly one of --masks MASK_DIR (dense masks) or --labels LABEL_DIR (sparse labels).")
    dense = mask_dir is not None
    partner_dir = Path(mask_dir if dense else label_dir)  # type: ignore[arg-type]
    if not partner_dir.is_dir():
        raise InputError(f"{partner_dir}: folder not found.")
    pairs, skipped = [], []
    for path in io.list_images(image_dir):
        partner = find_partner(partner_dir, path.stem)
        if partner is None:
            skipped.append(path.name)
        else:
            pairs.append((path, partner))
    if not pairs:
        raise InputError(
            f"{image_dir}: no image has a {'mask' if dense else 'label image'} of the same name in "
            f"{partner_dir}; name them alike (plate1.png -> {partner_dir.name}/plate1.png)."
        )
    targets = []
    for path, partner in pairs:
        target = io.read_labels(partner)
        if dense:
            target = target.astype(np.uint16) + 1  # 0 (unlabelled) is never used by a dense mask
        elif not target.any():
            raise InputError(
                f"{partner}: label image is empty (no labelled pixel). Paint some pixels of each class "
                f"(values 1..K) or move it out of {partner_dir}."
            )
        targets.append(target)
    largest = max(int(t.max()) for t in targets)
    if classes is None:
        if largest > len(DEFAULT_CLASSES):
            raise InputError(
                f"{partner_dir}: values go up to {largest - dense}; name every class with --classes "
                "(in value order)."
            )
        classes = list(DEFAULT_CLASSES[: max(largest, 2)])
    classes = list(classes)
    if len(classes) < 2:
        raise InputError(f"at least two classes are needed (got {classes}); e.g. --classes background root.")
    samples = []
    for (path, partner), target in zip(pairs, targets):
        if target.max() > len(classes):
            values = np.unique(target[target > len(classes)]) - dense
            raise InputError(
                f"{partner}: holds class value(s) {values.tolist()} but only {len(classes)} classes are "
                f"declared ({', '.join(classes)}); add them to --classes or fix the "
                f"{'mask' if dense else 'labels'}."
            )
        image = io.read_image(path)
        if image.shape[:2] != target.shape:
            raise ShapeMismatchError(
                f"{partner} is {target.shape[1]}x{target.shape[0]} but {path} is "
                f"{image.shape[1]}x{image.shape[0]}; export the {'mask' if dense else 'labels'} at full size."
            )
        target = target.astype(np.uint8)
        samples.append(Sample(image, target, segmentation_focus(image, target, len(classes)), path.stem))
    present = {k for s in samples for g, k in zip(s.focus, range(1, len(classes) + 1)) if len(g)}
    if len(present) < 2:
        raise InputError(
            f"{partner_dir}: only one class is labelled ({', '.join(classes[k - 1] for k in present)}); label "
            "at least two classes (e.g. root and background) so that there is something to tell apart."
        )
    channels = max(image_channels(s.image) for s in samples)
    for s in samples:
        s.image = as_channels(s.image, channels)
    return samples, classes, skipped


def normalisation(samples: Sequence[Sample], seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of the images (a random subset of pixels)."""
    rng = np.random.default_rng(seed)
    values = []
    for s in samples:
        flat = s.image.reshape(-1, s.image.shape[2])
        values.append(flat[rng.integers(0, len(flat), min(len(flat), 200_000))])
    stacked = np.concatenate(values)
    return stacked.mean(0).tolist(), np.maximum(stacked.std(0), 1e-3).tolist()


def class_frequencies(samples: Sequence[Sample], n_classes: int) -> np.ndarray:
    """Fraction of labelled pixels of each class 1..K (index 0 = class 1)."""
    counts = sum(np.bincount(s.target.ravel(), minlength=n_classes + 1)[1 : n_classes + 1] for s in samples)
    return counts / max(counts.sum(), 1)


# ------------------------------------------------------------------------------ augmentation
@dataclass(frozen=True)
class Augment:
    """Random changes per tile. Angles in degrees, ``scale`` as (min, max) zoom, intensities in [0, 1] units."""

    flips: bool = True
    rot90: bool = True
    p_affine: float = 0.5
    max_rotation: float = 15.0
    scale: tuple[float, float] = (0.85, 1.2)
    brightness: float = 0.08
    contrast: float = 0.2
    gamma: float = 0.25
    noise: float = 0.02
    p_blur: float = 0.2
    max_blur_sigma: float = 1.2


NO_AUGMENT = Augment(False, False, 0.0, 0.0, (1.0, 1.0), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _warp(array: np.ndarray, matrix: np.ndarray, tile: int, interpolation: int) -> np.ndarray:
    """Sample a ``tile x tile`` patch through an inverse affine map (mirror beyond the borders)."""
    flags = interpolation | cv2.WARP_INVERSE_MAP
    border = cv2.BORDER_REFLECT_101
    if array.ndim == 2 or array.shape[2] <= 4:
        out = cv2.warpAffine(array, matrix, (tile, tile), flags=flags, borderMode=border)
        return out.reshape(tile, tile, *array.shape[2:])
    chunks = [cv2.warpAffine(array[..., i : i + 4], matrix, (tile, tile), flags=flags, borderMode=border)
              for i in range(0, array.shape[2], 4)]
    return np.concatenate([c.reshape(tile, tile, -1) for c in chunks], axis=2)


def _tile_matrix(centre: np.ndarray, tile: int, aug: Augment, rng: np.random.Generator) -> np.ndarray:
    """2 x 3 map from tile (x, y) to image (x, y): centred on ``centre`` (row, col), randomly turned."""
    angle = 90.0 * rng.integers(4) if aug.rot90 else 0.0
    scale = 1.0
    if rng.random() < aug.p_affine:
        angle += rng.uniform(-aug.max_rotation, aug.max_rotation)
        scale = float(np.exp(rng.uniform(*np.log(aug.scale))))
    rad = np.deg2rad(angle)
    linear = np.array([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]]) / scale
    if aug.flips and rng.random() < 0.5:
        linear = linear @ np.diag([-1.0, 1.0])
    half = tile / 2.0
    offset = np.array([centre[1], centre[0]], float) - linear @ np.array([half, half])
    return np.hstack([linear, offset[:, None]])


def _photometric(tile: np.ndarray, aug: Augment, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, gamma, noise and blur of a float tile in [0, 1]."""
    if aug.contrast or aug.brightness:
        mean = tile.mean()
        tile = (tile - mean) * rng.uniform(1 - aug.contrast, 1 + aug.contrast) + mean
        tile = tile + rng.uniform(-aug.brightness, aug.brightness)
    np.clip(tile, 0.0, 1.0, out=tile)
    if aug.gamma:
        tile = tile ** np.float32(np.exp(rng.uniform(-aug.gamma, aug.gamma)))
    if aug.p_blur and rng.random() < aug.p_blur:
        tile = cv2.GaussianBlur(tile, (0, 0), rng.uniform(0.3, aug.max_blur_sigma)).reshape(tile.shape)
    if aug.noise:
        tile = tile + rng.normal(0.0, rng.uniform(0, aug.noise), tile.shape).astype(np.float32)
    return np.clip(tile, 0.0, 1.0, out=tile)


class TileSampler:
    """Random augmented tiles from a list of samples.

    A fraction ``focus_fraction`` of tiles is centred on a focus point (random group, random point);
    the rest anywhere. :meth:`batch` returns ``(images N x C x T x T float32 in [0, 1], targets)`` with
    targets ``N x T x T`` (class indices) or ``N x K x T x T`` (float maps).
    """

    def __init__(self, samples: Sequence[Sample], tile: int, *, augment: Augment = Augment(),
                 focus_fraction: float = 0.7, hard_fraction: float = 0.0, seed: int = 0) -> None:
        if not samples:
            raise InputError("no training images.")
        self.samples = list(samples)
        self.tile = tile
        self.augment = augment
        self.focus_fraction = focus_fraction
        self.hard_fraction = hard_fraction
        self.hard: dict[int, np.ndarray] = {}
        self.rng = np.random.default_rng(seed)

    def set_hard(self, index: int, points: np.ndarray) -> None:
        """Pixels the model gets wrong in sample ``index`` ((row, col) N x 2): a share ``hard_fraction``
        of the tiles of that sample is centred on them (mined mistakes, at most MAX_FOCUS_POINTS kept)."""
        if len(points) > MAX_FOCUS_POINTS:
            points = points[self.rng.choice(len(points), MAX_FOCUS_POINTS, replace=False)]
        self.hard[index] = np.asarray(points, np.int32).reshape(-1, 2)

    def _centre(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        hard = self.hard.get(index)
        if hard is not None and len(hard) and self.rng.random() < self.hard_fraction:
            return hard[self.rng.integers(len(hard))]
        groups = [g for g in sample.focus if len(g)]
        if groups and self.rng.random() < self.focus_fraction:
            group = groups[self.rng.integers(len(groups))]
            return group[self.rng.integers(len(group))]
        h, w = sample.shape
        return np.array([self.rng.integers(h), self.rng.integers(w)])

    def tile_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """One augmented ``(image T x T x C, target T x T [x K])`` pair."""
        index = int(self.rng.integers(len(self.samples)))
        sample = self.samples[index]
        matrix = _tile_matrix(self._centre(index), self.tile, self.augment, self.rng)
        image = _warp(sample.image, matrix, self.tile, cv2.INTER_LINEAR)
        nearest = sample.target.dtype == np.uint8
        target = _warp(sample.target, matrix, self.tile, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)
        if self.augment != NO_AUGMENT:
            image = _photometric(image, self.augment, self.rng)
        return image, target

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` tiles stacked channels-first."""
        images, targets = zip(*(self.tile_pair() for _ in range(n)))
        targets_arr = np.stack(targets)
        if targets_arr.ndim == 4:
            targets_arr = targets_arr.transpose(0, 3, 1, 2)
        return np.stack(images).transpose(0, 3, 1, 2).copy(), np.ascontiguousarray(targets_arr)


def held_out_rows(target: np.ndarray, fraction: float) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a single image to validate on: a band of ``fraction`` of its height.

    The bottom band, unless another band (the top, or one in the middle that leaves at least as many
    rows above and below) holds more of the classes that both the band and the rest then have: plates
    hold their seeds and shoots at the top and often nothing but agar at the bottom, and a class that
    validation lacks cannot be scored. Float (map) targets keep the bottom band.
    """
    height = target.shape[0]
    n = min(height - 1, max(1, int(round(height * fraction))))
    starts = [height - n, *range(height - 2 * n, n - 1, -max(1, n // 2)), 0]
    classes = [k for k in np.unique(target) if k] if target.dtype == np.uint8 else []
    if not classes:
        return starts[0], height
    rows = np.stack([(target == k).any(axis=1) for k in classes])  # class x row
    cum = np.concatenate([np.zeros((len(rows), 1), int), np.cumsum(rows, axis=1)], axis=1)

    def shared(start: int) -> int:
        inside = cum[:, start + n] - cum[:, start]
        return int(((inside > 0) & (cum[:, -1] - inside > 0)).sum())

    start = max(starts, key=shared)  # the first best: the bottom band when it is as good as any
    return start, start + n


def _rows(sample: Sample, start: int, stop: int) -> Sample:
    """Rows ``[start, stop)`` of a sample, its focus points moved along."""
    part = Sample(sample.image[start:stop], sample.target[start:stop], name=sample.name)
    part.focus = [g[(g[:, 0] >= start) & (g[:, 0] < stop)] - [start, 0] for g in sample.focus]
    return part


def split_samples(samples: Sequence[Sample], fraction: float, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Hold out whole images for validation (at least one when there are two or more).

    With a single image, a band of ``fraction`` of its rows is held out instead (:func:`held_out_rows`);
    the rows above and below it train.
    """
    samples = list(samples)
    if len(samples) == 1:
        s = samples[0]
        start, stop = held_out_rows(s.target, fraction)
        train = [_rows(s, a, b) for a, b in ((0, start), (stop, s.shape[0])) if b > a]
        return train, [_rows(s, start, stop)]
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = min(len(samples) - 1, max(1, int(round(fraction * len(samples)))))
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]
