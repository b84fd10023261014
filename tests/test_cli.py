"""What every writing command shares: inputs are never overwritten, an unwritable folder is one line."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rootscope import io, rsml, synth
from rootscope.cli import main
from rootscope.pixel import ForestParams, PixelClassifier

PX_PER_MM = 10.0


def plate(seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A grey plate with one bright root (mask 1), slightly moved by ``seed``."""
    mask = np.zeros((size, size), np.uint8)
    mask[10 : size - 20, 40 + seed : 43 + seed] = 1
    mask[50, 43 + seed : 60 + seed] = 1
    rng = np.random.default_rng(seed)
    image = np.where(mask > 0, 0.8, 0.3) + rng.normal(0, 0.03, mask.shape)
    image[5:15, 5:15] = 0.05  # a dark mark for the aligner
    return np.clip(image, 0, 1).astype(np.float32), mask


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """images/ (a, b), labels/ (sparse: 1 background, 2 root), masks/ (dense 0/1), a pixel model of the
    classes background, root (so mask value 1 is background), rsml/ and an experiment folder."""
    root = tmp_path_factory.mktemp("inputs")
    images = []
    for k, name in enumerate("ab"):
        image, mask = plate(k)
        images.append(image)
        io.write_image(root / "images" / f"{name}.png", image, px_per_mm=PX_PER_MM)
        labels = np.zeros_like(mask)
        labels[::3, ::3] = 1
        labels[mask > 0] = 2
        io.write_image(root / "labels" / f"{name}.png", labels)
        io.write_image(root / "masks" / f"{name}.png", mask)
    model = PixelClassifier(seed=0, forest_params=ForestParams(n_estimators=5))
    model.fit(images, [io.read_labels(p) for p in sorted((root / "labels").iterdir())], ["background", "root"])
    model.save(root / "pixel.model")
    cfg = dataclasses.replace(synth.SynthConfig(), size=256)
    for frame in synth.make_series(2, seed=0, config=cfg):
        rsml.write_rsml(root / "rsml" / f"{synth.frame_stem('plateA', frame, cfg)}.rsml", frame.scene)
    shutil.copytree(root / "images", root / "exp" / "raw" / "plate01")
    io.write_text(root / "exp" / "rootscope.toml", f'px_per_mm = {PX_PER_MM}\n[models]\npixel = "../pixel.model"\n')
    return root


@pytest.fixture
def work(inputs, tmp_path) -> Path:
    """A copy of the inputs that a test may change."""
    return Path(shutil.copytree(inputs, tmp_path / "in"))


# ------------------------------------------------------------------------------ never overwritten
def test_pixel_train_refuses_to_write_the_model_over_a_label_image(work, capsys):
    before = (work / "labels" / "a.png").read_bytes()
    assert main(["pixel", "train", str(work / "images"), "--labels", str(work / "labels"),
                 "-o", str(work / "labels" / "a.png"), "--classes", "background,root"]) == 2
    assert "labels/a.png: would overwrite the input" in capsys.readouterr().err
    assert (work / "labels" / "a.png").read_bytes() == before


