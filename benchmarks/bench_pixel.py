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
from rootscope.pixel import ForestParams, PixelClassifier, PostProcess, _Forest, postprocess_mask
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


J10_SCALE = 0.5  # work at half of the 4288 x 2848 photo (roots 2-3 px wide)
J10_CONTEXT = 20.0  # px at half scale: the lamp and tint are removed below this scale (FeatureSettings.background)
# My strokes on Photo_001 at half scale, (x, y), placed by eye on background-subtracted crops: one polyline
# down each main root (snapped to the darkest pixel within 4 px across: roots are darker than the agar here),
# the centre of each leaf rosette, and lines over agar, rim, plate edge, barcode label and the world outside.
J10_ROOTS = [
    [(528, 285), (530, 330), (528, 400), (530, 460), (535, 500), (540, 540), (545, 580)],
    [(716, 292), (714, 350), (710, 430), (715, 470), (735, 500), (755, 530), (760, 570)],
    [(898, 300), (896, 380), (898, 450), (905, 480), (920, 520), (933, 545)],
    [(1030, 290), (1028, 350), (1022, 430), (1025, 480), (1045, 520), (1057, 550)],
    [(1212, 300), (1205, 380), (1195, 450), (1192, 500), (1205, 540), (1214, 595)],
]
J10_LEAVES = [(530, 266), (716, 280), (898, 288), (1030, 274), (1210, 280)]
J10_BACKGROUND = [((400, 800), (1200, 800)), ((400, 1000), (1200, 1000)), ((620, 300), (620, 700)),
                  ((810, 300), (810, 700)), ((960, 300), (960, 650)), ((1120, 300), (1120, 650)),
                  ((400, 250), (470, 250)), ((318, 230), (318, 400)), ((1330, 400), (1330, 1050)),
                  ((1360, 400), (1360, 1050)), ((1700, 100), (1700, 1300)), ((100, 100), (100, 1300)),
                  ((400, 60), (1400, 60)), ((298, 450), (298, 1100)),
                  # the plate's edges and lid rims, which a first try took for roots
                  ((313, 630), (313, 860)), ((520, 1296), (1370, 1296)), ((520, 1310), (1370, 1310)),
                  ((740, 1264), (840, 1264)), ((1429, 490), (1429, 780)), ((1446, 490), (1446, 780))]
J10_ROOT_P = 0.35  # a pixel is root where the forest gives root at least this probability (faint roots)
J10_MIN_PX = 30  # smaller pieces of root or shoot are dropped (px at half scale)
J10_SHOOT_DARK = -0.08  # leaf pixels: at least this much darker than the agar around (intensity 0..1)
J10_REACH = 40.0  # px at half scale (~4.5 mm): a root system starts this close below its seedling
J10_SEED_RADIUS = 80.0  # px at half scale: a plant's roots start this close to its rosette centre
J10_ROOT_DARK = -0.015  # snapped root points kept only where the root is visible at least this much


def j10_strokes(image: np.ndarray) -> np.ndarray:
    """My strokes on Photo_001 at half scale (classes root, shoot, background), as a person paints in
    ilastik: lines down five main roots, each point snapped to the darkest pixel within 4 px across,
    with background lines 8 px to either side; the dark leaf pixels within 8 px of each rosette centre;
    lines over agar, rim, plate edge, barcode label and outside."""
    gray = image.mean(axis=2)
    contrast = gray - cv2.GaussianBlur(gray, (0, 0), J10_CONTEXT)
    labels = np.zeros(image.shape[:2], np.uint8)
    for line in J10_ROOTS:
        for (x0, y0), (x1, y1) in zip(line[:-1], line[1:]):
            for y in range(y0, y1):
                x = round(x0 + (x1 - x0) * (y - y0) / (y1 - y0))
                cols = np.arange(x - 4, x + 5)
                c = cols[np.argmin(contrast[y, cols])]
                if contrast[y, c] < J10_ROOT_DARK:
                    labels[y, c] = 1
                    labels[y, [c - 8, c + 8]] = 3
    for x, y in J10_LEAVES:
        window = (slice(y - 8, y + 9), slice(x - 8, x + 9))
        labels[window][contrast[window] < J10_SHOOT_DARK] = 2
    for (x0, y0), (x1, y1) in J10_BACKGROUND:
        cv2.line(labels, (x0, y0), (x1, y1), 3, 2)
    return labels


def faint_roots(proba: np.ndarray, classes: list[str]) -> np.ndarray:
    """Mask (1 root, 2 shoot, 3 background) where root wins from ``J10_ROOT_P`` probability (the
    faint root hairs and pale upper roots score lower than the painted main roots), pieces under
    ``J10_MIN_PX`` dropped."""
    pred = np.argmax(proba, axis=0).astype(np.uint8) + 1
    pred[(pred == 3) & (proba[0] >= J10_ROOT_P)] = 1
    one_hot = np.eye(3, dtype=np.float32)[pred - 1].transpose(2, 0, 1)
    return postprocess_mask(one_hot, classes, PostProcess(min_object_px=J10_MIN_PX))


