"""Branching-point benchmark: U-Net heat-map vs skeleton baseline vs fusion; detection speed.

    .venv/bin/python benchmarks/bench_branches.py                    # synthetic + real, 4 min training each
    .venv/bin/python benchmarks/bench_branches.py --minutes 15       # longer training (better figures)
    .venv/bin/python benchmarks/bench_branches.py --mask-input       # also: root mask as an input channel
    .venv/bin/python benchmarks/bench_branches.py --skip-real        # synthetic only

Synthetic: plates from ``rootscope.synth`` (2000 px scans, laterals of every age from just emerged to
long, second-order laterals, roots crossing on purpose); training on the frames of ``--train-plates``
plates, scores on frames of ``--test-plates`` other plates (unseen). The skeleton baseline runs on the
TRUE root mask (the best mask it could get), through ``rootscope.architecture`` (crossings resolved);
raw skeleton junctions are shown too. Real: rootnav-osr ``train/`` -> ``valid/`` (branching points =
first points of lateral roots in the RSML; masks for the mask head drawn from the RSML at 5 px); the
baseline and the fusion use the network's own root-mask output there (no mask is given). F1 at a 6 px
radius (Hungarian matching). Training is bounded by ``--minutes`` of training time per network on a
shared 2-core CPU, one PyTorch thread (``--threads``; two threads thrash on the busy machine and train
~15x slower): figures grow with time. Detection speed on a 4 MP image (2000 x 2000) against the
same network run at full resolution in plain fp32 (the baseline a user would write).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rootscope import branches as br
from rootscope.synth import SynthConfig, make_series
from rootscope.unet import TrainConfig

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rootnav-osr"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/rootnav-osr")


def synth_frames(plates: range, n_frames: int, size: int) -> list:
    cfg = SynthConfig(size=size)
    return [f for seed in plates for f in make_series(frames=n_frames, seed=seed, config=cfg)]


def frame_points(frame) -> np.ndarray:
    """Branching points of a synthetic frame inside the image, (x, y)."""
    xy = frame.branch_points[["x", "y"]].to_numpy(float).reshape(-1, 2)
    h, w = frame.mask.shape
    return xy[(xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)]


ARGS = argparse.Namespace(tile=64, width=8, depth=3, batch=16, lr=5e-3)


def config(minutes: float, seed: int = 0) -> TrainConfig:
    from rootscope.unet import Augment

    return TrainConfig(epochs=10_000, time_limit=minutes, tile=ARGS.tile, batch=ARGS.batch, tiles_per_epoch=256,
                       val_tiles=128, focus_fraction=0.8, width=ARGS.width, depth=ARGS.depth, lr=ARGS.lr,
                       patience=10_000, seed=seed, augment=Augment(p_blur=0.0))


def score(rows: list[dict], name: str, preds: list[np.ndarray], truths: list[np.ndarray], radius: float) -> dict:
    tp = fp = fn = 0
    errors = []
    for p, t in zip(preds, truths):
        e = br.evaluate(p, t, radius)
        tp, fp, fn = tp + e["tp"], fp + e["fp"], fn + e["fn"]
        if e["tp"]:
            errors.append((e["error_px"], e["tp"]))
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    err = sum(a * b for a, b in errors) / max(sum(b for _, b in errors), 1)
    row = {"name": name, "f1": f1, "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
           "error_px": err, "tp": tp, "fp": fp, "fn": fn}
    rows.append(row)
    return row


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'method':38s} {'F1':>6s} {'prec':>6s} {'recall':>6s} {'err px':>7s} {'TP':>5s} {'FP':>5s} {'FN':>5s}")
    for r in rows:
        print(f"{r['name']:38s} {r['f1']:6.3f} {r['precision']:6.3f} {r['recall']:6.3f} {r['error_px']:7.2f} "
              f"{r['tp']:5d} {r['fp']:5d} {r['fn']:5d}")


def train_net(samples, out: Path, minutes: float, settings: br.BranchSettings, label: str) -> br.BranchDetector:
    t = time.perf_counter()
    def report(row: dict) -> None:
        print(f"    epoch {row['epoch']:3d} {row['train_s']:6.0f} s loss {row['train_loss']:.3f}/{row['val_loss']:.3f} "
              f"F1 {row['f1']:.3f} (t {row['threshold']:.2f}) {row['tiles_per_s']:.1f} tiles/s", flush=True)

    result = br.train_branches(samples, out, config(minutes), settings=settings, report=report)
    best = result.best
    print(f"  {label}: {len(result.history)} epochs in {time.perf_counter() - t:.0f} s ({result.stopped}); "
          f"best val tile F1 {best.get('f1', float('nan')):.3f} at threshold {best.get('threshold', float('nan'))}")
    return br.load_branch_model(out)


def synthetic(args, tmp: Path) -> list[dict]:
    t = time.perf_counter()
    train_frames = synth_frames(range(args.train_plates), args.frames, args.size)
    test_frames = synth_frames(range(100, 100 + args.test_plates), args.frames, args.size)
    test_frames = [f for f in test_frames if len(frame_points(f))]
    truths = [frame_points(f) for f in test_frames]
    print(f"synthetic: {len(train_frames)} training frames, {len(test_frames)} unseen test frames, "
          f"{sum(map(len, truths))} true branching points ({time.perf_counter() - t:.0f} s to generate)")
    rows: list[dict] = []
    skeleton: list[np.ndarray] = []
    variants = [("network", br.BranchSettings())] if not args.only_mask_input else []
    if args.mask_input or args.only_mask_input:
        variants.append(("network + true mask input", br.BranchSettings(mask_input=True)))
    for label, settings in variants:
        samples = [br.make_sample(f.image, frame_points(f), f.mask == 1, settings=settings, name=f"f{i}", seed=i)
                   for i, f in enumerate(train_frames)]
        det = train_net(samples, tmp / f"synth_{len(rows)}.pt", args.minutes, settings, label)
        preds = [det.predict(f.image, f.mask == 1) for f in test_frames]
        score(rows, label, [det.peaks(p) for p in preds], truths, args.radius)
        if not skeleton:
            skeleton = [br.skeleton_points(f.mask == 1, f.mask == 2) for f in test_frames]
            score(rows, "skeleton baseline (true mask)", skeleton, truths, args.radius)
            score(rows, "raw skeleton junctions (true mask)", [br.junction_points(f.mask == 1) for f in test_frames],
                  truths, args.radius)
        fused = [br.fuse(det.peaks(p), s, p, **det.fusion_levels()) for p, s in zip(preds, skeleton)]
        score(rows, f"fusion ({label} + skeleton)", fused, truths, args.radius)
    print_rows(f"synthetic plates ({args.size} px, unseen plates), F1 at {args.radius:g} px", rows)
    return rows


def real(args, tmp: Path) -> list[dict]:
    if not (DATA / "train").is_dir():
        print(f"\nreal: skipped ({DATA} not found)")
        return []
    from rootscope import io

    samples, settings, _ = br.load_point_set(DATA / "train", DATA / "train", settings=br.BranchSettings())
    print(f"\nreal rootnav-osr: {len(samples)} training images, mask head: {settings.mask_head}")
    det = train_net(samples, tmp / "osr.pt", args.minutes, settings, "network")
    rows: list[dict] = []
    preds, truths, masks = [], [], []
    for path in io.list_images(DATA / "valid"):
        image = io.read_image(path)
        p = det.predict(image)
        preds.append(p)
        truths.append(br.points_from_rsml(path.with_suffix(".rsml")))
        mask = br._resize((p.root > 0.5).astype(np.uint8), 1 / p.scale, 0)[: image.shape[0], : image.shape[1]]
        masks.append(mask)
    score(rows, "network", [det.peaks(p) for p in preds], truths, args.radius)
    skeleton = [br.skeleton_points(m) for m in masks]
    score(rows, "skeleton baseline (network's mask)", skeleton, truths, args.radius)
    fused = [br.fuse(det.peaks(p), s, p, **det.fusion_levels())
             for p, s in zip(preds, skeleton)]
    score(rows, "fusion (network + skeleton)", fused, truths, args.radius)
    print_rows(f"real rootnav-osr valid/ ({len(preds)} images), F1 at {args.radius:g} px", rows)
    return rows


def speed(args, tmp: Path) -> None:
    import torch

    from rootscope.unet import UNet, UNetConfig, predict_tiled
    from rootscope.unet.runtime import Runtime

    torch.set_num_threads(args.speed_threads)
    frame = synth_frames(range(7, 8), 1, 2000)[0]
    image = frame.image
    samples = [br.make_sample(image, frame_points(frame), frame.mask == 1, name="speed")]
    model = tmp / "speed.pt"
    br.train_branches(samples, model, config(0.05))
    det = br.load_branch_model(model)
    det.detect(image[:256, :256])  # warm-up
    plain = UNet(UNetConfig(**det.meta["architecture"]))
    plain.load_state_dict(torch.load(model, weights_only=True)["state_dict"])
    plain.eval()
    fp32 = Runtime(torch.device("cpu"), None, channels_last=False)
    ours, fused, base = [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        det.detect(image)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        det.detect(image, fuse_junctions=True)
        fused.append(time.perf_counter() - t)
        t = time.perf_counter()
        heat = predict_tiled(plain, (image - det.mean) / det.std, fp32, tile=512, overlap=64, batch=1,
                             activation="sigmoid")[0]
        br.find_peaks(heat, det.threshold, 3)
        base.append(time.perf_counter() - t)
    print(f"\ndetection on a 4 MP image (2000 x 2000, {torch.get_num_threads()} torch threads, machine shared), "
          f"seconds, best of {args.repeats}")
    print(f"{'figure':34s} {'ours':>8s} {'baseline':>9s} {'ratio':>6s}")
    for name, times in (("network peaks", ours), ("network + skeleton fusion", fused)):
        print(f"{name:34s} {min(times):8.2f} {min(base):9.2f} {min(base) / min(times):6.1f}x")
    print(f"  ours: half-size work image, BatchNorm folded, {det.runtime.label}, batched tiles; "
          "baseline: same network at full size, plain fp32, one tile at a time. Target < 5 s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="training time limit per network (min)")
    parser.add_argument("--train-plates", type=int, default=3)
    parser.add_argument("--test-plates", type=int, default=2)
    parser.add_argument("--frames", type=int, default=5, help="frames per plate (24 h apart from day 5)")
    parser.add_argument("--size", type=int, default=2000, help="synthetic scan side (px)")
    parser.add_argument("--radius", type=float, default=6.0, help="matching radius (px)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mask-input", action="store_true", help="also train with the true mask as input")
    parser.add_argument("--only-mask-input", action="store_true", help="train only the mask-input network")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine 2 threads thrash, ~15x slower)")
    parser.add_argument("--speed-threads", type=int, default=1,
                        help="torch threads for the detection timing (1 is faster than 2 on the busy machine)")
    parser.add_argument("--tile", type=int, default=ARGS.tile, help="training tile side (work px)")
    parser.add_argument("--width", type=int, default=ARGS.width)
    parser.add_argument("--depth", type=int, default=ARGS.depth)
    parser.add_argument("--batch", type=int, default=ARGS.batch)
    parser.add_argument("--lr", type=float, default=ARGS.lr)
    args = parser.parse_args()
    for key in vars(ARGS):
        setattr(ARGS, key, getattr(args, key))
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_synthetic:
            synthetic(args, tmp)
        if not args.skip_real:
            real(args, tmp)
        if not args.skip_speed:
            speed(args, tmp)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s (training bounded by --minutes {args.minutes:g} per network; "
          f"{args.threads} torch thread(s), 2 shared CPU cores)")


if __name__ == "__main__":
    main()
