"""U-Net benchmark: accuracy against training time, inference speed, training speed, memory.

    .venv/bin/python benchmarks/bench_unet.py                  # a few min: 1.5-min dense training, speed, memory
    .venv/bin/python benchmarks/bench_unet.py --minutes 5 --sparse --threads 1   # the acceptance run
    .venv/bin/python benchmarks/bench_unet.py --no-synth --real --threads 1      # real images vs pixel classifier

Synthetic plates (``rootscope.synth``): training frames from ``--train-plates`` plates, Dice of the
root class on the last frame of ``--test-plates`` other plates (unseen). Sparse labels are person-like
scribbles (``rootscope.scribbles``) on the same training frames. Inference speed compares our path
(BatchNorm folded, channels-last, bf16 autocast where the CPU has it, batched tiles) with plain fp32
PyTorch tiling of the same model (NCHW, one tile at a time, same tiles and blending), interleaved,
best of ``--repeats``. The machine is shared with other jobs: read ratios, not absolute times; on a
busy machine ``--threads 1`` is about 3 x faster than 2 threads (OpenMP threads spin against other jobs).
``--real`` trains the U-Net (dense masks rendered from RSML) and the pixel classifier on the same
images of ``../shared/data`` and scores both on the same held-out images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from rootscope import io
from rootscope.metrics import dice
from rootscope.scribbles import make_scribbles
from rootscope.synth import SynthConfig, make_series
from rootscope.unet import SegmentationTask, TrainConfig, balanced_class_weights, load_segmenter, train
from rootscope.unet.data import Sample, segmentation_focus
from rootscope.unet.model import build_model, read_model_file
from rootscope.unet.predict import predict_tiled
from rootscope.unet.runtime import Runtime
from rootscope.unet.train import last_path

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


def sparse_samples(frames_: list, fraction: float) -> tuple[list[Sample], float]:
    out, labelled = [], 0
    for i, f in enumerate(frames_):
        labels = make_scribbles(f.mask, classes=[0, 1, 2, 3], fraction=fraction, seed=i)
        labelled += np.count_nonzero(labels)
        out.append(Sample(f.image, labels, segmentation_focus(f.image, labels, len(CLASSES), i), f"frame{i}"))
    return out, labelled / sum(f.mask.size for f in frames_)


def root_dice(model_path: Path, test: list) -> float:
    seg = load_segmenter(model_path, device="cpu")
    return float(np.mean([dice(seg.predict(f.image) == 2, f.mask == 1) for f in test]))


def train_and_track(samples: list[Sample], test: list, out: Path, config: TrainConfig, marks: list[float]) -> list:
    """Train; at each time mark (s) the last checkpoint is scored on the unseen frames (off the clock)."""
    curve, pending = [], sorted(marks)

    def report(row: dict) -> None:
        if pending and row["train_s"] >= pending[0]:
            while pending and row["train_s"] >= pending[0]:
                pending.pop(0)
            curve.append((row["train_s"], row["epoch"], row["dice_root"], root_dice(last_path(out), test)))
            print(f"  {row['train_s']:6.0f} s  epoch {row['epoch']:3d}  val-tile root Dice {row['dice_root']:.3f}  "
                  f"unseen root Dice {curve[-1][3]:.3f}  ({row['tiles_per_s']:.1f} tiles/s)", flush=True)

    task = SegmentationTask(CLASSES, balanced_class_weights(samples, len(CLASSES)))
    result = train(samples, task, out, config, report=report)
    best = root_dice(result.best_path, test)
    curve.append((float(result.history["train_s"].iloc[-1]), int(result.best["epoch"]), result.best["dice_root"], best))
    print(f"  stopped ({result.stopped}); best epoch {result.best['epoch']}: unseen root Dice {best:.3f}", flush=True)
    return curve


def inference_speed(model_path: Path, image: np.ndarray, repeats: int) -> tuple[float, float, float]:
    """Megapixels/s of ours and of plain fp32 tiling (best of ``repeats``, interleaved); mask agreement."""
    ours = load_segmenter(model_path, device="cpu")
    raw = build_model(read_model_file(model_path))  # the network as trained, fp32, NCHW
    fp32 = Runtime(torch.device("cpu"), None, channels_last=False)
    x = ours._prepare(image)
    t_ours, t_plain = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        p_ours = ours.predict_proba(image)
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        p_plain = predict_tiled(raw, x, fp32, tile=ours.tile, overlap=ours.overlap, batch=1,
                                multiple=raw.config.multiple)
        t_plain.append(time.perf_counter() - t)
    mp = image.shape[0] * image.shape[1] / 1e6
    agree = float(np.mean(p_ours.argmax(0) == p_plain.argmax(0)))
    return mp / min(t_ours), mp / min(t_plain), agree


def big_image_run(model_path: Path, size: int, threads: int) -> dict:
    """Segment a ``size x size`` plate in a fresh process; its peak resident memory and time."""
    code = f"""
