"""Accuracy and speed of the scribble-trained pixel classifier, against the scikit-image + scikit-learn
recipe (``multiscale_basic_features`` + ``RandomForestClassifier``) on the same scribbles and images.

    .venv/bin/python benchmarks/bench_pixel.py            # synthetic + speed + real data (~5 min, 2 shared cores)
    .venv/bin/python benchmarks/bench_pixel.py --quick    # synthetic + speed only

Scribbles imitate a person in ilastik: thin strokes per class from the truth mask
(:func:`rootscope.scribbles.make_scribbles`), then ``ROUNDS`` rounds of correction strokes where the
live prediction on the *training* image is wrong (:func:`rootscope.scribbles.add_corrections`); all
scores are on *other* images. The Arabidopsis plates (no truth) get strokes I placed by eye on
Photo_001 (coordinates in this file). Real images have no masks: the truth is the RSML rendered at
``width_px`` (given in the table); we also give a width-tolerant F1 (precision = predicted root within
``TOL`` px of a root centre line, recall = centre-line pixels found). Overlays go to ``out/bench/``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from rootscope import io
from rootscope.errors import InputError
from rootscope.features import FeatureSettings, compute_features
from rootscope.metrics import per_class_scores
from rootscope.pixel import ForestParams, PixelClassifier, PostProcess, _Forest
from rootscope.scribbles import add_corrections, make_scribbles, mask_to_labels

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "out" / "bench"
SYNTH_CLASSES = ["root", "seed", "shoot", "background"]
SYNTH_ORDER = (1, 2, 3, 0)
ROUNDS = 3
FRACTION = 0.004  # first strokes; each correction round adds at most ROUND_FRACTION
ROUND_FRACTION = 0.0015
TOL = 4


def row(figure: str, ours: str, baseline: str = "", ratio: str = "") -> None:
    print(f"| {figure} | {ours} | {baseline} | {ratio} |", flush=True)


def paint_and_train(images, truths, classes, order, settings, seed=0, **kw) -> tuple[PixelClassifier, list]:
    """First strokes plus correction rounds on each training image; returns the model and the labels."""
    labels = [make_scribbles(t, order, fraction=FRACTION, seed=seed + i) for i, t in enumerate(truths)]
    truth_labels = [mask_to_labels(t, order) for t in truths]
    for r in range(ROUNDS + 1):
        model = PixelClassifier(features=settings, seed=seed, **kw).fit(images, labels, classes)
        if r == ROUNDS:
            break
        labels = [add_corrections(lab, model.predict(im), tl, budget_px=int(ROUND_FRACTION * lab.size), seed=r)
                  for lab, im, tl in zip(labels, images, truth_labels)]
    return model, labels


def synth_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    s = per_class_scores(pred, mask_to_labels(truth, SYNTH_ORDER), 5)
    return s[1]["dice"], float(np.mean([s[k]["iou"] for k in (1, 2, 3, 4)]))


def skimage_recipe(images, labels, n_classes):
    """The scikit-image trainable-segmentation recipe on the same scribbles (a fitted classifier)."""
    from sklearn.ensemble import RandomForestClassifier
    from skimage.feature import multiscale_basic_features

    def feats(im):
        return multiscale_basic_features(im, channel_axis=-1, sigma_min=0.3, sigma_max=10, num_sigma=7, workers=2)

    x = np.concatenate([feats(im)[lab > 0] for im, lab in zip(images, labels)])
    y = np.concatenate([lab[lab > 0] for lab in labels])
    clf = RandomForestClassifier(n_estimators=100, n_jobs=-1, class_weight="balanced", random_state=0).fit(x, y)
    return lambda im: clf.predict(feats(im).reshape(-1, x.shape[1])).reshape(im.shape[:2]).astype(np.uint8)


def synthetic(size: int, quick: bool) -> None:
    from rootscope.synth import SynthConfig, make_series

    frames = make_series(frames=4, seed=0, config=SynthConfig(size=size))
    f0, others = frames[0], frames[1:]
    print(f"\n### Synthetic plates ({size} px, 4 frames, train on frame 0, score frames 1-3; "
          f"{ROUNDS} correction rounds)\n")
    print("| figure | ours | baseline (skimage mbf + sklearn RF, same scribbles) | note |\n|---|---|---|---|")
    for color in (("gray",) if quick else ("gray", "rgb", "lab", "hsv")):
        model, labels = paint_and_train([f0.image], [f0.mask], SYNTH_CLASSES, SYNTH_ORDER, FeatureSettings(color=color))
        scores = np.mean([synth_scores(model.predict(f.image), f.mask) for f in others], axis=0)
        share = float((labels[0] > 0).mean())
        if color == "gray":
            recipe = skimage_recipe([f0.image], labels, 4)
            base = np.mean([synth_scores(recipe(f.image), f.mask) for f in others], axis=0)
            row("root F1 (gray features)", f"{scores[0]:.3f}", f"{base[0]:.3f}", "target >= 0.90")
            row("mean IoU root/seed/shoot/background", f"{scores[1]:.3f}", f"{base[1]:.3f}", "target >= 0.80")
            row("scribbled pixels (% of training frame)", f"{100 * share:.2f} %", "same", "target < 1 %")
            lgbm, fit_wall, _ = timed(PixelClassifier(engine="lightgbm").fit, [f0.image], labels, SYNTH_CLASSES)
            _, rf_wall, rf_cpu = timed(model.predict_proba, others[0].image)
            _, lg_wall, lg_cpu = timed(lgbm.predict_proba, others[0].image)
            lg = np.mean([synth_scores(lgbm.predict(f.image), f.mask) for f in others], axis=0)
            row("LightGBM engine (same scribbles): root F1 / mIoU", f"{lg[0]:.3f} / {lg[1]:.3f}",
                f"RF: {scores[0]:.3f} / {scores[1]:.3f}",
                f"predict 1 frame wall/cpu: LightGBM {lg_wall:.1f}/{lg_cpu:.1f} s, RF {rf_wall:.1f}/{rf_cpu:.1f} s")
        else:
            row(f"root F1 / mIoU with {color} features", f"{scores[0]:.3f} / {scores[1]:.3f}", "", f"scribbles {100 * share:.2f} %")


def timed(fn, *args, **kw):
    """``(result, wall seconds, CPU seconds of all threads)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kw)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def speed(size: int = 2000) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from rootscope.synth import SynthConfig, make_series

    f0 = make_series(frames=1, seed=1, config=SynthConfig(size=size))[0]
    labels = make_scribbles(f0.mask, SYNTH_ORDER, fraction=0.03, seed=0)
    rng = np.random.default_rng(0)
    labels.flat[rng.permutation(np.flatnonzero(labels))[20000:]] = 0
    n = int((labels > 0).sum())
    print(f"\n### Speed ({size} x {size} = {size * size / 1e6:.0f} MP RGB synthetic plate, {n} labelled px, "
          "default settings: gray, 7 scales, 49 features, 100 trees; 2 shared cores, wall / CPU seconds)\n")
    print("| figure | ours | baseline | ratio |\n|---|---|---|---|")
    model = PixelClassifier()
    (x, y), f_wall, f_cpu = timed(model.training_pixels, [f0.image], [labels], SYNTH_CLASSES)
    _, t_wall, t_cpu = timed(model.fit, [f0.image], [labels], SYNTH_CLASSES)
    p = model.forest_params
    sk, s_wall, s_cpu = timed(RandomForestClassifier(n_estimators=100, class_weight="balanced", n_jobs=-1, random_state=0).fit, x, y)
    row(f"train on {n} px: features + forest", f"{t_wall:.2f} / {t_cpu:.2f}", "", "target < 5 s")
    row("train: forest only (features cached, as in ilastik's live update)", f"{t_wall - f_wall:.2f} / {t_cpu - f_cpu:.2f}",
        f"{s_wall:.2f} / {s_cpu:.2f} (sklearn RF defaults)", f"{s_wall / max(t_wall - f_wall, 1e-9):.1f}x")
    _, p_wall, p_cpu = timed(model.predict_proba, f0.image)
    # baseline predictor: scikit-learn's predict_proba on the same forest and the same features
    same = RandomForestClassifier(n_estimators=p.n_estimators, min_samples_leaf=p.min_samples_leaf, max_depth=p.max_depth,
                                  max_samples=p.max_samples, class_weight="balanced", n_jobs=-1, random_state=0).fit(x, y)
    feats, ff_wall, ff_cpu = timed(compute_features, f0.image, model.features)
    flat = feats.reshape(-1, feats.shape[-1])
    sk_proba, k_wall, k_cpu = timed(same.predict_proba, flat)
    planes = np.ascontiguousarray(np.moveaxis(feats, -1, 0)).reshape(feats.shape[-1], -1)
    ours_proba, o_wall, o_cpu = timed(_Forest.from_sklearn(same).predict_proba, planes)
    agree = float(np.abs(ours_proba.T - sk_proba).max())
    row("predict 4 MP: features + forest, tiled", f"{p_wall:.2f} / {p_cpu:.2f}",
        f"{ff_wall + k_wall:.2f} / {ff_cpu + k_cpu:.2f} (features + sklearn predict_proba)",
        f"{(ff_wall + k_wall) / p_wall:.1f}x; target < 5 s")
    row("forest only on 4 M px", f"{o_wall:.2f} / {o_cpu:.2f}", f"{k_wall:.2f} / {k_cpu:.2f} (sklearn predict_proba)",
        f"{k_wall / o_wall:.1f}x; max |p diff| {agree:.1e}")


