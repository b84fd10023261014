"""U-Net accuracy against training time: synthetic plates (dense masks, sparse scribbles), real images.

    .venv/bin/python benchmarks/bench_unet.py --threads 1           # ~5 min here: 1.5-min dense run
    .venv/bin/python benchmarks/bench_unet.py --minutes 5 --sparse --threads 1      # the acceptance run
    .venv/bin/python benchmarks/bench_unet.py --cpu-seconds 300 --sparse --threads 1  # same, on a busy machine
    .venv/bin/python benchmarks/bench_unet.py --no-synth --real --threads 1      # real images vs pixel classifier

Inference speed, training tiles/s and the memory of a 5000 x 5000 scan are in
``benchmarks/bench_unet_speed.py``.

Synthetic plates (``rootscope.synth``): training frames from ``--train-plates`` plates, Dice of the
root class on the last frame of ``--test-plates`` other plates (unseen), for the model file that
training writes (best checkpoint, class biases tuned on the validation frame). The budget is
``--minutes`` of wall time or, with ``--cpu-seconds``, CPU seconds of this process (a fair budget
when other jobs share the machine; ``--threads 1`` then). It counts the training steps and the
hard-example mining, not validation, checkpoints or the Dice curve printed on the way. Sparse labels
are person-like scribbles (``rootscope.scribbles``, 0.4 % of pixels) on the same training frames,
then ``--rounds`` RootPainter-style rounds within the same budget: the model's masks of the training
frames are "shown", correction strokes are painted where they are wrong (up to
``--correction-fraction`` of each frame per round; the validation frame is left as it is), and
training resumes. ``--real`` trains the U-Net (dense masks
rendered from RSML) and the pixel classifier on the same images of ``../shared/data`` and scores
both on the same held-out images.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from rootscope import io
from rootscope.metrics import dice
from rootscope.scribbles import add_corrections, make_scribbles, mask_to_labels
from rootscope.synth import SynthConfig, make_series
from rootscope.unet import SegmentationTask, TrainConfig, balanced_class_weights, load_segmenter, train
from rootscope.unet.data import Sample, segmentation_focus, split_samples
from rootscope.unet.train import calibrate_biases, last_path

CLASSES = ["background", "root", "seed", "shoot"]
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def frames(plates: range, n_frames: int, size: int) -> list:
    return [f for seed in plates for f in make_series(frames=n_frames, seed=seed, config=SynthConfig(size=size))]


def dense_samples(frames_: list) -> list[Sample]:
    out = []
    for i, f in enumerate(frames_):
        target = (f.mask + 1).astype(np.uint8)
        out.append(Sample(f.image, target, segmentation_focus(f.image, target, len(CLASSES), i), f"frame{i}"))
    return out


def sparse_labels(frames_: list, fraction: float) -> list[np.ndarray]:
    """Person-like scribbles per frame (label 1..4 = background, root, seed, shoot)."""
    return [make_scribbles(f.mask, classes=[0, 1, 2, 3], fraction=fraction, seed=i) for i, f in enumerate(frames_)]


def label_samples(frames_: list, labels: list[np.ndarray]) -> list[Sample]:
    return [Sample(f.image, lab, segmentation_focus(f.image, lab, len(CLASSES), i), f"frame{i}")
            for i, (f, lab) in enumerate(zip(frames_, labels))]


def root_dice(model_path: Path, test: list) -> float:
    seg = load_segmenter(model_path, device="cpu")
    return float(np.mean([dice(seg.predict(f.image) == 2, f.mask == 1) for f in test]))


def budget(config: TrainConfig) -> str:
    return f"{config.time_limit * 60:.0f} {'CPU' if config.cpu_clock else 'wall'} s"


def train_and_track(samples: list[Sample], test: list, out: Path, config: TrainConfig, marks: list[float],
                    curve: list, resume: bool = False, calibrate: bool = True) -> float:
    """Train (or resume); at each time mark (s) the last checkpoint is scored on the unseen frames (off the
    clock). With ``calibrate`` the best model's class biases are then tuned on the validation frame."""
    pending = [m for m in sorted(marks) if not curve or m > curve[-1][0]]

    def report(row: dict) -> None:
        if pending and row["train_s"] >= pending[0]:
            while pending and row["train_s"] >= pending[0]:
                pending.pop(0)
            curve.append((row["train_s"], row["epoch"], row["dice_root"], root_dice(last_path(out), test)))
            print(f"  {row['train_s']:6.0f} s  epoch {row['epoch']:3d}  val-tile root Dice {row['dice_root']:.3f}  "
                  f"unseen root Dice {curve[-1][3]:.3f}  ({row['tiles_per_s']:.1f} tiles/s)", flush=True)

    task = SegmentationTask(CLASSES, balanced_class_weights(samples, len(CLASSES)))

    def calibrated(best: Path) -> None:
        t = time.perf_counter()
        offsets = calibrate_biases(best, samples, config)
        print(f"  class logit offsets tuned on the validation frame ({time.perf_counter() - t:.0f} s): {offsets}",
              flush=True)

    result = train(samples, task, out, config, report=report, resume=resume, finish=calibrated if calibrate else None)
    return float(result.history["train_s"].iloc[-1])


