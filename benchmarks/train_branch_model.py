"""Train the shipped branching-point model (image only) on synthetic plates; reproduces src/rootscope/models/.

    .venv/bin/python benchmarks/train_branch_model.py                       # writes the shipped model
    .venv/bin/python benchmarks/train_branch_model.py --epochs 20 -o /tmp/b.pt --snapshots 5,10
    .venv/bin/python benchmarks/train_branch_model.py --tune-only -o /tmp/copy.pt   # re-tune detection only
    python benchmarks/train_branch_model.py -o src/rootscope/models/branches_synth_11px_w16.pt --size 1500 \
        --width 16 --plates 20 --epochs 100 --batch 32 --device cuda --precision auto --threads 4 \
        --val-plates 50-53 --rescore-plates 20-29                     # the medium model, on a GPU (4 min)

Training data: ``--plates`` synthetic plates (``rootscope.synth`` seeds 0..N-1, the benchmark tests on
seeds 100+), ``--frames`` frames each, 2000 px scans: laterals of every age and roots crossing on
purpose. The network works at ``--scale`` x the scan (default full size: just-emerged laterals are 1-3 px
wide) on ``--tile`` px tiles. Targets: Gaussian heat-maps (``--sigma`` work px) at the generator's
branching points and the root mask (second output, for the skeleton baseline, the fusion and the
re-scoring). A fixed number of epochs (``--epochs`` x ``--tiles-per-epoch`` tiles; the learning-rate
schedule is planned over them), ``--threads`` torch threads and a fixed seed, so a rerun gives the same
model up to floating-point summation order (on the CPU in fp32, the default; ``--device cuda`` trains
on a GPU, where fp16 and its summation order make a rerun close, not identical). ``--time-limit``
is only a safety stop (a run it ends is not reproducible; the script says so). ``--snapshots`` keeps
copies of the checkpoint after those epochs (``<work>/<stem>.e<N>.pt``) for the F1-vs-training-time
table of ``bench_branches.py --curve``. The training files (last checkpoint, metrics CSV) stay in
``--work``; only the best model (weights + metadata, loadable with ``weights_only=True``) goes to ``-o``.

Detection settings (test-time augmentation among ``--tta-choices``, default 1 or 4 views: 8 views of a
full-size network take more than the 5 s allowed for a 4 MP scan; peak threshold, suppression radius,
fusion levels) are then chosen on VALIDATION plates ``--val-plates`` (default seeds 50-53, 5 frames each:
neither trained on nor the benchmark's test plates 100+) and stored in the model file; the table of
the best validation F1 of each augmentation choice is printed. Then the second stage
(:mod:`rootscope.branch_rescore`): boosted trees that re-score the heat-map's candidate peaks are fitted on
the predictions of ``--rescore-plates`` (default seeds 10-29: neither training, validation nor test), their
score threshold is tuned on the validation plates, and they are stored only when they beat the heat-map
alone there. ``--tune-only`` skips training and re-tunes the model file ``-o`` as it is.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from rootscope import branches as br
from rootscope.synth import SynthConfig, make_series
from rootscope.unet import Augment
from rootscope.unet.train import last_path

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "rootscope" / "models" / "branches_synth_w8.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=SHIPPED, help="model file to write")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rootscope_branch_model"),
                        help="folder for the last checkpoint, metrics CSV and snapshots")
    parser.add_argument("--plates", type=int, default=10, help="synthetic plates (seeds 0..N-1)")
    parser.add_argument("--frames", type=int, default=5, help="frames per plate")
    parser.add_argument("--size", type=int, default=2000, help="scan side (px)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--tiles-per-epoch", type=int, default=2048)
    parser.add_argument("--val-tiles", type=int, default=512)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="work resolution relative to the scans")
    parser.add_argument("--sigma", type=float, default=3.0, help="heat-map sigma (work px)")
    parser.add_argument("--tile", type=int, default=96, help="training tile side (work px)")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu (the shipped models), cuda or auto")
    parser.add_argument("--precision", default="fp32", help="fp32 (the shipped models) or auto (bf16 where it helps)")
    parser.add_argument("--batch", type=int, default=16, help="tiles per training step")
    parser.add_argument("--time-limit", type=float, default=90.0, help="safety stop (minutes)")
    parser.add_argument("--snapshots", default="", help="comma-separated epochs to keep a copy of")
    parser.add_argument("--val-plates", default="50-53", help="validation plate seeds (first-last) for detection tuning")
    parser.add_argument("--rescore-plates", default="10-29",
                        help="plate seeds (first-last) whose predictions train the re-scoring trees; '' for none")
    parser.add_argument("--tta-choices", default="1,4",
                        help="test-time augmentations to choose from (views; leave out those too slow)")
    parser.add_argument("--tune-only", action="store_true", help="no training: re-tune the detection of -o")
    args = parser.parse_args()
    val_plates, fit_plates = _plates(args.val_plates), _plates(args.rescore_plates)
    if val_plates.start < args.plates or val_plates.stop > 100:
        parser.error("--val-plates must be neither training plates (0..--plates-1) nor test plates (100+)")
    if fit_plates and (fit_plates.start < args.plates or fit_plates.stop > 100 or set(fit_plates) & set(val_plates)):
        parser.error("--rescore-plates must be neither training, validation nor test plates")

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if not args.tune_only:
        train(args)
    tuned = tune(args.out, val_plates, args.frames, args.size, tuple(map(int, args.tta_choices.split(","))))
    if fit_plates:
        rescore(args.out, fit_plates, val_plates, args.frames, args.size, tuned["f1"])
    print(f"total {time.perf_counter() - t0:.0f} s")


def tune(path: Path, plates: range, n_frames: int, size: int, tta: tuple[int, ...] = br.TTA_CHOICES) -> dict:
    """Choose and store the detection settings of ``path`` on the validation plates; print the candidates."""
    t = time.perf_counter()
    frames, truths = _frames(plates, n_frames, size)
    detector = br.load_branch_model(path)
    stored = (detector.tta, detector.threshold, detector.min_distance)
    before = br._pooled_f1([detector.detect(f.image) for f in frames], truths, detector.settings.radius)
    print(f"validation: {len(frames)} frames of plates {plates.start}..{plates.stop - 1}, {sum(map(len, truths))} "
          f"points; stored settings (tta {stored[0]}, threshold {stored[1]:.2f}, NMS {stored[2]}): F1 {before:.3f}",
          flush=True)

    def junctions(p: br.BranchPrediction) -> np.ndarray:
        return br.skeleton_points(detector.root_mask(p, tuple(round(n / p.scale) for n in p.heat.shape)))

    tuned = br.tune_detection(lambda n: [detector.predict(f.image, tta=n) for f in frames], truths,
                              detector.settings, tta=tta, junctions=junctions if detector.settings.mask_head else None)
    print(f"{'model':28s} {'tta':>3s} {'thr':>5s} {'nms':>3s} {'F1 val':>7s}")
    for c in tuned["candidates"]:
        print(f"{path.name:28s} {c['tta']:3d} {c['threshold']:5.2f} {c['nms_px']:3d} {c['f1']:7.3f}"
              + ("  <- chosen" if c["tta"] == tuned["tta"] else ""))
    if "fusion" in tuned:
        print(f"fusion with tta {tuned['tta']}: support {tuned['fusion']['support']:.2f} strong "
              f"{tuned['fusion']['strong']:.2f}: F1 val {tuned['fusion']['f1']:.3f}")
    br.store_detection(path, tuned, detection_tuning={
        "generator": "rootscope.synth.make_series", "plates": list(plates), "frames": n_frames, "size": size,
        "points": int(sum(map(len, truths))), "script": "benchmarks/train_branch_model.py",
        "candidates": tuned["candidates"]})
    print(f"stored in {path} ({time.perf_counter() - t:.0f} s)", flush=True)
    return tuned


def _plates(text: str) -> range:
    """Plate seeds ``first-last`` as a range (empty for '')."""
    if not text:
        return range(0)
    first, last = map(int, text.split("-"))
    return range(first, last + 1)


def _frames(plates: range, n_frames: int, size: int) -> tuple[list, list[np.ndarray]]:
    """Synthetic frames with branching points of ``plates`` and their full-size points."""
    frames = [f for seed in plates for f in make_series(frames=n_frames, seed=seed, config=SynthConfig(size=size))]
    frames = [f for f in frames if len(br.synthetic_points(f))]
    return frames, [br.synthetic_points(f) for f in frames]


def rescore(path: Path, fit_plates: range, val_plates: range, n_frames: int, size: int, plain_f1: float) -> None:
    """Fit re-scoring trees on the predictions of ``fit_plates``, tune their threshold on the validation
    plates and store them in ``path`` when they beat the heat-map's own validation F1 ``plain_f1``."""
    t = time.perf_counter()
    detector = br.load_branch_model(path)
    frames, truths = _frames(fit_plates, n_frames, size)
    trees = br.fit_rescorer([detector.predict(f.image) for f in frames], truths, detector.settings,
                            detector.min_distance)
    val_frames, val_truths = _frames(val_plates, n_frames, size)
    predictions = [detector.predict(f.image) for f in val_frames]

    def junctions(p: br.BranchPrediction) -> np.ndarray:
        return br.skeleton_points(detector.root_mask(p, tuple(round(n / p.scale) for n in p.heat.shape)))

    tuned = br.tune_rescorer(trees, predictions, val_truths, detector.settings, detector.min_distance,
                             junctions=junctions)
    print(f"re-scoring trees fitted on {len(frames)} frames of plates {fit_plates.start}..{fit_plates.stop - 1} "
          f"({sum(map(len, truths))} points): validation F1 {tuned['f1']:.3f} at score {tuned['threshold']:.2f} "
          f"(heat-map alone {plain_f1:.3f}); fusion {tuned['fusion']['f1']:.3f}", flush=True)
    if tuned["f1"] <= plain_f1:
        print("not stored: no better than the heat-map alone on validation")
        return
    br.store_rescorer(path, trees, tuned, fitted_on={"plates": list(fit_plates), "frames": n_frames, "size": size,
                                                      "points": int(sum(map(len, truths)))})
    print(f"stored in {path} ({time.perf_counter() - t:.0f} s)", flush=True)