def tolerant_f1(pred_root: np.ndarray, centre: np.ndarray) -> float:
    near = cv2.dilate(centre.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * TOL + 1,) * 2)) > 0
    precision = float((pred_root & near).sum() / max(pred_root.sum(), 1))
    recall = float((pred_root & centre).sum() / max(centre.sum(), 1))
    return 2 * precision * recall / max(precision + recall, 1e-9)


def real(name: str, pairs: list[tuple[Path, Path]], n_train: int, width_px: float, scale: float) -> None:
    from rootscope.rsml import read_rsml, render_mask

    def load(img: Path, rsml: Path):
        image = io.read_image(img)
        scene = read_rsml(rsml)
        if scale != 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            for root in scene.all_roots():
                root.points = np.asarray(root.points, float) * scale
        mask = render_mask(scene, image.shape[:2], width_px=width_px)
        return image, mask, render_mask(scene, image.shape[:2], width_px=1)

    train = [load(*p) for p in pairs[:n_train]]
    test = [load(*p) for p in pairs[n_train:]]
    OUT.mkdir(parents=True, exist_ok=True)
    for color in ("gray", "rgb"):
        start = time.perf_counter()
        model, labels = paint_and_train([t[0] for t in train], [t[1] for t in train], ["root", "background"], (1, 0),
                                        FeatureSettings(color=color))
        t_train = time.perf_counter() - start
        f1, tol = [], []
        for i, (image, mask, centre) in enumerate(test):
            pred = model.predict(image)
            f1.append(per_class_scores(pred, mask_to_labels(mask, (1, 0)), 3)[1]["dice"])
            tol.append(tolerant_f1(pred == 1, centre > 0))
            if i < 2 and color == "gray":
                overlay = image.copy()
                overlay[(pred == 1) & (mask > 0)] = (0, 1, 0)
                overlay[(pred == 1) & (mask == 0)] = (1, 0, 0)
                overlay[(pred != 1) & (mask > 0)] = (0, 0, 1)
                io.write_image(OUT / f"{name}_{pairs[n_train + i][0].stem}_overlay.jpg", overlay)
        share = np.mean([(lab > 0).mean() for lab in labels])
        row(f"{name} ({color}): root F1 vs RSML mask {width_px:g} px / tolerant F1 ({TOL} px)",
            f"{np.mean(f1):.3f} / {np.mean(tol):.3f}",
            f"{n_train} train, {len(test)} test images, scale {scale:g}", f"scribbles {100 * share:.2f} %, {t_train:.0f} s")


