"""Register scans of one plate so that every frame overlays the reference frame.

Coarse to fine, in four steps:

1. **Features at reduced scale.** Both images are reduced to at most ``max_side`` pixels, turned to
   gray and contrast-normalised (percentile stretch + CLAHE, so that a brighter or darker scan gives the
   same keypoints). ORB keypoints (rotation invariant, binary, fast) are matched with Lowe's ratio test
   and a similarity (or affine / homography) is fitted with RANSAC. ORB was measured against SIFT
   (AKAZE is not in OpenCV 5's main module): same success rate on our plates, several times faster
   (see ``benchmarks/bench_align.py``).
2. **Intensity refinement at full resolution.** The reference is cut into a grid of textured patches;
   each patch of the moving image is warped with the current estimate and its residual shift is found
   by ECC (``cv2.findTransformECC``, translation model, zero-mean normalised so gain/offset changes do
   not matter) on high-passed patches (a fixed lamp gradient must not hold a patch in place). Patches
   sit where structure runs in two directions; a patch on a straight edge only (its shift along the
   edge is undetermined) is skipped. When a plate is found (:func:`rootscope.plate.find_plate`), the grid covers its
   inside without the rim band: walls, rim and lid stand above the agar, and a camera that moved sees
   them shifted against the roots by pixels (parallax), so they must not vote. Each patch gives one
   sub-pixel point correspondence; the requested model is fitted to them by least squares, started
   from the largest set of patches that agree with one model within :data:`CONSENSUS_PX` (RANSAC) and
   dropping patches whose shift disagrees, and the whole step runs up to three times. This is ECC at
   full resolution where it matters (sub-pixel), at the cost of about a hundred small patches instead
   of the whole image.
3. **Model choice.** A camera (not a scanner) that zoomed and sees the plate slightly tilted needs a
   homography. The configured model (default similarity) is fitted first; when it fails a gate, or
   fewer than :data:`CLEAR_AGREEMENT` of the patches agree with it, a homography is refined too (from
   the features' RANSAC homography) and used when it passes every gate, is a plausible tilted view
   (:func:`perspective_problem`: orientation kept, bounded stretch and bend) and the configured model
   failed or agrees with far fewer patches. ``Registration.model`` records the model used.
4. **Quality gates.** ``score`` is the normalised correlation of the band-pass (difference of
   Gaussians) images on their overlap after warping, so illumination changes do not lower it. Too few
   feature inliers, too few patches that match at all (another plate of the same design shares its rim
   and label, not its seedlings), too few agreeing patches, a large residual or a low score give
   ``ok=False`` and a message: a wrong matrix is never returned as good.

Brightness, contrast and white balance: the gray image is luma, the coarse step works on a percentile
stretch + CLAHE of it and ECC is zero-mean normalised per patch, so a gain or offset per colour channel
changes neither the keypoints much nor the patch shifts. Zoom: ORB's 6-level pyramid (factor 1.2) and
the refinement through the current estimate cope with frames 0.77-1.3 times the reference's scale.

How changing content is kept from pulling the estimate: growing roots, condensation and moved seeds
change only a small part of the plate. In step 1 keypoints on new content have no partner and those
on moved content disagree with the RANSAC consensus of the fixed structure (rim, label, agar texture,
the old parts of roots, which do not move). In step 2 every patch votes independently: patches whose
content changed give low ECC correlation or an outlying shift and are dropped (iterated rejection at
3 robust standard deviations, never tighter than 0.5 px), so the fit rests on the patches that stayed
the same. Patches that would reach outside the moving image (partial plate crop) are not used.

Matrices are 3 x 3 float64 in OpenCV's ``(x, y)`` pixel convention and map a pixel of the moving
frame to the reference frame: ``[x_ref, y_ref, 1] ~ matrix @ [x, y, 1]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import cv2
import numpy as np

from . import io
from .errors import AlignmentError, ShapeMismatchError

MODELS = ("translation", "rigid", "similarity", "affine", "homography")

#: Gates of the quality record (see :func:`estimate_transform`).
MIN_INLIERS = 12
MIN_PATCHES = 6
MIN_AGREEING = 0.4
MIN_MATCHED = 0.25
MIN_SCORE = 0.3
MAX_RESIDUAL_PX = 1.5
FALLBACK_MAX_RESIDUAL_PX = 0.5
MIN_OVERLAP = 0.2
PATCH_MAX = 128
PATCH_GRID = 10
HIGH_PASS_SIGMA = 8.0
MAX_CONDITION = 1.5  # a homography's local stretch ratio (a plate tilted 48 degrees to the lens)
MAX_PERSPECTIVE = 0.08  # of the longer side: how far a homography may bend the corners off an affine map
CLEAR_AGREEMENT = 0.5  # of the tried patches: a fit this well agreed on needs no homography check
MORE_AGREEING = 1.25  # a homography that many times the agreeing patches replaces a model that fits
MIN_SPREAD = 0.4  # of the patch area: how far the patches agreeing on a fallback homography must spread
HOMOGRAPHY_GAIN_PX = 0.3  # px: residual a homography must save before it replaces a fitting model
CONSENSUS_PX = 1.0  # px: a patch agrees with a model fit when it lies this close
CONVERGED_PX = 0.01  # px: stop the patch passes when the corners move less
#: ECC stop rule for one patch and pass (3 passes): 10 iterations or a correlation gain below 1e-4.
ECC_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 10, 1e-4)


@dataclass
class Registration:
    """Result of registering one frame to the reference.

    ``matrix`` is 3 x 3 float64 mapping moving ``(x, y, 1)`` to reference pixels. ``inliers`` counts the
    feature matches consistent with it, ``patches`` the full-resolution patches that refined it,
    ``residual`` is their RMS disagreement in reference pixels, ``score`` the band-pass normalised
    correlation after warping (1 = identical structure, about 0 = unrelated images), ``overlap`` the
    fraction of the reference covered by the warped frame, ``model`` the motion model of ``matrix``
    (the configured one, or the homography chosen instead: see :func:`estimate_transform`). ``ok`` is
    False when any gate failed; ``message`` says which (and, when ok, why the model was changed).
    """

    matrix: np.ndarray
    inliers: int = 0
    residual: float = float("nan")
    score: float = float("nan")
    ok: bool = False
    message: str = ""
    patches: int = 0
    overlap: float = 0.0
    model: str = "similarity"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready record (the ``transforms.json`` entry of one frame)."""
        return {
            "matrix": np.round(self.matrix, 9).tolist(),
            "inliers": int(self.inliers),
            "patches": int(self.patches),
            "residual": _finite(self.residual, 4),
            "score": _finite(self.score, 4),
            "overlap": round(float(self.overlap), 4),
            "ok": bool(self.ok),
            "message": self.message,
            "model": self.model,
        }