def final_row(name: str, out: Path, test: list, curve: list, seconds: float) -> tuple:
    """Unseen root Dice, precision and recall of the model file ``out`` (calibrated)."""
    seg = load_segmenter(out, device="cpu")
    pred = [seg.predict(f.image) == 2 for f in test]
    truth = [f.mask == 1 for f in test]
    score = float(np.mean([dice(p, t) for p, t in zip(pred, truth)]))
    tp = sum(int((p & t).sum()) for p, t in zip(pred, truth))
    precision, recall = tp / max(sum(int(p.sum()) for p in pred), 1), tp / sum(int(t.sum()) for t in truth)
    curve.append((seconds, -1, float("nan"), score))
    print(f"  {name}: unseen root Dice {score:.3f} (precision {precision:.3f}, recall {recall:.3f})", flush=True)
    return name, f"{score:.3f}", precision, recall


def correct(labels: np.ndarray, predicted: np.ndarray, truth: np.ndarray, budget_px: int, seed: int) -> np.ndarray:
    """Correction strokes where ``predicted`` is wrong, pass after pass (each pass one stroke per wrong
    region, largest first), until ``budget_px`` new pixels are painted or nothing is left to correct."""
    start = np.count_nonzero(labels)
    for p in range(20):
        left = budget_px - (np.count_nonzero(labels) - start)
        more = add_corrections(labels, predicted, truth, left, seed=100 * seed + p) if left > 0 else labels
        if np.count_nonzero(more) == np.count_nonzero(labels):
            break
        labels = more
    return labels


def sparse_rounds(train_frames: list, test: list, out: Path, config: TrainConfig, args: argparse.Namespace,
                  marks: list[float], curve: list) -> tuple[float, float]:
    """Scribbles, then RootPainter-style rounds: train, show the model's masks of the training frames,
    paint correction strokes where they are wrong, resume training. Returns (labelled fraction, predict s)."""
    labels = sparse_labels(train_frames, args.sparse_fraction)
    truths = [mask_to_labels(f.mask, [0, 1, 2, 3]) for f in train_frames]
    held = {s.name for s in split_samples(label_samples(train_frames, labels), config.val_fraction, config.seed)[1]}
    shown = [i for i in range(len(train_frames)) if f"frame{i}" not in held]  # validation labels stay fixed
    limit, predict_s = config.time_limit, 0.0
    for r in range(args.rounds + 1):
        frac = sum(np.count_nonzero(lab) for lab in labels) / sum(lab.size for lab in labels)
        part = replace(config, time_limit=limit * (r + 1) / (args.rounds + 1))
        print(f"  round {r}: {100 * frac:.2f} % of pixels labelled, training to {budget(part)}", flush=True)
        samples = label_samples(train_frames, labels)
        train_and_track(samples, test, out, part, marks, curve, resume=r > 0, calibrate=False)
        if r == args.rounds:
            # scored on sparse labels, validation saturates (root Dice ~1 from round 1 on), so the "best"
            # checkpoint is an early one: the model is the last one, calibrated like the dense one
            shutil.copyfile(last_path(out), out)
            print(f"  last model, class logit offsets tuned on the validation frame: "
                  f"{calibrate_biases(out, samples, part)}", flush=True)
            return frac, predict_s
        t = time.perf_counter()
        seg = load_segmenter(last_path(out), device="cpu")
        for i in shown:
            labels[i] = correct(labels[i], seg.predict(train_frames[i].image), truths[i],
                                int(args.correction_fraction * truths[i].size), seed=r)
        predict_s += time.perf_counter() - t
    raise AssertionError("unreachable")