def test_segment_into_its_own_folder_redoes_the_masks_without_masking_them(work):
    """A rerun into the images' folder: the earlier a_mask.png is an output to redo, not an image."""
    folder = work / "images"
    (folder / "a_mask.png").write_bytes((work / "masks" / "a.png").read_bytes())  # an earlier run's mask
    assert main(["segment", str(folder), "--model", str(work / "pixel.model"), "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "a_mask.json", "a_mask.png", "b.png",
                                                         "b_mask.json", "b_mask.png"]
    assert set(np.unique(io.read_labels(folder / "a_mask.png"))) == {1, 2}  # the new mask: 1..K
    assert io.read_json(folder / "a_mask.json") == {"classes": ["background", "root"], "model": "pixel.model"}


def test_segment_refuses_a_mask_that_would_replace_an_image_given(work, capsys):
    folder = work / "images"
    io.write_image(folder / "a_mask.png", np.full((96, 96), 200, np.uint8))  # a scan that happens to be named so
    before = (folder / "a_mask.png").read_bytes()
    assert main(["segment", str(folder / "a.png"), str(folder / "a_mask.png"), "--model", str(work / "pixel.model"),
                 "-o", str(folder)]) == 2
    assert "a_mask.png: would overwrite the input" in capsys.readouterr().err
    assert (folder / "a_mask.png").read_bytes() == before and not (folder / "a_mask_mask.png").exists()


def test_segment_refuses_two_images_of_one_stem_before_any_work(work, capsys):
    """a.png and a.tif would both write a_mask.png: the second would replace the first's mask."""
    folder = work / "images"
    io.write_image(folder / "a.tif", io.read_image(folder / "a.png"))
    assert main(["segment", str(folder), "--model", str(work / "pixel.model"), "-o", str(work / "seg")]) == 2
    assert "seg/a_mask.png: two inputs would write this one output" in capsys.readouterr().err
    assert not (work / "seg").exists() or not any((work / "seg").iterdir())


def test_synth_refuses_a_folder_that_holds_scans(work, capsys):
    """`rootscope synth` into an experiment with raw scans would mix its plates with the user's."""
    before = sorted((work / "exp" / "raw").rglob("*"))
    assert main(["synth", str(work / "exp"), "--plates", "1", "--frames", "1", "--size", "256"]) == 2
    assert "exp/raw: already holds 2 files" in capsys.readouterr().err
    assert sorted((work / "exp" / "raw").rglob("*")) == before
    assert main(["synth", str(work / "new"), "--plates", "1", "--frames", "1", "--size", "256"]) == 0
    assert len(list((work / "new" / "raw").rglob("*.png"))) == 1


def test_masks_of_segment_are_measured_by_analyze_with_their_class_names(work):
    """Mask value 1 of this model is background: analyze reads a_mask.json and measures value 2."""
    assert main(["segment", str(work / "images"), "--model", str(work / "pixel.model"), "-o", str(work / "seg")]) == 0
    out = work / "traits.csv"
    assert main(["analyze", str(work / "seg"), "--px-per-mm", str(PX_PER_MM), "-o", str(out)]) == 0
    classes = pd.read_csv(work / "traits_classes.csv")
    assert set(classes.name) == {"root"} and set(classes["class"]) == {2}
    assert (classes.area_mm2 < 0.2 * 96 * 96 / PX_PER_MM**2).all()  # the root, not the plate


def test_analyze_refuses_an_overlay_over_a_mask(work, capsys):
    masks = work / "masks"
    shutil.copy(masks / "a.png", masks / "a_overlay.png")  # a mask whose name is a's overlay's
    before = (masks / "a_overlay.png").read_bytes()
    assert main(["analyze", str(masks), "--px-per-mm", "10", "-o", str(work / "t.csv"), "--overlay", str(masks)]) == 2
    assert "a_overlay.png: would overwrite the input" in capsys.readouterr().err
    assert (masks / "a_overlay.png").read_bytes() == before and not (work / "t.csv").exists()


def test_branches_detect_refuses_a_table_over_a_mask_and_masks_of_another_size(work, capsys):
    args = ["branches", "detect", str(work / "images" / "a.png"), "--fuse", "--masks", str(work / "masks")]
    before = (work / "masks" / "a.png").read_bytes()
    assert main([*args, "-o", str(work / "masks" / "a.png")]) == 2
    assert "masks/a.png: would overwrite the input" in capsys.readouterr().err
    assert (work / "masks" / "a.png").read_bytes() == before
    io.write_image(work / "masks" / "a.png", np.zeros((48, 96), np.uint8))
    assert main([*args, "-o", str(work / "points.csv")]) == 2
    err = capsys.readouterr().err
    assert "masks/a.png is 96 x 48 px but" in err and "images/a.png is 96 x 96" in err
    assert not (work / "points.csv").exists()


# ----------------------------------------------------------------------------- unwritable folders
COMMANDS = {
    "synth": lambda w, ro: ["synth", str(ro), "--plates", "1", "--frames", "1", "--size", "256"],
    "align": lambda w, ro: ["align", str(w / "images"), "-o", str(ro)],
    "pixel train": lambda w, ro: ["pixel", "train", str(w / "images"), "--labels", str(w / "labels"),
                                  "-o", str(ro / "m.model"), "--classes", "background,root"],
    "unet train": lambda w, ro: ["unet", "train", str(w / "images"), "--masks", str(w / "masks"), "-o",
                                 str(ro / "u.pt"), "--epochs", "1", "--tile", "64", "--depth", "2", "--width", "4",
                                 "--batch", "4", "--tiles-per-epoch", "4", "--device", "cpu", "--no-calibrate"],
    "segment": lambda w, ro: ["segment", str(w / "images"), "--model", str(w / "pixel.model"), "-o", str(ro)],
    "analyze": lambda w, ro: ["analyze", str(w / "masks"), "--px-per-mm", "10", "-o", str(ro / "t.csv")],
    "branches detect": lambda w, ro: ["branches", "detect", str(w / "images" / "a.png"), "-o", str(ro / "p.csv")],
    "track": lambda w, ro: ["track", str(w / "rsml"), "-o", str(ro)],
    "run": lambda w, ro: ["run", str(w / "exp"), "--workers", "1"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unwritable_output_folder_is_one_line_naming_it(work, monkeypatch, capsys, command):
    """Tests run as root, where chmod does not stop a write. Instead the calls that create files and
    folders (mkstemp, os.open, os.mkdir) fail inside the output folder with EACCES, as they would in a
    folder without write permission. This proves that each command writes only through rootscope.io and
    that io turns the error into one line; not how the kernel treats permissions."""
    ro = work / "exp" / "out" if command == "run" else work / "ro"
    ro.mkdir(parents=True)

    def inside(path) -> bool:
        return Path(path).resolve().is_relative_to(ro.resolve())

    def denied(path) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    real_mkstemp, real_open, real_mkdir = tempfile.mkstemp, os.open, os.mkdir

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and inside(dir):
            raise denied(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and inside(path):
            raise denied(path)
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path) and Path(path).resolve() != ro.resolve():
            raise denied(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)
    assert main(COMMANDS[command](work, ro)) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]  # progress bars aside
    assert line.startswith(f"error: {ro}") and ": cannot write there (Permission denied); choose an output" in line
    assert "Traceback" not in err
    assert not [p for p in ro.rglob("*") if p.is_file()]