J10_SCALE = 0.3324  # work at a third of the 4288 x 2848 photo
J10_OFFSET = (250, 100)  # (x, y) of the stroke coordinates below in the scaled photo
J10_ROOTS = [(100, 110, 170), (219, 110, 170), (341, 110, 170), (428, 110, 170), (546, 110, 170)]  # x, y0, y1
J10_LEAVES = [(100, 75), (222, 88), (347, 90), (437, 78), (551, 86)]
J10_BACKGROUND = [((20, 340), (560, 340)), ((130, 60), (200, 60)), ((250, 60), (320, 60)), ((160, 100), (160, 300)),
                  ((290, 100), (290, 250)), ((390, 100), (390, 250)), ((495, 110), (495, 250)),
                  ((640, 150), (640, 380)), ((50, 18), (500, 18)), ((760, 100), (760, 380))]


def j10_strokes(image: np.ndarray) -> np.ndarray:
    """My own strokes on Photo_001 (classes root, shoot, background), drawn as a person would in ilastik:
    short lines on five roots (snapped to the brightest pixel of each row within 4 px) with background
    lines 7 px to either side, dabs on the five
    leaf rosettes (the greenest pixels within 3 px), and lines across agar, rim, barcode and outside."""
    ox, oy = J10_OFFSET
    labels = np.zeros(image.shape[:2], np.uint8)
    gray = image.mean(axis=2)
    for x, y0, y1 in J10_ROOTS:
        for y in range(y0 + oy, y1 + oy):
            cols = np.arange(x + ox - 4, x + ox + 5)
            c = cols[np.argmax(gray[y, cols])]
            labels[y, c] = 1
            labels[y, [c - 7, c + 7]] = 3  # background right beside the root, as one paints after a first try
    green = image[..., 1] - 0.5 * (image[..., 0] + image[..., 2])
    for x, y in J10_LEAVES:
        r, c = y + oy, x + ox
        window = green[r - 3 : r + 4, c - 3 : c + 4]
        labels[r - 3 : r + 4, c - 3 : c + 4][window >= np.sort(window.ravel())[-6]] = 2
    for (x0, y0), (x1, y1) in J10_BACKGROUND:
        cv2.line(labels, (x0 + ox, y0 + oy), (x1 + ox, y1 + oy), 3, 2)
    return labels


