"""U-Net inference speed against plain fp32 PyTorch tiling, training tiles/s, and a 5000 x 5000 scan's memory.

    .venv/bin/python benchmarks/bench_unet_speed.py                  # ~3 min: the acceptance figures
    .venv/bin/python benchmarks/bench_unet_speed.py --threads 2 --big 0 --repeats 5

Ours is ``load_segmenter(...).predict_proba`` with its defaults: BatchNorm folded, 1 x 1 convolutions
before the bilinear up-sampling, channels-last bf16 autocast where the CPU has native bf16, tiles of
at most 768 px shrunk to fit the image, read/normalised/blended tile by tile into the output. The
baseline is plain fp32 PyTorch tiling written as a user would: normalise the image, mirror-pad it,
one NCHW tile of 512 px at a time through the network as trained (BatchNorm unfolded), softmax, the
same blend windows accumulated with their sum. It also runs on our tile layout ("same tiles"), so the
table separates what the layout gains from what the rest gains. The forward-only row times one tile
through each network. Timings are interleaved, best of ``--repeats``, as wall time and as process CPU
time (which other jobs on a shared machine disturb less); the 5000 x 5000 scan runs in a fresh
process for its peak resident memory. The model is trained here for ``--train-minutes`` on synthetic
plates (or given with ``--model``); training tiles/s compares our training precision with fp32.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rootscope.synth import SynthConfig, make_series
from rootscope.unet import SegmentationTask, TrainConfig, balanced_class_weights, load_segmenter, train
from rootscope.unet.data import Sample, segmentation_focus
from rootscope.unet.model import UNet, build_model, read_model_file
from rootscope.unet.predict import TileGrid, Segmenter, window_1d

CLASSES = ["background", "root", "seed", "shoot"]


def dense_samples(frames: list) -> list[Sample]:
    out = []
    for i, f in enumerate(frames):
        target = (f.mask + 1).astype(np.uint8)
        out.append(Sample(f.image, target, segmentation_focus(f.image, target, len(CLASSES), i), f"frame{i}"))
    return out


def plain_tiled(model: UNet, image: np.ndarray, mean: np.ndarray, std: np.ndarray, tile: int,
                overlap: int) -> np.ndarray:
    """Plain fp32 tiling as a user writes it: ``K x H x W`` probabilities, one NCHW tile at a time."""
    h, w = image.shape[:2]
    rows, cols = TileGrid(h, tile, overlap), TileGrid(w, tile, overlap)
    x = (image - mean) / std
    padded = np.pad(x, ((rows.pad, rows.length - h - rows.pad), (cols.pad, cols.length - w - cols.pad), (0, 0)),
                    mode="reflect").transpose(2, 0, 1)
    weight = np.outer(window_1d(tile, overlap), window_1d(tile, overlap))
    acc = np.zeros((model.config.out_channels, rows.length, cols.length), np.float32)
    norm = np.zeros((rows.length, cols.length), np.float32)
    with torch.no_grad():
        for r in range(0, rows.length - tile + 1, rows.stride):
            for c in range(0, cols.length - tile + 1, cols.stride):
                batch = torch.from_numpy(np.ascontiguousarray(padded[:, r : r + tile, c : c + tile]))[None]
                acc[:, r : r + tile, c : c + tile] += model(batch).softmax(1)[0].numpy() * weight
                norm[r : r + tile, c : c + tile] += weight
    core = (slice(rows.pad, rows.pad + h), slice(cols.pad, cols.pad + w))
    return acc[:, core[0], core[1]] / norm[core]


def timed(fn) -> tuple[float, float, object]:
    """Wall and process CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def inference_speed(model_path: Path, image: np.ndarray, repeats: int) -> dict:
    """Seconds (wall and CPU, best of ``repeats``, interleaved) of ours, plain 512-px tiling, plain tiling
    on our tile layout, and one tile through each network; agreement of the masks."""
    ours = load_segmenter(model_path, device="cpu")
    raw = build_model(read_model_file(model_path))  # the network as trained: fp32, NCHW, BatchNorm unfolded
    side = TileGrid.fit(image.shape[0], ours.tile, ours.overlap, raw.config.multiple).tile  # square image
    tile_in = torch.rand(1, raw.config.in_channels, side, side, generator=torch.Generator().manual_seed(0))

    def forward_ours() -> None:
        with torch.inference_mode(), ours.runtime.autocast():
            ours.model(ours.runtime.tensor(tile_in)).float()

    def forward_plain() -> None:
        with torch.no_grad():
            raw(tile_in)

    runs = {"ours": lambda: ours.predict_proba(image),
            "plain": lambda: plain_tiled(raw, image, ours.mean, ours.std, 512, 64),
            "plain, same tiles": lambda: plain_tiled(raw, image, ours.mean, ours.std, side, ours.overlap),
            "forward ours": forward_ours, "forward plain": forward_plain}
    forward_ours()  # first call: oneDNN picks its kernels
    times = {name: {"wall": [], "cpu": []} for name in runs}
    outputs = {}
    for _ in range(repeats):
        for name, fn in runs.items():
            wall, cpu, outputs[name] = timed(fn)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    best = {name: {k: min(v) for k, v in t.items()} for name, t in times.items()}
    agree = float(np.mean(outputs["ours"].argmax(0) == outputs["plain"].argmax(0)))
    return {"best": best, "agree": agree, "max_diff": float(np.abs(outputs["ours"] - outputs["plain"]).max()),
            "side": side, "runtime": ours.runtime.label, "megapixels": image.shape[0] * image.shape[1] / 1e6}


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
    """Training tiles/s (ours vs fp32, short runs), inference MP/s (ours vs plain fp32 tiling), memory."""
    runs = {}
    for precision in ("fp32", "auto"):
        runs[precision] = train(dense_samples(train_frames[:2]), SegmentationTask(CLASSES), tmp / f"{precision}.pt",
                                TrainConfig(epochs=2, tile=args.tile, batch=args.batch, width=args.width,
                                            tiles_per_epoch=4 * args.batch, device="cpu", precision=precision))
    ours_tps, base_tps = (runs[p].history["tiles_per_s"].max() for p in ("auto", "fp32"))
    model_path = args.model
    if model_path is None:
        samples = dense_samples(train_frames)
        model_path = train(samples, SegmentationTask(CLASSES, balanced_class_weights(samples, len(CLASSES))),
                           tmp / "model.pt", TrainConfig(epochs=1000, time_limit=args.train_minutes, tile=args.tile,
                                                         batch=args.batch, width=args.width, lr=3e-3, patience=1000,
                                                         tiles_per_epoch=8 * args.batch, device="cpu")).best_path
    s = inference_speed(model_path, test[0].image, args.repeats)
    b, mp = s["best"], s["megapixels"]
    rows = [(f"training tiles/s ({args.tile} px)", f"{ours_tps:.1f}", f"{base_tps:.1f} (fp32)",
             f"{ours_tps / base_tps:.2f}x", "")]

    def ratio(clock: str, label: str, ours: str, plain: str, baseline: str, note: str, per_image: bool = True):
        o, p = b[ours][clock], b[plain][clock]
        show = (lambda t: f"{mp / t:.2f}") if per_image else (lambda t: f"{t:.3f} s")
        return (label, show(o), f"{show(p)} {baseline}".strip(), f"{p / o:.2f}x", note)

    for clock in ("wall", "cpu"):
        rows += [ratio(clock, f"inference MP/s, {clock} time ({test[0].image.shape[0]} px)", "ours", "plain",
                       "(plain 512 px)", "target 2.5x" if clock == "wall" else "process CPU time"),
                 ratio(clock, f"  same tiles ({s['side']} px)", "ours", "plain, same tiles", "(plain)",
                       "gain without the tile layout"),
                 ratio(clock, "  forward only, one tile", "forward ours", "forward plain", "", s["runtime"], False)]
    rows.append(("  masks agree with plain 512 px", f"{100 * s['agree']:.3f} %", "", "",
                 f"max |probability difference| {s['max_diff']:.3f}"))
    if args.big:
        big = big_image_run(model_path, args.big, args.threads)
        rows.append((f"{args.big}x{args.big} segment: peak memory GB", f"{big['peak_gb']:.2f}", "-", "-",
                     f"{big['seconds']:.0f} s; image alone {big['image_gb']:.2f} GB; target < 4 GB"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2000, help="synthetic scan side for the speed figures (px)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    ap.add_argument("--big", type=int, default=5000, help="side of the memory test image (0 = skip)")
    ap.add_argument("--model", type=Path, default=None, help="a segmentation model file (default: train one)")
    ap.add_argument("--train-minutes", type=float, default=0.5, help="training time of the model (CPU minutes)")
    ap.add_argument("--tile", type=int, default=128, help="training tile side (px)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--width", type=int, default=16, help="U-Net first-level channels")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    train_frames = [make_series(frames=1, seed=s, config=SynthConfig(size=args.size))[0] for s in range(3)]
    test = [make_series(frames=1, seed=100, config=SynthConfig(size=args.size))[0]]
    with tempfile.TemporaryDirectory() as tmp:
        rows = speed_rows(args, train_frames, test, Path(tmp))
    print(f"\n{'figure':40s} | {'ours':>9s} | {'baseline':>24s} | {'ratio':>6s} | note")
    for r in rows:
        print(f"{r[0]:40s} | {r[1]:>9s} | {r[2]:>24s} | {r[3]:>6s} | {r[4]}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; torch threads {args.threads}; best of {args.repeats}; absolute times "
          "grow with the machine's load (ratios come from the same script and input)")


if __name__ == "__main__":
    main()
