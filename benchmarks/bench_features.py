"""Speed and memory of the filter bank on a 4 MP RGB scan, against the scikit-image/scipy route and
fastfilters2 (ilastik's engine), in the same script on the same input.

    .venv/bin/python benchmarks/bench_features.py            # ~2-3 min on 2 shared cores
    .venv/bin/python benchmarks/bench_features.py --big      # adds the 10000 x 10000 memory check (slow)

Each measurement runs in its own subprocess so that its peak RSS (``ru_maxrss``) is its own; the
tracemalloc peak counts NumPy/OpenCV arrays allocated by Python. The baseline computes the same features
(same names, scales, channels) with ``scipy.ndimage`` Gaussian filters and scikit-image's
``structure_tensor``/``hessian_matrix`` eigenvalues; ``multiscale_basic_features`` (its own, smaller
feature set) is timed as well for reference.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

SIZE = 2000
ILASTIK_SCALES = (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)


def scan(size: int = SIZE) -> np.ndarray:
    """A synthetic plate (rootscope.synth when present) as float32 RGB in [0, 1]."""
    try:
        from rootscope.synth import SynthConfig, make_series

        return make_series(frames=1, seed=0, config=SynthConfig(size=size))[0].image.astype(np.float32)
    except ImportError:
        from scipy import ndimage as ndi

        rng = np.random.default_rng(0)
        return np.clip(ndi.gaussian_filter(rng.random((size, size, 3)), (2, 2, 0)) * 2 - 0.5, 0, 1).astype(np.float32)


def full_settings(color: str):
    from rootscope.features import FILTERS, FeatureSettings

    return FeatureSettings(filters={f: ILASTIK_SCALES for f in FILTERS}, color=color, tile=4096)


def ours(image: np.ndarray, color: str) -> int:
    from rootscope.features import compute_features

    return compute_features(image, full_settings(color)).shape[-1]


def ours_tiled(image: np.ndarray, color: str) -> int:
    from rootscope.features import FeatureSettings, iter_feature_tiles

    settings = full_settings(color)
    settings = FeatureSettings(settings.filters, settings.color, tile=1024)
    n = 0
    for _, feats in iter_feature_tiles(image, settings):
        n = feats.shape[-1]
    return n


def ours_ilastik7(image: np.ndarray, color: str) -> int:
    """The 7 features fastfilters2 gives per scale: smoothing, gradient, LoG, structure 2, Hessian 2."""
    from rootscope.features import FeatureSettings, compute_features

    names = ("gaussian", "log", "gradient", "structure", "hessian")
    return compute_features(image, FeatureSettings({f: ILASTIK_SCALES for f in names}, color, 4096)).shape[-1]


def fastfilters2_route(image: np.ndarray, color: str) -> int:
    import fastfilters2

    from rootscope.features import to_channels

    out = []
    for channel in to_channels(image, color):
        for sigma in ILASTIK_SCALES:
            out.append(fastfilters2.compute_filters(np.ascontiguousarray(channel), sigma))
    return sum(o.shape[0] for o in out)


def skimage_scipy(image: np.ndarray, color: str) -> int:
    """The same feature set the way a scikit-image + scipy user writes it (float32 in, float64 inside)."""
    from scipy import ndimage as ndi
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals, structure_tensor, structure_tensor_eigenvalues

    from rootscope.features import to_channels

    feats = []
    for ch in to_channels(image, color):
        for s in ILASTIK_SCALES:
            g = ndi.gaussian_filter(ch, s, mode="reflect")
            feats += [g, ndi.gaussian_laplace(ch, s, mode="reflect"), ndi.gaussian_gradient_magnitude(ch, s, mode="reflect"),
                      g - ndi.gaussian_filter(ch, 0.66 * s, mode="reflect")]
            feats += list(structure_tensor_eigenvalues(structure_tensor(ch, sigma=s / 2, mode="reflect", order="rc")))
            feats += list(hessian_matrix_eigvals(hessian_matrix(ch, sigma=s, mode="reflect", order="rc", use_gaussian_derivatives=True)))
    return np.stack(feats, axis=-1).shape[-1]


def skimage_mbf(image: np.ndarray, color: str) -> int:
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(image, channel_axis=-1 if image.ndim == 3 else None, sigma_min=0.3,
                                     sigma_max=10.0, num_sigma=7, workers=2).shape[-1]


def big(_image: np.ndarray, color: str) -> int:
    """10000 x 10000 RGB scan through the default pixel-classifier feature bank, tile by tile."""
    from rootscope.features import FeatureSettings, iter_feature_tiles

    rng = np.random.default_rng(0)
    image = np.empty((10000, 10000, 3), np.float32)
    for r in range(0, 10000, 1000):
        image[r : r + 1000] = rng.random((1000, 10000, 3), dtype=np.float32)
    total = 0
    for (rows, cols), feats in iter_feature_tiles(image, FeatureSettings(color=color)):
        total += float(feats[::64, ::64].mean())
    return int(total > -1)


METHODS = {f.__name__: f for f in (ours, ours_tiled, ours_ilastik7, fastfilters2_route, skimage_scipy, skimage_mbf, big)}


def child(method: str, color: str, size: int) -> None:
    image = scan(size)
    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    n = METHODS[method](image, color)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    _, peak = tracemalloc.get_traced_memory()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    print(json.dumps({"seconds": seconds, "cpu": cpu, "features": n, "traced_gb": peak / 1024**3, "rss_gb": rss}))


def measure(method: str, color: str, size: int = SIZE) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--color", color, "--size", str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child")
    parser.add_argument("--color", default="rgb")
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--big", action="store_true", help="also run the 10000 x 10000 memory check")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.color, args.size)
        return
    print(f"filter bank on a {SIZE} x {SIZE} RGB synthetic plate; 2 shared CPU cores (other jobs running: "
          "timings are noisy, ratios are from the same script and input)")
    rows = []
    base = measure("skimage_scipy", "rgb")
    mine = measure("ours", "rgb")
    rows.append(("full bank, 7 scales x 8 features x RGB (s)", mine, base, "scikit-image + scipy"))
    tiled = measure("ours_tiled", "rgb")
    rows.append(("same, 1024 px tiles (s)", tiled, base, "scikit-image + scipy"))
    mbf = measure("skimage_mbf", "rgb")
    rows.append(("(ref) multiscale_basic_features, own 7x4x3 set (s)", mine, mbf, "skimage mbf"))
    ff = measure("fastfilters2_route", "rgb")
    mine7 = measure("ours_ilastik7", "rgb")
    rows.append(("ilastik's 7 features x 7 scales x RGB (s)", mine7, ff, "fastfilters2"))
    print("\nwall = elapsed seconds; cpu = CPU seconds of all the run's threads (less sensitive to other jobs)")
    print("\n| figure | ours wall / cpu | baseline wall / cpu | ratio wall / cpu (baseline / ours) | baseline is |")
    print("|---|---|---|---|---|")
    for name, a, b, what in rows:
        print(f"| {name} | {a['seconds']:.2f} / {a['cpu']:.2f} | {b['seconds']:.2f} / {b['cpu']:.2f} | "
              f"{b['seconds'] / a['seconds']:.1f}x / {b['cpu'] / a['cpu']:.1f}x | {what} |")
    print("\n| run | features | peak RSS (GB) | tracemalloc peak (GB) |\n|---|---|---|---|")
    for label, r in (("ours one pass", mine), ("ours tiled 1024", tiled), ("scikit-image + scipy", base),
                     ("multiscale_basic_features", mbf), ("ours ilastik-7", mine7), ("fastfilters2", ff)):
        print(f"| {label} | {r['features']} | {r['rss_gb']:.2f} | {r['traced_gb']:.2f} |")
    if args.big:
        r = measure("big", "gray")
        print(f"\n10000 x 10000 RGB float32 scan (1.2 GB itself), default bank (gray), tiles of 1024: "
              f"{r['seconds']:.0f} s wall, {r['cpu']:.0f} s cpu, peak RSS {r['rss_gb']:.2f} GB (target < 8 GB)")


if __name__ == "__main__":
    main()
