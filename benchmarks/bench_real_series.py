"""A real plate series through ``rootscope run``: two Arabidopsis plates photographed twice, 8.6 h apart.

    .venv/bin/python benchmarks/bench_real_series.py                  # ours and the baseline (~10 min)
    .venv/bin/python benchmarks/bench_real_series.py --baseline-commit ''   # ours only

The plates are ``rhizoscan-arabidopsis`` J10 -> J11 (``Photo_001`` and ``Photo_011``: 4288 x 2848
camera photos; between them the camera's distance changed by about 6 %, the plate is tilted to the
lens and the light changed; barcode label, handwriting, rim and bench in view; 5 seedlings per plate,
no other truth). The experiment is made in a temporary folder: ``raw/<plate>/`` holds links to the
photos (J10 first, by the EXIF times), the model is a pixel classifier trained on strokes placed by eye
on J10 ``Photo_001`` only (``bench_pixel.j10_strokes``: root, shoot, background; Lab features, lamp and
tint removed), scaled to full resolution. ``rootscope run`` runs with default settings but
``px_per_mm`` (the 120 mm plate spans about 2200 px: 18.5 px/mm).

Ours: this checkout. Baseline: the same experiment with rootscope's ``src/`` at ``--baseline-commit``
(``git archive``). Per scan: whether it was aligned (model, residual), plants in the traits table
(truth 5), plants whose seed lies outside the plate (by the plate's corners I read off each photo), and
objects rejected with their reasons where the version says.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pixel import DATA, J10_CONTEXT, J10_SCALE, j10_strokes  # noqa: E402

from rootscope import io  # noqa: E402
from rootscope.features import FeatureSettings  # noqa: E402
from rootscope.pixel import PixelClassifier  # noqa: E402

BASELINE_COMMIT = "230dafb"
PX_PER_MM = 18.5
PLATES = ("Photo_001", "Photo_011")
DRIVER = """
import sys, time
from rootscope.pipeline import run_experiment
start = time.perf_counter()
result = run_experiment(sys.argv[1], workers=1, processes=False, progress=False)
print(f"seconds {time.perf_counter() - start:.1f}")
"""


def row(*cells: str) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)


def train_model(path: Path) -> Path:
    """The stroke model of ``bench_pixel`` (strokes on J10 Photo_001 at half scale), at full scale."""
    photo = io.read_image(DATA / "rhizoscan-arabidopsis" / "J10" / "Photo_001.jpg")
    small = cv2.resize(photo, None, fx=J10_SCALE, fy=J10_SCALE, interpolation=cv2.INTER_AREA)
    labels = cv2.resize(j10_strokes(small), photo.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    model = PixelClassifier(features=FeatureSettings(color="lab", background=J10_CONTEXT / J10_SCALE))
    model.fit([photo], [labels], ["root", "shoot", "background"])
    return model.save(path)


def make_experiment(root: Path, model: Path) -> None:
    """raw/<plate>/{J10,J11}_<photo>.jpg as links to the shared photos, and rootscope.toml."""
    for name in PLATES:
        folder = root / "raw" / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        for day in ("J10", "J11"):
            (folder / f"{day}_{name}.jpg").symlink_to(DATA / "rhizoscan-arabidopsis" / day / f"{name}.jpg")
    io.write_text(root / "rootscope.toml", f'px_per_mm = {PX_PER_MM}\n[models]\npixel = "{model}"\n')


def run(root: Path, env: dict | None) -> float:
    out = subprocess.run([sys.executable, "-c", DRIVER, str(root)], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"run failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.split("seconds")[-1])


def results(root: Path) -> dict[str, dict[str, str]]:
    """Per scan: alignment, plants, and rejected objects (when the version writes them)."""
    out = root / "out"
    traits = pd.read_csv(out / "traits.csv") if (out / "traits.csv").exists() else pd.DataFrame(columns=["scan"])
    failures = pd.read_csv(out / "failures.csv")
    per: dict[str, dict[str, str]] = {}
    for plate in sorted((root / "raw").iterdir()):
        for scan in sorted(plate.iterdir()):
            record = out / plate.name / "transforms" / f"{scan.stem}.json"
            align = "-"
            if record.exists():
                r = io.read_json(record)
                align = (f"{'ok' if r['ok'] else 'refused'}, {r.get('model', '?')}, "
                         f"residual {r.get('residual') if r.get('residual') is None else round(r['residual'], 2)} px")
            plants = traits[traits.scan == scan.name]
            failed = failures[failures.item == scan.name]
            rejected = out / plate.name / "rejected" / f"{scan.stem}.csv"
            why = ""
            if rejected.exists():
                table = pd.read_csv(rejected)
                why = ", ".join(f"{n} {k}" for k, n in table.reason.value_counts().items()) if len(table) else "none"
            per[scan.name] = {"align": align, "plants": str(len(plants)) if not len(failed) else
                              f"failed ({failed.stage.iloc[0]})", "rejected": why}
    return per


def tracks(root: Path) -> str:
    """Per plate: plants followed over both photos and their primary root lengths (mm) in each."""
    parts = []
    for plate in sorted((root / "raw").iterdir()):
        path = root / "out" / plate.name / "tracks" / "plants.csv"
        if not path.exists():
            parts.append(f"{plate.name}: no tracks")
            continue
        table = pd.read_csv(path)
        both = table.groupby("plant").scan.nunique().eq(table.scan.nunique()).sum()
        lengths = table.pivot_table(index="plant", columns="scan", values="primary_length_mm").round(1)
        parts.append(f"{plate.name}: {table.plant.nunique()} plants, {both} in every photo; primary (mm) "
                     + "; ".join(f"{p}: {' -> '.join(map(str, row.tolist()))}" for p, row in lengths.iterrows()))
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT, help="'' = no baseline")
    parser.add_argument("--keep", type=Path, help="make the experiments in this folder and keep them (overlays)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_real_") as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        model = train_model(tmp / "strokes.model")
        print(f"model trained on the strokes in {time.perf_counter() - start:.0f} s\n")
        versions = {"ours": None}
        if args.baseline_commit:
            repo = Path(__file__).resolve().parents[1]
            archive = subprocess.run(["git", "-C", repo, "archive", args.baseline_commit, "src/rootscope"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            versions["baseline"] = {**os.environ, "PYTHONPATH": str(tmp / "src")}
        found, seconds = {}, {}
        for name, env in versions.items():
            make_experiment(tmp / name, model)
            seconds[name] = run(tmp / name, env)
            found[name] = results(tmp / name)
        names = list(versions)
        row("scan (truth: 5 plants)", *[f"{n}: align" for n in names], *[f"{n}: plants" for n in names],
            "ours: rejected objects")
        row(*["---"] * (2 + 2 * len(names) - 1 + 1))
        for scan in found["ours"]:
            row(scan, *[found[n][scan]["align"] for n in names], *[found[n][scan]["plants"] for n in names],
                found["ours"][scan]["rejected"])
        row("run (s, 2 shared cores)", *[f"{seconds[n]:.0f}" for n in names], *[""] * len(names), "")
        print()
        for name in names:
            print(f"{name}: {tracks(tmp / name)}")
        print(json.dumps({n: found[n] for n in names}))


if __name__ == "__main__":
    main()