def _finite(value: float, digits: int) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


# ----------------------------------------------------------------------------------- image prep
def to_gray(image: np.ndarray, name: str = "image") -> np.ndarray:
    """H x W (x C) image (float in [0, 1] or uint8/uint16) -> float32 gray H x W in [0, 1].

    RGB(A) becomes luma (ITU-R 601 weights), so gray and colour scans of one plate can be registered
    to each other. Raises :class:`ShapeMismatchError` for arrays that are not images.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., 0] if array.shape[2] == 1 else array[..., :3]
    elif array.ndim != 2:
        raise ShapeMismatchError(
            f"{name}: shape {array.shape} is not an image (expected H x W or H x W x 1/3/4)."
        )
    if min(array.shape[:2]) < 32:
        raise ShapeMismatchError(f"{name}: {array.shape[1]}x{array.shape[0]} px is too small to align (min 32 px).")
    if array.dtype not in (np.uint8, np.uint16, np.float32):
        array = array.astype(np.float32)
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
    if array.dtype == np.float32:
        return array
    return array.astype(np.float32) * np.float32(1.0 / np.iinfo(array.dtype).max)


def float_gray(image: np.ndarray, name: str = "image", band: int = 2048) -> np.ndarray:
    """:func:`to_gray` of ``image`` as float in [0, 1] (uint8 / uint16 scaled as ``io.to_float`` does),
    converted band by band: the same values as ``to_gray(io.to_float(image)[0])`` without a full-size
    float copy of a colour scan (4 bytes a pixel instead of 16 at the peak)."""
    array = np.asarray(image)
    if array.dtype.kind == "f" or array.ndim < 2:
        return to_gray(array, name)
    gray = np.empty(array.shape[:2], np.float32)
    # equal bands, so each has >= 32 rows (to_gray's least) whenever the scan has
    for rows in np.array_split(np.arange(array.shape[0]), -(-array.shape[0] // band)):
        part = slice(rows[0], rows[-1] + 1)
        gray[part] = to_gray(io.to_float(array[part])[0], name)
    return gray


def _reduce(gray: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Area-averaged copy with the longer side at most ``max_side``; returns (image, scale factor)."""
    factor = min(1.0, max_side / max(gray.shape))
    if factor == 1.0:
        return gray, 1.0
    size = (max(1, round(gray.shape[1] * factor)), max(1, round(gray.shape[0] * factor)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    # exact factors per axis differ by rounding; use the mean (error < 0.5 px over the side)
    return small, float(np.mean([small.shape[1] / gray.shape[1], small.shape[0] / gray.shape[0]]))


def _normalise(small: np.ndarray) -> np.ndarray:
    """Percentile stretch + CLAHE -> uint8: the same plate gives the same picture at any exposure."""
    lo, hi = np.percentile(small, (0.5, 99.5))
    stretched = np.clip((small - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(stretched)


def _bandpass(image: np.ndarray, fine: float = 1.0, coarse: float = 4.0) -> np.ndarray:
    """Difference of Gaussians (sigmas in px): keeps structure, drops illumination and pixel noise."""
    return cv2.GaussianBlur(image, (0, 0), fine) - cv2.GaussianBlur(image, (0, 0), coarse)


def _scaling(factor: float) -> np.ndarray:
    return np.diag([factor, factor, 1.0])


# ------------------------------------------------------------------------------------- models
def fit_model(src: np.ndarray, dst: np.ndarray, model: str) -> np.ndarray:
    """Least-squares 3 x 3 matrix of ``model`` mapping points ``src`` (N x 2, x y) onto ``dst``.

    translation: mean shift; rigid / similarity: Umeyama (without / with scale); affine: linear least
    squares; homography: normalised DLT refined by Levenberg-Marquardt (``cv2.findHomography``).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    matrix = np.eye(3)
    if model == "translation":
        matrix[:2, 2] = (dst - src).mean(axis=0)
    elif model in ("rigid", "similarity"):
        mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
        s, d = src - mu_s, dst - mu_d
        u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
        sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
        rotation = u @ sign @ vt
        scale = (sigma * np.diag(sign)).sum() / (s**2).sum(axis=1).mean() if model == "similarity" else 1.0
        matrix[:2, :2] = scale * rotation
        matrix[:2, 2] = mu_d - scale * rotation @ mu_s
    elif model == "affine":
        design = np.hstack([src, np.ones((len(src), 1))])
        solution, *_ = np.linalg.lstsq(design, dst, rcond=None)
        matrix[:2] = solution.T
    elif model == "homography":
        found, _ = cv2.findHomography(src, dst, 0)
        if found is None:
            raise AlignmentError("homography fit is degenerate (points on a line?).")
        matrix = found / found[2, 2]
    else:
        raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)}.")
    return matrix


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map N x 2 (x, y) points through a 3 x 3 matrix (with the projective division)."""
    points = np.asarray(points, dtype=np.float64)
    mapped = points @ matrix[:2, :2].T + matrix[:2, 2]
    if np.allclose(matrix[2], (0.0, 0.0, 1.0)):
        return mapped
    return mapped / (points @ matrix[2, :2] + matrix[2, 2])[:, None]


def corner_error(estimated: np.ndarray, truth: np.ndarray, shape: Sequence[int]) -> tuple[float, float]:
    """Mean and max distance (px) between the 4 corners of an image of ``shape`` (H, W, ...) mapped by
    ``estimated`` and by ``truth``: the standard accuracy figure of a registration."""
    h, w = shape[:2]
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    dist = np.linalg.norm(apply(estimated, corners) - apply(truth, corners), axis=1)
    return float(dist.mean()), float(dist.max())


# --------------------------------------------------------------------------------- coarse step
def _orb(image: np.ndarray, n_features: int = 4000) -> tuple[np.ndarray, np.ndarray | None]:
    """ORB keypoints (N x 2, x y) and descriptors; a low FAST threshold so smooth agar still gives many."""
    orb = cv2.ORB_create(nfeatures=n_features, scaleFactor=1.2, nlevels=6, edgeThreshold=19,
                         patchSize=19, fastThreshold=7)
    keypoints, descriptors = orb.detectAndCompute(image, None)
    points = np.array([k.pt for k in keypoints], dtype=np.float64).reshape(-1, 2)
    return points, descriptors


def _match(des_ref: np.ndarray | None, des_mov: np.ndarray | None, ratio: float = 0.85) -> np.ndarray:
    """Index pairs (moving, reference) of nearest Hamming neighbours that pass Lowe's ratio test."""
    if des_ref is None or des_mov is None or len(des_ref) < 2 or len(des_mov) < 2:
        return np.empty((0, 2), dtype=int)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = []
    for m in matcher.knnMatch(des_mov, des_ref, k=2):
        if len(m) == 2 and m[0].distance < ratio * m[1].distance:
            pairs.append((m[0].queryIdx, m[0].trainIdx))
    return np.array(pairs, dtype=int).reshape(-1, 2)


def _ransac(src: np.ndarray, dst: np.ndarray, model: str, threshold: float) -> tuple[np.ndarray | None, int]:
    """Robust coarse fit; returns (3 x 3 matrix or None, inlier count)."""
    if len(src) < 4:
        return None, 0
    if model == "homography":
        found, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, threshold, maxIters=5000, confidence=0.999)
        matrix = found
    else:
        estimate = cv2.estimateAffine2D if model == "affine" else cv2.estimateAffinePartial2D
        found, mask = estimate(src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold,
                               maxIters=5000, confidence=0.999, refineIters=10)
        matrix = None if found is None else np.vstack([found, (0.0, 0.0, 1.0)])
    if matrix is None or mask is None:
        return None, 0
    return matrix.astype(np.float64), int(mask.sum())


# ----------------------------------------------------------------------------------- fine step
def _plate_interior(ref_small: np.ndarray) -> tuple[int, int, int, int] | None:
    """Box ``(x0, y0, x1, y1)`` (px of ``ref_small``) of the plate's inside, without its rim.

    A plate is a 3-D object: its walls, rim and lid are seen from a slightly different side whenever a
    camera or the plate moves, so patches on them disagree with the agar plane (where the roots are)
    by pixels. When :func:`rootscope.plate.find_plate` finds a plate, the patches go into its measured
    area (inside the rim); None (no plate: paper, a crop of a plate) means the whole image.
    """
    from .plate import find_plate

    region = find_plate(ref_small)
    if region.kind == "whole":
        return None
    inner = region.outline(inner=True)
    (x0, y0), (x1, y1) = np.floor(inner.min(axis=0)), np.ceil(inner.max(axis=0))
    h, w = ref_small.shape[:2]
    return int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(y1, h))


def _patch_candidates(ref_small: np.ndarray, factor: float, ref_shape: tuple[int, int], size: int,
                      grid: int = 0, region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Top-left corners (x, y, full-resolution px) of the reference patches to refine on.

    ``region`` ``(x0, y0, x1, y1)`` in px of ``ref_small`` (default: all of it) is split into ``grid``
    x ``grid`` cells (:data:`PATCH_GRID`); in each, the patch goes where the band-pass image (at most
    256 px wide) has the most two-directional structure over a patch (Shi-Tomasi measure), so patches
    sit on label text, specks, seeds and root bends rather than on blank agar or along a straight edge.
    """
    grid = grid or PATCH_GRID
    tiny, shrink = _reduce(ref_small, 256)
    scale = factor * shrink  # full-resolution px -> tiny px
    block = int(np.clip(round(size * scale), 3, 31)) | 1
    # smaller eigenvalue of the structure tensor over a patch: high only where structure runs in two
    # directions (a straight rim edge pins a patch across the edge but lets it slide along)
    energy = cv2.cornerMinEigenVal(_bandpass(tiny, 0.7, 3.0), block, 3)
    x0, y0, x1, y1 = (0, 0, tiny.shape[1], tiny.shape[0]) if region is None else \
        (int(v * shrink) for v in region)
    rows = np.linspace(y0, y1, grid + 1).astype(int)
    cols = np.linspace(x0, x1, grid + 1).astype(int)
    centres = []
    for r0, r1 in zip(rows[:-1], rows[1:]):
        for c0, c1 in zip(cols[:-1], cols[1:]):
            cell = energy[r0:r1, c0:c1]
            if cell.size:
                r, c = np.unravel_index(int(np.argmax(cell)), cell.shape)
                centres.append((c0 + c + 0.5, r0 + r + 0.5))
    corners = np.array(centres, dtype=np.float64).reshape(-1, 2) / scale - size / 2.0
    h, w = ref_shape
    return np.clip(np.round(corners), 0, [max(w - size, 0), max(h - size, 0)])


def _inside(corners: np.ndarray, matrix: np.ndarray, mov_shape: tuple[int, int], size: int) -> np.ndarray:
    """The patches whose footprint in the moving image lies inside it (partial crop, borders)."""
    offsets = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float64)
    footprint = apply(np.linalg.inv(matrix), (corners[:, None, :] + offsets).reshape(-1, 2)).reshape(-1, 4, 2)
    margin = 2.0
    keep = ((footprint >= margin).all(axis=(1, 2))
            & (footprint[..., 0] <= mov_shape[1] - 1 - margin).all(axis=1)
            & (footprint[..., 1] <= mov_shape[0] - 1 - margin).all(axis=1))
    return corners[keep]


def _robust_z(image: np.ndarray) -> np.ndarray:
    """Lightly smoothed image in robust standard units (median 0, MAD-based spread 1): gain-free."""
    smooth = cv2.GaussianBlur(image, (0, 0), 1.5)
    sample = smooth[::2, ::2]  # the statistics need not see every pixel
    median = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - median)))
    return (smooth - median) / max(spread, 1e-4)


def _unchanged(template: np.ndarray, patch: np.ndarray, limit: float = 2.5) -> np.ndarray:
    """uint8 mask (1 = same content) of an aligned pair: pixels whose robust z-scores differ by more
    than ``limit`` (a root that grew, a droplet) and their 2-px surroundings are left out."""
    changed = (np.abs(_robust_z(template) - _robust_z(patch)) > limit).astype(np.uint8)
    return (cv2.dilate(changed, np.ones((5, 5), np.uint8)) == 0).astype(np.uint8)


def _edge_only(template: np.ndarray, ratio: float = 0.05) -> bool:
    """True when a patch's structure runs in one direction only (aperture problem: its shift along the
    edge is undetermined), judged by the eigenvalue ratio of its summed structure tensor."""
    smooth = cv2.GaussianBlur(template, (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    xx, yy, xy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    root = np.sqrt(((xx - yy) / 2) ** 2 + xy**2)
    big, small = (xx + yy) / 2 + root, (xx + yy) / 2 - root
    return big <= 0 or small / big < ratio


def _patch_shifts(ref: np.ndarray, mov: np.ndarray, matrix: np.ndarray, corners: np.ndarray,
                  size: int, masked: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """ECC translation of every patch: returns (reference centres N x 2, moving points N x 2, tried).

    ``tried`` counts the patches with structure to match on (not blank, not a straight edge only);
    the N returned are those that matched (ECC correlation >= 0.5, shift within a quarter patch).
    With ``masked``, pixels whose content changed between the frames (see :func:`_unchanged`) are left
    out of the ECC sum; patches that changed by more than half count as tried but not matched.
    """
    inverse = np.linalg.inv(matrix)
    centre = (size - 1) / 2.0
    ref_pts, mov_pts, tried = [], [], 0
    for x0, y0 in corners.astype(int):
        template = ref[y0:y0 + size, x0:x0 + size]
        if float(template.std()) < 1e-4:
            continue
        # high-pass: a fixed illumination gradient (scanner lamp, vignetting) must not hold the patch
        # at the scanner's position
        flat = template - cv2.GaussianBlur(template, (0, 0), HIGH_PASS_SIGMA)
        if _edge_only(flat):
            continue
        tried += 1
        to_patch = inverse @ np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
        patch = _warp_patch(mov, to_patch, size)
        mask = _unchanged(template, patch) if masked else None
        if mask is not None and mask.mean() < 0.5:
            continue
        d = _ecc_shift(flat, patch - cv2.GaussianBlur(patch, (0, 0), HIGH_PASS_SIGMA), mask)
        if d is None or np.abs(d).max() > size / 4:
            continue
        ref_pts.append((x0 + centre, y0 + centre))
        mov_pts.append((x0 + centre + d[0], y0 + centre + d[1]))
    if not ref_pts:
        return np.empty((0, 2)), np.empty((0, 2)), tried
    return np.array(ref_pts), apply(inverse, np.array(mov_pts)), tried


def _warp_patch(mov: np.ndarray, to_patch: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` patch of ``mov`` that ``to_patch`` (patch px -> moving px) points at."""
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if np.allclose(to_patch[2], (0.0, 0.0, 1.0)):
        return cv2.warpAffine(mov, to_patch[:2], (size, size), flags=flags)
    return cv2.warpPerspective(mov, to_patch, (size, size), flags=flags)


def _ecc_shift(template: np.ndarray, patch: np.ndarray, mask: np.ndarray | None) -> np.ndarray | None:
    """ECC translation (x, y px) that moves ``patch`` onto ``template``, or None when ECC did not
    converge or its correlation stayed below 0.5 (this patch has no say)."""
    shift = np.eye(2, 3, dtype=np.float32)
    try:
        cc, shift = cv2.findTransformECC(template, patch, shift, cv2.MOTION_TRANSLATION, ECC_CRITERIA, mask, 5)
    except cv2.error:
        return None
    return shift[:, 2].astype(np.float64) if cc >= 0.5 else None


def _consensus(src: np.ndarray, dst: np.ndarray, model: str, threshold: float = CONSENSUS_PX,
               trials: int = 300) -> np.ndarray:
    """Largest set of correspondences that one ``model`` maps within ``threshold`` px (RANSAC over
    minimal samples, MSAC cost; a fixed seed, so the same input gives the same set).

    Parameters
    ----------
    src, dst : numpy.ndarray
        N x 2 (x, y) px: moving points and the reference points they should map to.
    model : str
        One of :data:`MODELS`.
    threshold : float
        Inlier distance in reference px.
    trials : int
        Most minimal samples drawn (fewer once the best set makes more needless: 99.9 % confidence).

    Returns
    -------
    numpy.ndarray
        N bool: the consensus set (all True when there are too few points to choose from).
    """
    k, n = _min_points(model), len(src)
    if n <= k + 1:
        return np.ones(n, dtype=bool)
    rng = np.random.default_rng(0)
    best, best_cost, needed = np.ones(n, dtype=bool), np.inf, trials
    for trial in range(trials):
        if trial >= needed:
            break  # 99.9 % sure that some sample was all inliers of the best set
        sample = rng.choice(n, k, replace=False)
        try:
            matrix = fit_model(src[sample], dst[sample], model)
        except (AlignmentError, cv2.error, np.linalg.LinAlgError):
            continue
        if not np.all(np.isfinite(matrix)):
            continue
        error = np.linalg.norm(apply(matrix, src) - dst, axis=1)
        cost = float(np.minimum(error, threshold).sum())
        if cost < best_cost:
            best, best_cost = error <= threshold, cost
            share = min(float(best.mean()), 1.0 - 1e-9)
            needed = int(np.ceil(np.log(1e-3) / np.log(1.0 - share**k))) if share > 0 else trials
    return best if best.sum() > k else np.ones(n, dtype=bool)


def _robust_fit(src: np.ndarray, dst: np.ndarray, model: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares fit with iterated rejection, started from the :func:`_consensus` set (so that a
    minority of patches that agree with each other, not the mean of all, decides); returns (matrix,
    inlier mask, RMS residual px)."""
    keep = _consensus(src, dst, model)
    for _ in range(5):
        matrix = fit_model(src[keep], dst[keep], model)
        error = np.linalg.norm(apply(matrix, src) - dst, axis=1)
        mad = 1.4826 * np.median(np.abs(error[keep] - np.median(error[keep])))
        new_keep = error <= max(0.5, np.median(error[keep]) + 3.0 * mad)
        if new_keep.sum() < _min_points(model) or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    residual = float(np.sqrt(np.mean(error[keep] ** 2)))
    return matrix, keep, residual


def _plausible(matrix: np.ndarray, shape: tuple[int, ...]) -> bool:
    """A plate on a scanner: finite, area change within 4x, no corner sent behind the horizon."""
    if not np.all(np.isfinite(matrix)) or abs(matrix[2, 2]) < 1e-12:
        return False
    matrix = matrix / matrix[2, 2]
    if not 0.25 <= np.linalg.det(matrix[:2, :2]) <= 4.0:
        return False
    h, w = shape[:2]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    return bool(np.all(corners @ matrix[2, :2] + 1.0 > 0.5))


def _min_points(model: str) -> int:
    return {"translation": 1, "rigid": 2, "similarity": 2, "affine": 3, "homography": 4}[model]


@dataclass
class _Fit:
    """One model fitted to the full-resolution patches (see :func:`_refine`).

    ``matrix`` maps moving to reference px; ``used`` patches agree with it out of ``measured`` that
    matched at all out of ``tried`` with structure; ``residual`` is their RMS disagreement (reference
    px); ``problem`` is empty when the patch gates passed; ``src`` / ``dst`` are the last pass's
    correspondences (moving / reference px, N x 2) and ``keep`` marks the agreeing ones.
    """

    matrix: np.ndarray
    model: str
    used: int = 0
    measured: int = 0
    tried: int = 0
    residual: float = float("nan")
    problem: str = ""
    src: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    dst: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    keep: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))


def _patch_size(shape: tuple[int, ...]) -> int:
    """Side (px) of the full-resolution refinement patches: a tenth of the shorter side, 64-128."""
    return int(np.clip(min(shape[:2]) // 10, 64, PATCH_MAX))


def _candidates(ref: np.ndarray, ref_small: np.ndarray, factor: float, mov_shape: tuple[int, ...],
                matrix: np.ndarray) -> np.ndarray:
    """Patch corners (full-resolution px) inside the plate (:func:`_plate_interior`), or over the whole
    reference when fewer than ``2 * MIN_PATCHES`` of those fall inside the moving frame (a crop)."""
    size = _patch_size(ref.shape)
    region = _plate_interior(ref_small)
    whole = _patch_candidates(ref_small, factor, ref.shape, size)
    if region is None:
        return whole
    inner = _patch_candidates(ref_small, factor, ref.shape, size, region=region)
    return inner if len(_inside(inner, matrix, mov_shape, size)) >= 2 * MIN_PATCHES else whole


def _refine(ref: np.ndarray, mov: np.ndarray, matrix: np.ndarray, model: str, candidates: np.ndarray,
            passes: int = 3) -> _Fit:
    """Full-resolution patch ECC refinement of ``matrix`` (moving -> reference px) with ``model``.

    Parameters
    ----------
    ref, mov : numpy.ndarray
        Gray float32 reference and moving frames (full resolution).
    matrix : numpy.ndarray
        3 x 3 start estimate.
    model : str
        One of :data:`MODELS`, fitted to the patch correspondences.
    candidates : numpy.ndarray
        N x 2 top-left patch corners in reference px (:func:`_candidates`).
    passes : int
        Measure-and-fit rounds (stops early when the corners move less than :data:`CONVERGED_PX`).

    Returns
    -------
    _Fit
        With ``problem`` set when too few patches could be measured or agree.
    """
    size = _patch_size(ref.shape)
    fit = _Fit(matrix, model)
    for step in range(passes):
        corners = _inside(candidates, fit.matrix, mov.shape, size)
        ref_pts, mov_pts, fit.tried = _patch_shifts(ref, mov, fit.matrix, corners, size, masked=step > 0)
        fit.src, fit.dst, fit.measured = mov_pts, ref_pts, len(ref_pts)
        if len(ref_pts) < max(MIN_PATCHES, _min_points(model) + 2):
            fit.used = len(ref_pts)
            fit.problem = f"only {len(ref_pts)} of {len(corners)} patches could be refined (need {MIN_PATCHES})"
            return fit
        previous = fit.matrix
        try:
            fit.matrix, fit.keep, fit.residual = _robust_fit(mov_pts, ref_pts, model)
        except AlignmentError as exc:
            fit.problem = str(exc)
            return fit
        fit.used = int(fit.keep.sum())
        if step > 0 and corner_error(fit.matrix, previous, mov.shape)[1] < CONVERGED_PX:
            break  # converged
    fit.problem = _agreement_problem(fit.used, fit.measured, fit.tried)
    return fit


def _agreement_problem(used: int, measured: int, tried: int) -> str:
    """The gates on the patches: empty when enough of the ``tried`` patches matched (``measured``) and
    enough of those agree on the motion (``used``)."""
    if measured < MIN_MATCHED * tried:
        return (f"only {measured} of {tried} structured patches match between the frames (need "
                f"{MIN_MATCHED:.0%}): not the same plate?")
    if used < MIN_PATCHES:
        return f"only {used} patches agree on the motion (need {MIN_PATCHES})"
    if used < MIN_AGREEING * measured:
        return (f"only {used} of {measured} patches agree on the motion (need {MIN_AGREEING:.0%}): "
                "much of the plate differs")
    return ""


# ------------------------------------------------------------------------------ model choice
def perspective_problem(matrix: np.ndarray, shape: Sequence[int]) -> str:
    """Why a homography is not a plausible view of a flat plate, or "" when it is.

    Parameters
    ----------
    matrix : numpy.ndarray
        3 x 3 homography, moving -> reference px.
    shape : sequence of int
        (H, W, ...) of the moving frame, px.

    Returns
    -------
    str
        Empty when, at the frame's corners and centre, the local linear map keeps orientation
        (positive determinant) and is at most :data:`MAX_CONDITION` times more stretched one way than
        the other, and the corners lie within :data:`MAX_PERSPECTIVE` of the frame's longer side of
        the best affine map over the frame (bounded perspective: a tilt, not a fold).
    """
    if not np.all(np.isfinite(matrix)) or abs(matrix[2, 2]) < 1e-12:
        return "homography is not finite"
    matrix = matrix / matrix[2, 2]
    h, w = shape[:2]
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    for point in np.vstack([corners, [(w - 1) / 2, (h - 1) / 2]]):
        jacobian = _jacobian(matrix, point)
        if np.linalg.det(jacobian) <= 0:
            return "homography folds the frame (negative determinant)"
        if np.linalg.cond(jacobian) > MAX_CONDITION:
            return f"homography stretches the frame {np.linalg.cond(jacobian):.2f}x more one way (max {MAX_CONDITION})"
    grid = np.stack(np.meshgrid(np.linspace(0, w - 1, 5), np.linspace(0, h - 1, 5)), -1).reshape(-1, 2)
    affine = fit_model(grid, apply(matrix, grid), "affine")
    bend = float(np.linalg.norm(apply(matrix, corners) - apply(affine, corners), axis=1).max())
    if bend > MAX_PERSPECTIVE * max(h, w):
        return f"homography bends the corners {bend:.0f} px off an affine map (max {MAX_PERSPECTIVE:.0%} of the side)"
    return ""


def _jacobian(matrix: np.ndarray, point: np.ndarray) -> np.ndarray:
    """2 x 2 derivative of the projective map ``matrix`` at ``point`` (x, y)."""
    x, y = point
    u, v, s = matrix @ (x, y, 1.0)
    return (matrix[:2, :2] - np.outer((u / s, v / s), matrix[2, :2])) / s


@dataclass
class _Verdict:
    """The gates on one :class:`_Fit`: ``problems`` (empty = passed), band-pass ``score`` and
    ``overlap`` fraction after warping (see :func:`_judge`)."""

    problems: list[str]
    score: float
    overlap: float


def _judge(fit: _Fit, ref_small: np.ndarray, mov_small: np.ndarray, factors: tuple[float, float],
           max_residual: float, min_score: float) -> _Verdict:
    """Step 4 on ``fit``: agreement (from :func:`_refine`), residual (px, at most ``max_residual``),
    overlap and band-pass correlation (at least ``min_score``) of the reduced frames (``factors``:
    reduced / full size of reference and moving)."""
    problems = [fit.problem] if fit.problem else []
    if not fit.problem and fit.residual > max_residual:
        problems.append(f"patch residual {fit.residual:.2f} px > {max_residual} px")
    small = _scaling(factors[0]) @ fit.matrix @ _scaling(1.0 / factors[1])
    score, overlap = _score(ref_small, mov_small, small)
    if overlap < MIN_OVERLAP:
        problems.append(f"frames overlap on {overlap:.0%} of the reference only")
    if score < min_score:
        problems.append(f"correlation after warping {score:.2f} < {min_score}: not the same plate?")
    return _Verdict(problems, score, overlap)


def _worth_a_homography(fit: _Fit, verdict: _Verdict) -> bool:
    """Whether to also fit a homography: ``fit`` failed a gate, or fewer than :data:`CLEAR_AGREEMENT`
    of the tried patches agree with it (a tilted view leaves the far patches out of ECC's reach, so a
    wrong model can look consistent on the near ones), or a homography fitted to the same
    correspondences is much better (:func:`_same_points_better`)."""
    return bool(verdict.problems) or fit.used < CLEAR_AGREEMENT * fit.tried or bool(_same_points_better(fit))


def _same_points_better(fit: _Fit) -> str:
    """Why a homography fitted to ``fit``'s own correspondences beats it, or "": less than half its
    RMS residual and at least :data:`HOMOGRAPHY_GAIN_PX` less."""
    if len(fit.src) < 2 * _min_points("homography"):
        return ""
    try:
        residual = _robust_fit(fit.src, fit.dst, "homography")[2]
    except AlignmentError:
        return ""
    if fit.residual > 2 * residual and fit.residual - residual > HOMOGRAPHY_GAIN_PX:
        return f"patch residual {fit.residual:.2f} px against {residual:.2f} px of a homography"
    return ""


def _homography_start(fit: _Fit, hints: Sequence[np.ndarray | None], shape: tuple[int, ...]) -> np.ndarray:
    """Start of the homography refinement (moving -> reference px): the first of ``hints`` (a coarse
    feature homography, a projective ``initial``), then a homography fitted to ``fit``'s
    correspondences, that is a plausible tilted view (:func:`perspective_problem`); else ``fit.matrix``."""
    guesses = list(hints)
    if len(fit.src) >= 2 * _min_points("homography"):
        try:
            guesses.append(_robust_fit(fit.src, fit.dst, "homography")[0])
        except AlignmentError:
            pass
    for guess in guesses:
        if guess is not None and _plausible(guess, shape) and not perspective_problem(guess, shape):
            return guess
    return fit.matrix


def _homography_fit(ref: np.ndarray, mov: np.ndarray, start: np.ndarray, candidates: np.ndarray) -> _Fit:
    """Patch refinement with a homography from ``start``; ``problem`` also reports a result that is no
    plausible view of a flat plate (:func:`perspective_problem`) or rests on a cluster of patches
    (:func:`_spread_problem`)."""
    alt = _refine(ref, mov, start, "homography", candidates)
    if not alt.problem:
        alt.problem = perspective_problem(alt.matrix, mov.shape) or _spread_problem(alt, candidates, mov.shape,
                                                                                     _patch_size(ref.shape))
    return alt


def _spread_problem(fit: _Fit, candidates: np.ndarray, mov_shape: tuple[int, ...], size: int) -> str:
    """Why the agreeing patches of ``fit`` are too close together to fix a homography, or "".

    Eight parameters fitted to one corner of the plate extrapolate by pixels elsewhere: the convex
    hull of the agreeing patch centres must cover :data:`MIN_SPREAD` of the hull of all candidate
    centres that lie inside the moving frame (``size``: patch side, px).
    """
    inside = _inside(candidates, fit.matrix, mov_shape, size) + size / 2.0
    agreeing = fit.dst[fit.keep] if len(fit.keep) == len(fit.dst) else fit.dst
    if len(inside) < 3 or len(agreeing) < 3:
        return "too few patches to spread a homography over the frame"
    share = _hull_area(agreeing) / max(_hull_area(inside), 1e-9)
    if share < MIN_SPREAD:
        return f"the agreeing patches span {share:.0%} of the frame's patch area (need {MIN_SPREAD:.0%})"
    return ""


def _hull_area(points: np.ndarray) -> float:
    """Area (px^2) of the convex hull of N x 2 points."""
    return float(cv2.contourArea(cv2.convexHull(points.astype(np.float32))))


def _prefer(fit: _Fit, verdict: _Verdict, alt: _Fit, alt_verdict: _Verdict) -> str:
    """Why the homography ``alt`` should replace ``fit``, or "" to keep ``fit``: ``alt`` passed every
    gate and ``fit`` did not, or ``alt`` agrees with :data:`MORE_AGREEING` times as many patches (and
    at least 3 more), or leaves much less residual (:func:`_same_points_better`'s rule)."""
    if alt_verdict.problems:
        return ""
    if verdict.problems:
        return "; ".join(verdict.problems)
    if alt.used >= MORE_AGREEING * fit.used and alt.used >= fit.used + 3:
        return f"{fit.used} patches agree against {alt.used} for a homography"
    if fit.residual > 2 * alt.residual and fit.residual - alt.residual > HOMOGRAPHY_GAIN_PX:
        return f"patch residual {fit.residual:.2f} px against {alt.residual:.2f} px of a homography"
    return ""


# --------------------------------------------------------------------------------- fallback
def _ecc_global(ref_small: np.ndarray, mov_small: np.ndarray, model: str) -> np.ndarray | None:
    """Whole-image ECC from the identity at 1/4 then 1/2 of the reduced scale (small motions only; the
    patch refinement does the fine work); returns the matrix in reduced-scale coordinates or None."""
    motion = {"translation": cv2.MOTION_TRANSLATION, "rigid": cv2.MOTION_EUCLIDEAN,
              "similarity": cv2.MOTION_AFFINE, "affine": cv2.MOTION_AFFINE,
              "homography": cv2.MOTION_HOMOGRAPHY}[model]
    warp_m = np.eye(3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-6)
    try:
        for level in (0.25, 0.5):
            r = cv2.resize(ref_small, None, fx=level, fy=level, interpolation=cv2.INTER_AREA)
            m = cv2.resize(mov_small, None, fx=level, fy=level, interpolation=cv2.INTER_AREA)
            scaled = _scaling(level) @ warp_m @ _scaling(1.0 / level)
            rows = 3 if motion == cv2.MOTION_HOMOGRAPHY else 2
            _, found = cv2.findTransformECC(_bandpass(r), _bandpass(m), scaled.astype(np.float32)[:rows],
                                            motion, criteria, None, 5)
            full = np.eye(3)
            full[: found.shape[0]] = found
            warp_m = _scaling(1.0 / level) @ full @ _scaling(level)
    except cv2.error:
        return None
    # ECC's warp maps reference -> moving; we need moving -> reference
    return np.linalg.inv(warp_m.astype(np.float64))


# ------------------------------------------------------------------------------------ scoring
def _score(ref_small: np.ndarray, mov_small: np.ndarray, matrix_small: np.ndarray) -> tuple[float, float]:
    """(band-pass normalised correlation on the overlap, overlap fraction of the reference)."""
    h, w = ref_small.shape
    flags = cv2.INTER_LINEAR
    if np.allclose(matrix_small[2], (0.0, 0.0, 1.0)):
        warped = cv2.warpAffine(mov_small, matrix_small[:2], (w, h), flags=flags)
        valid = cv2.warpAffine(np.ones_like(mov_small), matrix_small[:2], (w, h), flags=cv2.INTER_NEAREST)
    else:
        warped = cv2.warpPerspective(mov_small, matrix_small, (w, h), flags=flags)
        valid = cv2.warpPerspective(np.ones_like(mov_small), matrix_small, (w, h), flags=cv2.INTER_NEAREST)
    valid = cv2.erode(valid, np.ones((9, 9), np.uint8)) > 0.5
    overlap = float(valid.mean())
    if valid.sum() < 100:
        return 0.0, overlap
    a = _bandpass(ref_small)[valid]
    b = _bandpass(warped)[valid]
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return (float((a * b).sum()) / denominator if denominator > 0 else 0.0), overlap


# ----------------------------------------------------------------------------------- public API
def estimate_transform(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    model: str = "similarity",
    max_side: int = 1024,
    initial: np.ndarray | None = None,
    min_score: float = MIN_SCORE,
    fallback: str | None = "homography",
) -> Registration:
    """Find the matrix that maps pixels of ``moving`` onto ``reference``.

    Both are H x W (x C) images of the same plate (float in [0, 1] or uint8/uint16; sizes may differ,
    gray and RGB may be mixed). ``model`` is one of :data:`MODELS`; ``max_side`` bounds the coarse
    feature search in pixels; ``initial`` (3 x 3, moving -> reference) skips the feature search and only
    refines. ``fallback`` ("homography" or None) is the model also fitted when ``model`` does not
    clearly fit the patches (a camera that tilted: see :func:`_worth_a_homography`); it replaces
    ``model`` when it passes every gate and is a plausible view of a flat plate
    (:func:`perspective_problem`), and ``model`` failed a gate or agrees with far fewer patches
    (:func:`_prefer`); ``Registration.model`` says which was used and ``message`` why.

    Returns a :class:`Registration`; ``ok`` is False (with a ``message``) when the estimate cannot be
    trusted: blank image, fewer than :data:`MIN_INLIERS` feature inliers and no fallback, fewer than
    :data:`MIN_MATCHED` of the structured patches matching at all (another plate), fewer than
    :data:`MIN_PATCHES` (or :data:`MIN_AGREEING` of the matched) agreeing patches, residual above
    :data:`MAX_RESIDUAL_PX` px (:data:`FALLBACK_MAX_RESIDUAL_PX` when the features found no consensus
    and whole-image ECC gave the start), overlap below :data:`MIN_OVERLAP` or band-pass correlation
    below ``min_score``.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)}.")
    if fallback not in (None, "homography"):
        raise ValueError(f"fallback {fallback!r}: use 'homography' or None.")
    ref, mov = to_gray(reference, "reference"), to_gray(moving, "moving")
    _check_sizes(ref.shape, mov.shape)
    ref_small, f_ref = _reduce(ref, max_side)
    mov_small, f_mov = _reduce(mov, max_side)
    for name, small in (("reference", ref_small), ("moving", mov_small)):
        if float(small.std()) < 2e-3:
            return Registration(np.eye(3), message=f"{name} image is blank (constant); nothing to align on.",
                                model=model)
    inliers, notes, max_residual, coarse_h = 0, [], MAX_RESIDUAL_PX, None
    if initial is not None:
        matrix = np.asarray(initial, dtype=np.float64)
        if matrix.shape != (3, 3) or not _plausible(matrix, mov.shape):
            raise AlignmentError(f"initial matrix {matrix.tolist()} is not a usable 3 x 3 transform.")
    else:
        found, inliers, note, coarse_h = _coarse(ref_small, mov_small, model, fallback)
        if found is None:
            return Registration(np.eye(3), inliers=inliers, message=note, model=model)
        if note:
            notes.append(note)
            max_residual = FALLBACK_MAX_RESIDUAL_PX
        matrix = _scaling(1.0 / f_ref) @ found @ _scaling(f_mov)
    candidates = _candidates(ref, ref_small, f_ref, mov.shape, matrix)
    judge = partial(_judge, ref_small=ref_small, mov_small=mov_small, factors=(f_ref, f_mov),
                    max_residual=max_residual, min_score=min_score)
    fit = _refine(ref, mov, matrix, model, candidates)
    verdict = judge(fit)
    # no homography after whole-image ECC (notes): 8 free parameters on a guess the features did not back
    if fallback == "homography" and model != "homography" and not notes and _worth_a_homography(fit, verdict):
        hints = [None if coarse_h is None else _scaling(1.0 / f_ref) @ coarse_h @ _scaling(f_mov),
                 None if initial is None or _is_affine(matrix) else matrix]  # a chained homography
        alt = _homography_fit(ref, mov, _homography_start(fit, hints, mov.shape), candidates)
        alt_verdict = judge(alt)
        reason = _prefer(fit, verdict, alt, alt_verdict)
        if reason:
            notes.append(f"{model} set aside ({reason}): homography used")
            fit, verdict = alt, alt_verdict
    return Registration(fit.matrix, inliers=inliers, residual=fit.residual, score=verdict.score,
                        ok=not verdict.problems, message="; ".join(notes + verdict.problems),
                        patches=fit.used, overlap=verdict.overlap, model=fit.model)


def _is_affine(matrix: np.ndarray) -> bool:
    return bool(np.allclose(matrix[2], (0.0, 0.0, 1.0)))


def _check_sizes(ref_shape: tuple[int, ...], mov_shape: tuple[int, ...]) -> None:
    """Raise :class:`ShapeMismatchError` when the frames differ in size by more than a factor 4."""
    ratio = max(ref_shape) / max(mov_shape)
    if not 0.25 <= ratio <= 4.0:
        raise ShapeMismatchError(
            f"frames differ in size by a factor {ratio:.1f} ({ref_shape[1]}x{ref_shape[0]} vs "
            f"{mov_shape[1]}x{mov_shape[0]} px); scan every frame of a plate at the same resolution."
        )


def _coarse(ref_small: np.ndarray, mov_small: np.ndarray, model: str, fallback: str | None = None
            ) -> tuple[np.ndarray | None, int, str, np.ndarray | None]:
    """Step 1 at reduced scale: (matrix in reduced px or None, feature inliers, note, homography).

    ORB + RANSAC with a similarity (an affine or homography when that is the model); without a
    plausible consensus, whole-image ECC from the identity, noted (the caller then tightens the
    residual gate). None comes with the message why nothing was found. With ``fallback`` =
    "homography", a RANSAC homography of the same matches is returned too (None otherwise): the start
    of the homography refinement when the model does not fit.
    """
    coarse_model = model if model in ("affine", "homography") else "similarity"
    ref_pts, ref_des = _orb(_normalise(ref_small))
    mov_pts, mov_des = _orb(_normalise(mov_small))
    pairs = _match(ref_des, mov_des)
    found, inliers = _ransac(mov_pts[pairs[:, 0]], ref_pts[pairs[:, 1]], coarse_model, threshold=3.0) \
        if len(pairs) else (None, 0)
    homography = None
    if fallback == "homography" and coarse_model != "homography" and len(pairs):
        homography = _ransac(mov_pts[pairs[:, 0]], ref_pts[pairs[:, 1]], "homography", threshold=3.0)[0]
    if found is not None and inliers >= MIN_INLIERS and _plausible(found, mov_small.shape):
        return found, inliers, "", homography
    # no feature consensus: whole-image ECC from the identity, accepted only with tight patches
    found = _ecc_global(ref_small, mov_small, coarse_model) if ref_small.shape == mov_small.shape else None
    lacking = f"features gave no plausible {coarse_model} ({inliers} inliers, need {MIN_INLIERS})"
    if found is None or not _plausible(found, mov_small.shape):
        return None, inliers, (f"{lacking} and whole-image ECC failed: the frames do not show the same "
                               "plate, or too little structure."), None
    return found, inliers, f"{lacking}: whole-image ECC fallback", None


def warp(moving: np.ndarray, matrix: np.ndarray, shape: Sequence[int], *, fill: float = 0.0) -> np.ndarray:
    """Resample ``moving`` (H x W (x C)) into the reference frame of ``shape`` (H, W, ...) with ``matrix``.

    Bilinear; pixels that fall outside ``moving`` take ``fill``. The dtype and channels of ``moving`` are
    kept.
    """
    h, w = int(shape[0]), int(shape[1])
    array = np.asarray(moving)
    matrix = np.asarray(matrix, dtype=np.float64)
    if np.allclose(matrix[2], (0.0, 0.0, 1.0)):
        return cv2.warpAffine(array, matrix[:2], (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return cv2.warpPerspective(array, matrix, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def warp_scan(pixels: np.ndarray, matrix: np.ndarray, shape: Sequence[int], bit_depth: int) -> np.ndarray:
    """:func:`warp` of a scan as read (float, or the file's uint8 / uint16), returned at ``bit_depth``.

    An integer scan is warped in float one channel at a time and converted back band by band: the
    values of warping the whole float scan, with one float channel in memory instead of the whole scan.
    """
    if pixels.dtype.kind == "f":
        return io.from_float(warp(pixels, matrix, shape), bit_depth)
    aligned = np.empty((*shape[:2], *pixels.shape[2:]), pixels.dtype)
    planes, source = (aligned[..., None], pixels[..., None]) if pixels.ndim == 2 else (aligned, pixels)
    for k in range(planes.shape[2]):
        moved = warp(io.to_float(source[..., k])[0], matrix, shape)
        for top in range(0, moved.shape[0], 1024):
            planes[top : top + 1024, :, k] = io.from_float(moved[top : top + 1024], bit_depth)
    return aligned


def align_series(
    frames: Sequence[np.ndarray],
    reference: str | int = "first",
    *,
    model: str = "similarity",
    max_side: int = 1024,
) -> list[Registration]:
    """Register every frame of one plate series to the reference frame.

    ``reference`` is ``"first"``, an index, or ``"previous"``: each frame is then registered to the last
    frame that aligned (normally the one before; a failed frame is skipped, not chained through) and the
    matrices are chained back to frame 0; to stop drift, every chained matrix is refined directly against
    frame 0 (patch ECC from the chained estimate) whenever that works. Returns
    one :class:`Registration` per frame (matrix maps the frame onto the reference frame; the reference
    itself gets the identity). Raises :class:`AlignmentError` when the reference is blank.
    """
    return [registration for _, registration in iter_series(frames, reference, model=model, max_side=max_side)]


def iter_series(
    frames: Sequence[np.ndarray],
    reference: str | int = "first",
    *,
    model: str = "similarity",
    max_side: int = 1024,
) -> Iterator[tuple[int, Registration]]:
    """:func:`align_series` one frame at a time: yields ``(index, Registration)`` in frame order.

    ``frames`` is only indexed (reference, current and, for ``"previous"``, the one before), so a
    sequence that reads scans from disk on demand keeps memory to three frames.
    """
    if len(frames) == 0:
        raise AlignmentError("no frames to align.")
    index = _reference_index(reference, len(frames))
    if float(_reduce(to_gray(frames[index], "reference"), 256)[0].std()) < 2e-3:
        raise AlignmentError(f"reference frame {index} is blank (constant); choose another with --reference N.")
    identity = Registration(np.eye(3), residual=0.0, score=1.0, ok=True, overlap=1.0, message="reference",
                            model=model)
    if reference != "previous":
        for i in range(len(frames)):
            yield i, (identity if i == index else
                      estimate_transform(frames[index], frames[i], model=model, max_side=max_side))
        return
    yield 0, identity
    anchor, anchor_matrix, anchor_model = 0, np.eye(3), model  # last frame that aligned, its matrix to frame 0
    for i in range(1, len(frames)):
        step = estimate_transform(frames[anchor], frames[i], model=model, max_side=max_side)
        chained = anchor_matrix @ step.matrix
        chained_model = max(anchor_model, step.model, key=MODELS.index)  # the composition's model
        if not step.ok:
            result = Registration(chained, inliers=step.inliers, residual=step.residual, score=step.score,
                                  ok=False, patches=step.patches, overlap=step.overlap,
                                  message=f"against frame {anchor}: {step.message}", model=chained_model)
        else:
            direct = estimate_transform(frames[index], frames[i], model=model, max_side=max_side,
                                        initial=chained)
            if direct.ok:
                direct.inliers = step.inliers
                result = direct
            else:
                result = Registration(chained, inliers=step.inliers, residual=step.residual, score=step.score,
                                      ok=True, patches=step.patches, overlap=step.overlap, model=chained_model,
                                      message=f"chained only (direct check against frame 0: {direct.message})")
            anchor, anchor_matrix, anchor_model = i, result.matrix, result.model
        yield i, result


def _reference_index(reference: str | int, n: int) -> int:
    if reference in ("first", "previous"):
        return 0
    try:
        index = int(reference)
    except (TypeError, ValueError):
        raise AlignmentError(f"reference {reference!r} is not 'first', 'previous' or a frame index.") from None
    if not -n <= index < n:
        raise AlignmentError(f"reference index {index} is outside the series of {n} frames (0..{n - 1}).")
    return index % n