def count_plants(pred: np.ndarray, *, min_root_px: int, min_shoot_px: int, reach_px: float) -> tuple[int, int]:
    """``(plants, root components)``: a plant is a shoot component (class 2, at least ``min_shoot_px``)
    with at least ``min_root_px`` root pixels (class 1) in root components that come within ``reach_px``
    of it (a root system hangs below its seedling; the pale hypocotyl between them may be missed).
    Root components of ``min_root_px`` or more are counted too (rim and label false positives show there)."""
    from scipy import ndimage

    n_shoot, shoot = cv2.connectedComponents((pred == 2).astype(np.uint8))
    n_root, root = cv2.connectedComponents(cv2.morphologyEx((pred == 1).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)))
    shoot_px = np.bincount(shoot.ravel(), minlength=n_shoot)
    shoot[np.isin(shoot, np.flatnonzero(shoot_px < min_shoot_px))] = 0
    root_px = np.bincount(root.ravel(), minlength=n_root)
    big = [k for k in range(1, n_root) if root_px[k] >= min_root_px]
    if not shoot.any():
        return 0, len(big)
    dist, (rr, cc) = ndimage.distance_transform_edt(shoot == 0, return_indices=True)
    owner = shoot[rr, cc]
    held = np.zeros(n_shoot, np.int64)
    for k, size in enumerate(root_px):
        if k == 0:
            continue
        where = root == k
        near = where & (dist <= reach_px)
        if near.any():
            held[np.bincount(owner[near]).argmax()] += size
    return int((held >= min_root_px).sum()), len(big)


def architecture_plants(pred: np.ndarray, name: str) -> list[float]:
    """Root length (px) of each plant that :func:`rootscope.architecture.find_architecture` finds in the
    root class, seeded at the centroid of each shoot of at least 30 px (``J10_SEED_RADIUS`` px reach,
    at least 100 px of root)."""
    from rootscope.architecture import find_architecture

    n, _, stats, centres = cv2.connectedComponentsWithStats((pred == 2).astype(np.uint8))
    seeds = np.array([(r, c) for (c, r), area in zip(centres[1:], stats[1:, cv2.CC_STAT_AREA]) if area >= 30]).reshape(-1, 2)
    arch = find_architecture(pred == 1, seed_points=seeds, seed_radius_px=J10_SEED_RADIUS, min_plant_length_px=100,
                             name=name)
    return [sum(r.length_px for r in plant.roots) for plant in arch.plants]


def arabidopsis() -> None:
    """Train on my strokes on J10 Photo_001, segment both plates, count seedlings with roots (5 per plate).

    Ours: Lab features with the lamp and tint removed (``FeatureSettings.background``) and faint roots kept
    (:func:`faint_roots`); baseline: the same strokes with the default settings (grey, most probable class)."""
    folder = DATA / "rhizoscan-arabidopsis" / "J10"
    OUT.mkdir(parents=True, exist_ok=True)

    def load(path: Path) -> np.ndarray:
        return cv2.resize(io.read_image(path), None, fx=J10_SCALE, fy=J10_SCALE, interpolation=cv2.INTER_AREA)

    train = load(folder / "Photo_001.jpg")
    labels = j10_strokes(train)
    classes = ["root", "shoot", "background"]
    settings = FeatureSettings(color="lab", background=J10_CONTEXT)
    model, t_fit, _ = timed(PixelClassifier(features=settings).fit, [train], [labels], classes)
    base, b_fit, _ = timed(PixelClassifier(postprocess=PostProcess(min_object_px=J10_MIN_PX)).fit, [train], [labels], classes)
    io.write_image(OUT / "j10_Photo_001_strokes.png", labels)
    print(f"\n### Arabidopsis J10 plates (no truth; strokes by eye on Photo_001 only, {100 * (labels > 0).mean():.2f} % "
          f"of its pixels; {train.shape[1]}x{train.shape[0]} px = half scale; overlays {OUT}/j10_*_overlay.jpg, "
          "red root, green shoot)\n")
    print("| figure | ours (Lab, background 20 px, root p >= 0.35) | baseline (same strokes, default settings) | note |")
    print("|---|---|---|---|")
    row("train on the strokes (s)", f"{t_fit:.1f}", f"{b_fit:.1f}", "2 shared cores")
    for path in sorted(folder.glob("*.jpg")):
        try:
            small = load(path)
        except InputError as exc:
            row(f"J10 {path.name}", "skipped (named, run goes on)", "", str(exc).split("(")[0].strip())
            continue
        proba, seconds, _ = timed(model.predict_proba, small)
        pred = faint_roots(proba, model.classes)
        plain, b_seconds, _ = timed(base.predict, small)
        found = [count_plants(m, min_root_px=150, min_shoot_px=30, reach_px=J10_REACH) for m in (pred, plain)]
        overlay = small.copy()
        overlay[pred == 1] = (1, 0, 0)
        overlay[pred == 2] = (0, 1, 0)
        io.write_image(OUT / f"j10_{path.stem}_overlay.jpg", overlay)
        role = "training plate" if path.name == "Photo_001.jpg" else "other plate, other lamp"
        row(f"{path.name} ({role}): seedlings with a root system (truth 5)", str(found[0][0]), str(found[1][0]),
            f"root within {J10_REACH:g} px of a shoot")
        lengths = [architecture_plants(m, path.name) for m in (pred, plain)]
        row(f"{path.name}: plants by find_architecture (seeds = shoots): root length each (px)",
            f"{len(lengths[0])}: {', '.join(f'{v:.0f}' for v in lengths[0])}",
            f"{len(lengths[1])}: {', '.join(f'{v:.0f}' for v in lengths[1])}", f"seed radius {J10_SEED_RADIUS:g} px")
        row(f"{path.name}: root components >= 150 px", str(found[0][1]), str(found[1][1]), "5 if every root system is whole")
        row(f"{path.name}: root pixels (% of photo)", f"{100 * (pred == 1).mean():.2f}", f"{100 * (plain == 1).mean():.2f}", "")
        row(f"{path.name}: predict (s)", f"{seconds:.1f}", f"{b_seconds:.1f}", f"ratio {b_seconds / seconds:.2f}")


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