def train(args: argparse.Namespace) -> None:
    """Train on plates 0..``--plates``-1 and write the best model to ``--out``."""
    t0 = time.perf_counter()
    config = SynthConfig(size=args.size)
    frames = [f for seed in range(args.plates) for f in make_series(frames=args.frames, seed=seed, config=config)]
    settings = br.BranchSettings(scale=args.scale, sigma=args.sigma,
                                 work_px_per_mm=frames[0].px_per_mm * args.scale)
    samples = [br.make_sample(f.image, br.synthetic_points(f), f.mask == 1, settings=settings,
                              name=f"p{k // args.frames}f{k % args.frames}", seed=k) for k, f in enumerate(frames)]
    n_points = sum(len(br.synthetic_points(f)) for f in frames)
    print(f"{len(samples)} training frames from plates 0..{args.plates - 1}, {n_points} branching points "
          f"({time.perf_counter() - t0:.0f} s to generate)", flush=True)

    args.work.mkdir(parents=True, exist_ok=True)
    work_model = args.work / args.out.name
    snapshots = {int(e) for e in args.snapshots.split(",") if e}
    train_config = br.default_config(args.time_limit, epochs=args.epochs, tiles_per_epoch=args.tiles_per_epoch,
                                     val_tiles=args.val_tiles, tile=args.tile, width=args.width, depth=args.depth, lr=args.lr,
                                     patience=args.epochs, seed=args.seed, device=args.device, precision=args.precision, batch=args.batch,
                                     threads=args.threads, augment=Augment(p_blur=0.0))

    def report(row: dict) -> None:
        print(f"epoch {row['epoch']:3d} {row['train_s'] / 60:6.1f} min "
              f"loss {row['train_loss']:.4f}/{row['val_loss']:.4f} "
              f"tile F1 {row['f1']:.3f} (t {row['threshold']:.2f}) root Dice {row.get('dice_root', float('nan')):.3f} "
              f"{row['tiles_per_s']:.0f} tiles/s" + (" best" if row["best"] else ""), flush=True)
        if row["epoch"] in snapshots:
            shutil.copy(last_path(work_model), args.work / f"{work_model.stem}.e{row['epoch']}.pt")

    meta = {"training_data": {"generator": "rootscope.synth.make_series", "plates": list(range(args.plates)),
                              "frames": args.frames, "size": args.size, "points": n_points,
                              "script": "benchmarks/train_branch_model.py"}}
    result = br.train_branches(samples, work_model, train_config, settings=settings, meta=meta, report=report)
    print(f"stopped: {result.stopped} after {result.history['train_s'].iloc[-1] / 60:.1f} min of training; best "
          f"epoch {result.best.get('epoch')} (validation tile F1 {result.best.get('f1', float('nan')):.3f})")
    if result.stopped != "epochs":
        print("NOTE: stopped early by the time limit: this model is not a reproducible run of the script.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if result.best_path.resolve() != args.out.resolve():
        shutil.copy(result.best_path, args.out)
    detector = br.load_branch_model(args.out)
    print(f"-> {args.out} ({args.out.stat().st_size / 1e3:.0f} kB), threshold {detector.threshold:.2f}, "
          f"NMS {detector.min_distance} work px; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