def load_real(image_path: Path, rsml_path: Path, width_px: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Image at ``scale`` and its root mask rendered from the RSML ``width_px`` wide (1 = root)."""
    from rootscope.rsml import read_rsml, render_mask

    image = cv2.resize(io.read_image(image_path), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    scene = read_rsml(rsml_path)
    for root in scene.all_roots():
        root.points = np.asarray(root.points, float) * scale
    return image, (render_mask(scene, image.shape[:2], width_px=width_px) > 0).astype(np.uint8)


def real_rows(args: argparse.Namespace, tmp: Path) -> list[tuple]:
    """U-Net and pixel classifier trained on the same real images (dense RSML masks); root Dice on the rest."""
    from rootscope.pixel import PixelClassifier

    till = DATA / "tillmore-barley" / "train"
    osr = DATA / "rootnav-osr"
    till_pairs = [(p, till / "rsml" / f"{p.stem}.rsml") for p in sorted((till / "imgs").glob("*.jpg"))][:13]
    osr_train = [(p, p.with_suffix(".rsml")) for p in sorted((osr / "train").glob("*.jpg"))]
    osr_valid = [(p, p.with_suffix(".rsml")) for p in sorted((osr / "valid").glob("*.jpg"))]
    setups = [("tillmore-barley", till_pairs[:3], {"train rest": till_pairs[3:]}, 9.0),
              ("rootnav-osr", osr_train[:7], {"train rest": osr_train[7:], "valid": osr_valid}, 5.0)]
    rows = []
    for name, train_pairs, tests, width in setups:
        train_set = [load_real(*p, width, 0.5) for p in train_pairs]
        samples = []
        for i, (image, mask) in enumerate(train_set):
            target = (mask + 1).astype(np.uint8)
            samples.append(Sample(image, target, segmentation_focus(image, target, 2, i), train_pairs[i][0].stem))
        task = SegmentationTask(["background", "root"], balanced_class_weights(samples, 2))
        config = TrainConfig(epochs=1000, time_limit=args.real_minutes, tile=args.tile, batch=args.batch,
                             width=args.width, depth=args.depth, lr=args.lr, tiles_per_epoch=8 * args.batch,
                             patience=1000, mine_every=args.mine_every, device="cpu")
        print(f"real {name}: U-Net {args.real_minutes:g} min on {len(samples)} images", flush=True)
        t = time.perf_counter()
        result = train(samples, task, tmp / f"{name}.pt", config,
                       finish=lambda best: calibrate_biases(best, samples, config))
        unet = load_segmenter(result.best_path, device="cpu")
        t_unet = time.perf_counter() - t
        t = time.perf_counter()
        pixel = PixelClassifier(seed=0).fit([im for im, _ in train_set], [2 - m for _, m in train_set],
                                            ["root", "background"])
        t_pixel = time.perf_counter() - t
        for split, pairs in tests.items():
            scores = []
            for pair in pairs:
                image, mask = load_real(*pair, width, 0.5)
                scores.append((dice(unet.predict(image) == 2, mask > 0), dice(pixel.predict(image) == 1, mask > 0)))
            u, px = np.mean(scores, axis=0)
            rows.append((f"{name} {split} ({len(pairs)}): root Dice", f"{u:.3f}", f"{px:.3f} (pixel classifier)",
                         f"{u / max(px, 1e-9):.2f}x",
                         f"train {len(samples)} images, RSML mask {width:g} px at scale 0.5; fit {t_unet:.0f} s vs {t_pixel:.0f} s"))
    return rows


def synthetic_rows(args: argparse.Namespace, tmp: Path, rows: list[tuple]) -> list:
    """Dense (and sparse) training on synthetic plates with Dice on unseen plates."""
    t0 = time.perf_counter()
    train_frames = frames(range(args.train_plates), args.frames, args.size)
    test = [make_series(frames=args.frames, seed=100 + s, config=SynthConfig(size=args.size))[-1]
            for s in range(args.test_plates)]
    print(f"data: {len(train_frames)} training frames, {len(test)} unseen test frames, {args.size} px "
          f"({time.perf_counter() - t0:.0f} s); torch threads {args.threads}; machine shared with other jobs",
          flush=True)
    cpu = args.cpu_seconds is not None
    limit_min = args.cpu_seconds / 60 if cpu else args.minutes
    config = TrainConfig(epochs=100_000, time_limit=limit_min, cpu_clock=cpu, tile=args.tile, batch=args.batch,
                         width=args.width, depth=args.depth, lr=args.lr, tiles_per_epoch=8 * args.batch,
                         patience=100_000, val_fraction=0.15, mine_every=args.mine_every, device="cpu")
    marks = [limit_min * 60 * f for f in (0.1, 0.25, 0.5, 0.75)]
    curve: list = []
    if not args.no_dense:
        print(f"dense masks, {budget(config)}:", flush=True)
        seconds = train_and_track(dense_samples(train_frames), test, tmp / "dense.pt", config, marks, curve)
        name, score, p, r = final_row("dense masks", tmp / "dense.pt", test, curve, seconds)
        rows.append((f"unseen root Dice, dense, {budget(config)}", score, "target 0.90", "",
                     f"precision {p:.3f}, recall {r:.3f}"))
    if args.sparse:
        print(f"sparse scribbles + {args.rounds} correction rounds, {budget(config)} in all:", flush=True)
        sparse_curve: list = []
        frac, predict_s = sparse_rounds(train_frames, test, tmp / "sparse.pt", config, args, marks, sparse_curve)
        name, score, p, r = final_row("sparse", tmp / "sparse.pt", test, sparse_curve, limit_min * 60)
        rows.append((f"unseen root Dice, sparse {100 * frac:.2f} %, {budget(config)}", score, "target 0.85", "",
                     f"precision {p:.3f}, recall {r:.3f}; {args.rounds} rounds; showing masks {predict_s:.0f} s"))
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1.5, help="training time per run (wall minutes)")
    ap.add_argument("--cpu-seconds", type=float, default=None,
                    help="instead of --minutes: stop on this many CPU seconds of the process (fair on a busy machine)")
    ap.add_argument("--size", type=int, default=2000, help="synthetic scan side (px)")
    ap.add_argument("--train-plates", type=int, default=3)
    ap.add_argument("--frames", type=int, default=3, help="frames per training plate")
    ap.add_argument("--test-plates", type=int, default=2)
    ap.add_argument("--sparse", action="store_true", help="also train on sparse scribbles")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense-mask run")
    ap.add_argument("--sparse-fraction", type=float, default=0.01, help="fraction of pixels scribbled")
    ap.add_argument("--rounds", type=int, default=3, help="correction rounds of the sparse run")
    ap.add_argument("--correction-fraction", type=float, default=0.004,
                    help="correction strokes per frame and round (fraction of its pixels)")
    ap.add_argument("--mine-every", type=int, default=5, help="hard-example mining every N epochs (0 = off)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--tile", type=int, default=128, help="training tile side (px)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the trained models in this folder")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=8, help="U-Net first-level channels")
    ap.add_argument("--depth", type=int, default=4, help="U-Net down-sampling levels")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--real", action="store_true", help="real images: U-Net vs pixel classifier, same split")
    ap.add_argument("--real-minutes", type=float, default=3.0, help="U-Net training time per real data set")
    ap.add_argument("--no-synth", action="store_true", help="skip the synthetic training runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows, curve = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.keep or Path(tmp)
        if not args.no_synth:
            curve = synthetic_rows(args, tmp, rows)
        if args.real:
            rows.extend(real_rows(args, tmp))
    if curve:
        print("\ncurve (dense): train s | epoch | val-tile root Dice | unseen root Dice")
        for r in curve:
            print(f"  {r[0]:7.0f} | {r[1]:4d} | {r[2]:.3f} | {r[3]:.3f}")
    print(f"\n{'figure':44s} | {'ours':>8s} | {'baseline':>28s} | {'ratio':>6s} | note")
    for r in rows:
        print(f"{r[0]:44s} | {r[1]:>8s} | {r[2]:>28s} | {r[3]:>6s} | {r[4]}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; torch threads {args.threads}; absolute times "
          "grow with the machine's load (ratios come from the same script and input)")

if __name__ == "__main__":
    main()