import json, resource, time, numpy as np, cv2, torch
torch.set_num_threads({threads})
from rootscope.synth import SynthConfig, make_series
from rootscope.unet import load_segmenter
frame = make_series(frames=1, seed=7, config=SynthConfig(size=2000))[0]
image = cv2.resize(frame.image, ({size}, {size}), interpolation=cv2.INTER_LINEAR)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seg = load_segmenter({str(model_path)!r}, device="cpu")
t = time.perf_counter(); mask = seg.predict(image); t = time.perf_counter() - t
print(json.dumps({{"seconds": t, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "before_gb": base / 2**20, "image_gb": image.nbytes / 2**30, "shape": list(mask.shape)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed_rows(args: argparse.Namespace, train_frames: list, test: list, tmp: Path) -> list[tuple]:
    """Training tiles/s (ours vs fp32, short runs) and inference megapixels/s (ours vs plain fp32 tiling)."""
    runs = {}
    for precision in ("fp32", "auto"):
        runs[precision] = train(dense_samples(train_frames[:2]), SegmentationTask(CLASSES), tmp / f"{precision}.pt",
                                TrainConfig(epochs=2, tile=args.tile, batch=args.batch, width=args.width,
                                            tiles_per_epoch=4 * args.batch, device="cpu", precision=precision))
    ours_tps, base_tps = (runs[p].history["tiles_per_s"].max() for p in ("auto", "fp32"))
    ours, plain, agree = inference_speed(tmp / "dense.pt", test[0].image, args.repeats)
    return [(f"training tiles/s ({args.tile} px)", f"{ours_tps:.1f}", f"{base_tps:.1f} (fp32)",
             f"{ours_tps / base_tps:.2f}x", ""),
            (f"inference MP/s ({args.size}x{args.size})", f"{ours:.2f}", f"{plain:.2f} (plain fp32 tiles)",
             f"{ours / plain:.2f}x", f"masks agree on {100 * agree:.3f} % of pixels; target 2.5x")]


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
                             width=args.width, lr=args.lr, tiles_per_epoch=8 * args.batch, patience=1000, device="cpu")
        print(f"real {name}: U-Net {args.real_minutes:g} min on {len(samples)} images", flush=True)
        t = time.perf_counter()
        unet = load_segmenter(train(samples, task, tmp / f"{name}.pt", config).best_path, device="cpu")
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


def synthetic_rows(args: argparse.Namespace, tmp: Path, rows: list[tuple]) -> list[tuple]:
    """Dense (and sparse) training on synthetic plates with Dice on unseen plates; speed and memory."""
    t0 = time.perf_counter()
    train_frames = frames(range(args.train_plates), args.frames, args.size)
    test = [make_series(frames=args.frames, seed=100 + s, config=SynthConfig(size=args.size))[-1]
            for s in range(args.test_plates)]
    print(f"data: {len(train_frames)} training frames, {len(test)} unseen test frames, {args.size} px "
          f"({time.perf_counter() - t0:.0f} s); torch threads {args.threads}; machine shared with other jobs",
          flush=True)
    config = TrainConfig(epochs=1000, time_limit=args.minutes, tile=args.tile, batch=args.batch, width=args.width,
                         lr=args.lr, tiles_per_epoch=8 * args.batch, patience=1000, val_fraction=0.15, device="cpu")
    marks = [args.minutes * 60 * f for f in (0.1, 0.25, 0.5, 0.75)]
    print(f"dense masks, {args.minutes:g} min:", flush=True)
    curve = train_and_track(dense_samples(train_frames), test, tmp / "dense.pt", config, marks)
    rows.append(("unseen root Dice, dense masks", f"{curve[-1][3]:.3f}", "target 0.90", "", ""))
    if args.sparse:
        samples, frac = sparse_samples(train_frames, args.sparse_fraction)
        print(f"sparse scribbles ({100 * frac:.2f} % of pixels labelled), {args.minutes:g} min:", flush=True)
        sparse = train_and_track(samples, test, tmp / "sparse.pt", config, marks)
        rows.append((f"unseen root Dice, scribbles {100 * frac:.2f} %", f"{sparse[-1][3]:.3f}", "target 0.85", "", ""))
    if not args.no_speed:
        rows.extend(speed_rows(args, train_frames, test, tmp))
        if args.big:
            big = big_image_run(tmp / "dense.pt", args.big, args.threads)
            rows.append((f"{args.big}x{args.big} segment: peak memory GB", f"{big['peak_gb']:.2f}", "-", "-",
                         f"{big['seconds']:.0f} s; image alone {big['image_gb']:.2f} GB; target < 4 GB"))
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1.5, help="training time per run (CPU minutes)")
    ap.add_argument("--size", type=int, default=2000, help="synthetic scan side (px)")
    ap.add_argument("--train-plates", type=int, default=3)
    ap.add_argument("--frames", type=int, default=3, help="frames per training plate")
    ap.add_argument("--test-plates", type=int, default=2)
    ap.add_argument("--sparse", action="store_true", help="also train on sparse scribbles")
    ap.add_argument("--sparse-fraction", type=float, default=0.01, help="fraction of pixels scribbled")
    ap.add_argument("--big", type=int, default=5000, help="side of the memory test image (0 = skip)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--tile", type=int, default=128, help="training tile side (px)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the trained models in this folder")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=16, help="U-Net first-level channels")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--real", action="store_true", help="real images: U-Net vs pixel classifier, same split")
    ap.add_argument("--real-minutes", type=float, default=3.0, help="U-Net training time per real data set")
    ap.add_argument("--no-synth", action="store_true", help="skip the synthetic training runs")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed and memory figures")
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
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; torch threads {args.threads}; CPU shared with other helpers' "
          "jobs (absolute times are pessimistic; ratios come from the same script and input)")

if __name__ == "__main__":
    main()