def arabidopsis() -> None:
    """Train on my strokes on J10 Photo_001, segment both plates, count plant components (5 per plate)."""
    folder = DATA / "rhizoscan-arabidopsis" / "J10"
    OUT.mkdir(parents=True, exist_ok=True)

    def load(path: Path) -> np.ndarray:
        return cv2.resize(io.read_image(path), None, fx=J10_SCALE, fy=J10_SCALE, interpolation=cv2.INTER_AREA)

    train = load(folder / "Photo_001.jpg")
    labels = j10_strokes(train)
    model = PixelClassifier(postprocess=PostProcess(min_object_px=30)).fit([train], [labels], ["root", "shoot", "background"])
    io.write_image(OUT / "j10_Photo_001_strokes.png", labels)
    for path in sorted(folder.glob("*.jpg")):
        try:
            small = load(path)
        except InputError as exc:
            row(f"J10 {path.name}", "skipped (named, run goes on)", str(exc).split("(")[0].strip(), "")
            continue
        pred, seconds, _ = timed(model.predict, small)
        plant = cv2.morphologyEx((pred != 3).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(plant)
        big = int((stats[1:, cv2.CC_STAT_AREA] >= 150).sum())
        overlay = small.copy()
        overlay[pred == 1] = (1, 0, 0)
        overlay[pred == 2] = (0, 1, 0)
        io.write_image(OUT / f"j10_{path.stem}_overlay.jpg", overlay)
        role = "training plate" if path.name == "Photo_001.jpg" else "other plate"
        row(f"J10 {path.name} ({role}): plant components >= 150 px (5 plants)", str(big),
            f"{small.shape[1]}x{small.shape[0]} px; strokes {100 * (labels > 0).mean():.2f} % of Photo_001", f"{seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--j10-only", action="store_true", help="only the Arabidopsis plates")
    parser.add_argument("--size", type=int, default=1024, help="synthetic plate side for the accuracy table (px)")
    args = parser.parse_args()
    if not args.j10_only:
        synthetic(args.size, args.quick)
        speed()
    if args.quick:
        return
    if args.j10_only:
        print("\n| figure | ours | setup | note |\n|---|---|---|---|")
        arabidopsis()
        return
    print("\n### Real images (scribbles from RSML-rendered masks)\n\n| figure | ours | setup | note |\n|---|---|---|---|")
    till = DATA / "tillmore-barley" / "train"
    pairs = [(p, till / "rsml" / f"{p.stem}.rsml") for p in sorted((till / "imgs").glob("*.jpg"))][:13]
    real("tillmore-barley", pairs, 3, width_px=9, scale=0.5)
    osr = DATA / "rootnav-osr"
    pairs = [(p, p.with_suffix(".rsml")) for p in sorted((osr / "train").glob("*.jpg"))[:3] + sorted((osr / "valid").glob("*.jpg"))]
    real("rootnav-osr", pairs, 3, width_px=5, scale=0.5)
    arabidopsis()


if __name__ == "__main__":
    main()
