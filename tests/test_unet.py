"""U-Net: learning on a toy problem, seamless tiling, model files, checkpoints, bad input."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import torch

from rootscope import io
from rootscope.errors import ConfigError, InputError, ModelError, ShapeMismatchError
from rootscope.metrics import dice
from rootscope.unet import (
    NO_AUGMENT,
    SegmentationTask,
    TileSampler,
    TrainConfig,
    UNet,
    UNetConfig,
    balanced_class_weights,
    build_model,
    calibrate_biases,
    is_unet_model,
    load_segmentation_set,
    load_segmenter,
    predict_tiled,
    read_model_file,
    save_model_file,
    train,
)
from rootscope.unet.data import Sample, class_focus, class_frequencies, find_partner, split_samples, structure_focus
from rootscope.unet.runtime import Runtime
from rootscope.unet.train import last_path, metrics_path

FP32 = Runtime(torch.device("cpu"), None, channels_last=False)
TINY = dict(depth=2, width=8, tile=64, batch=8, tiles_per_epoch=32, val_tiles=8, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_plate(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Grey noisy plate with bright 3-px 'roots' (mask 1) and a darker disc 'seed' (mask 2)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(4):
        p0, p1 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        cv2.line(mask, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1, 3)
    cv2.circle(mask, tuple(int(v) for v in rng.integers(20, size - 20, 2)), 6, 2, -1)
    image = np.choose(mask, [0.3, 0.75, 0.55]).astype(np.float32)
    image = image + rng.normal(0, 0.06, image.shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(image, (0, 0), 0.7), 0, 1), mask


def write_set(folder, n: int = 4, size: int = 128, classes: int = 2):
    """images/ and masks/ folders of toy plates (mask values 0..classes-1)."""
    for i in range(n):
        image, mask = toy_plate(i, size)
        io.write_image(folder / "images" / f"p{i}.png", image)
        io.write_image(folder / "masks" / f"p{i}.png", np.minimum(mask, classes - 1).astype(np.uint8))
    return folder / "images", folder / "masks"


def segmentation_samples(n: int, size: int = 128) -> list[Sample]:
    samples = []
    for i in range(n):
        image, mask = toy_plate(i, size)
        target = (np.minimum(mask, 1) + 1).astype(np.uint8)
        samples.append(Sample(image[..., None], target, class_focus(target, 2), f"p{i}"))
    return samples


def test_short_training_learns_the_toy_problem(tmp_path):
    samples = segmentation_samples(5)
    task = SegmentationTask(["background", "root"], balanced_class_weights(samples, 2))
    result = train(samples, task, tmp_path / "toy.pt", TrainConfig(epochs=8, lr=1e-2, **TINY))
    h = result.history
    assert h["train_loss"].iloc[-2:].mean() < 0.6 * h["train_loss"].iloc[:2].mean()
    assert h["dice_root"].max() > 0.85 and h["dice_root"].max() > h["dice_root"].iloc[0] + 0.1
    # the saved best model segments an unseen plate
    image, mask = toy_plate(99)
    seg = load_segmenter(result.best_path, device="cpu", tile=64, overlap=32)
    pred = seg.predict(image)
    assert pred.dtype == np.uint8 and set(np.unique(pred)) <= {1, 2}
    truth = mask == 1
    dice = 2 * np.sum((pred == 2) & truth) / (np.sum(pred == 2) + truth.sum())
    assert dice > 0.8


def test_tiled_prediction_equals_one_pass():
    torch.manual_seed(0)
    model = UNet(UNetConfig(1, 3, depth=2, width=8)).eval()
    image, _ = toy_plate(1, 96)
    image = image[..., None]
    tiled = predict_tiled(model, image, FP32, tile=64, overlap=48, batch=3, multiple=4)
    pad = 48 - 48 // 4 + 32  # tiles start 36 px before the image; 32 more keeps the 4-px pooling grid
    padded = np.pad(image, ((pad, pad + 8), (pad, pad + 8), (0, 0)), mode="reflect")
    with torch.no_grad():
        whole = model(torch.from_numpy(padded.transpose(2, 0, 1)[None].copy())).softmax(1)[0].numpy()
    one_pass = whole[:, pad : pad + 96, pad : pad + 96]
    assert tiled.shape == (3, 96, 96)
    assert np.abs(tiled - one_pass).max() < 1e-3


def test_tiles_cover_odd_sizes_and_probabilities_sum_to_one():
    model = UNet(UNetConfig(1, 2, depth=2, width=4)).eval()
    for shape in [(7, 130), (200, 33)]:
        probs = predict_tiled(model, np.random.default_rng(0).random((*shape, 1), np.float32), FP32,
                              tile=64, overlap=16, batch=2, tta=True, multiple=4)
        assert probs.shape == (2, *shape)
        assert np.allclose(probs.sum(0), 1.0, atol=1e-5)


def test_model_file_round_trip_keeps_weights_and_metadata(tmp_path):
    images, masks = write_set(tmp_path, n=3)
    samples, classes, _ = load_segmentation_set(images, masks)
    task = SegmentationTask(classes)
    result = train(samples, task, tmp_path / "m.pt", TrainConfig(epochs=1, **TINY), meta={"note": "x"})
    payload = read_model_file(result.best_path)
    assert payload["format"] == "rootscope-unet" and payload["kind"] == "segmentation"
    assert payload["classes"] == ["background", "root"] and payload["note"] == "x"
    assert payload["architecture"]["depth"] == 2 and payload["tile"] == 64
    assert payload["training"]["epochs"] == 1 and "dice_root" in payload["metrics"]
    assert len(payload["normalisation"]["mean"]) == 1 and payload["rootscope_version"]
    seg = load_segmenter(result.best_path, device="cpu", precision="fp32")
    image = io.read_image(images / "p0.png")
    again = load_segmenter(result.best_path, device="cpu", precision="fp32")
    assert seg.classes == classes
    assert np.array_equal(seg.predict_proba(image), again.predict_proba(image))
    assert is_unet_model(result.best_path) and not is_unet_model(images / "p0.png")


def test_time_limit_stops_cleanly_and_resume_continues(tmp_path):
    samples = segmentation_samples(3)
    task = SegmentationTask(["background", "root"])
    out = tmp_path / "t.pt"
    result = train(samples, task, out, TrainConfig(epochs=50, time_limit=0.05, **TINY))
    assert result.stopped == "time limit" and len(result.history) < 50
    assert out.exists() and last_path(out).exists() and metrics_path(out).exists()
    done = len(result.history)
    more = train(samples, task, out, TrainConfig(epochs=done + 2, **TINY), resume=True)
    assert more.history["epoch"].tolist() == list(range(1, done + 3))
    assert load_segmenter(last_path(out), device="cpu").classes == ["background", "root"]


def test_sampler_centres_tiles_on_sparse_labels():
    target = np.zeros((300, 300), np.uint8)
    target[150, 20:40] = 2
    target[10:12, 280] = 1
    sample = Sample(np.zeros((300, 300, 1), np.float32), target, class_focus(target, 2))
    sampler = TileSampler([sample], 32, augment=NO_AUGMENT, focus_fraction=1.0, seed=0)
    _, targets = sampler.batch(20)
    assert all(t.any() for t in targets)
    assert {1, 2} <= set(np.unique(targets))


def test_hard_background_focus_finds_root_like_edges_away_from_roots():
    image = np.full((100, 100), 0.3, np.float32)
    image[:, 80] = 0.9  # a plate rim: background that looks like a root
    image[:, 20] = 0.9  # a root
    target = np.ones((100, 100), np.uint8)
    target[:, 19:22] = 2
    points = structure_focus(image, target)
    assert len(points) and np.all(np.abs(points[:, 1] - 80) <= 2)


def test_masks_with_undeclared_classes_are_refused(tmp_path):
    images, masks = write_set(tmp_path, n=2, classes=3)
    with pytest.raises(InputError, match=r"p\d\.png.*class value\(s\) \[2\].*--classes"):
        load_segmentation_set(images, masks, classes=["background", "root"])


def test_mask_of_another_size_is_refused(tmp_path):
    images, masks = write_set(tmp_path, n=2)
    io.write_image(masks / "p1.png", np.zeros((64, 80), np.uint8))
    with pytest.raises(ShapeMismatchError, match=r"p1\.png is 80x64 but .*p1\.png is 128x128"):
        load_segmentation_set(images, masks)


def test_empty_label_image_is_refused(tmp_path):
    images, _ = write_set(tmp_path, n=2)
    labels = tmp_path / "labels"
    io.write_image(labels / "p0.png", np.zeros((128, 128), np.uint8))
    with pytest.raises(InputError, match=r"p0\.png: label image is empty"):
        load_segmentation_set(images, label_dir=labels)


def test_labels_of_a_single_class_are_refused(tmp_path):
    images, masks = write_set(tmp_path, n=2)
    with pytest.raises(InputError, match="only one class is labelled"):
        load_segmentation_set(images, label_dir=masks)  # 0/1 masks read as labels: only class 1


def test_model_file_from_another_tool_is_refused(tmp_path):
    pickled = tmp_path / "other.pt"
    torch.save({"state_dict": UNet(UNetConfig(depth=1, width=2)).state_dict()}, pickled)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    for path in (pickled, text):
        assert not is_unet_model(path)
        with pytest.raises(ModelError, match=path.name):
            load_segmenter(path)


def test_tile_must_fit_the_network(tmp_path):
    with pytest.raises(ConfigError, match="multiple of 4"):
        train(segmentation_samples(2), SegmentationTask(["a", "b"]), tmp_path / "x.pt",
              TrainConfig(**{**TINY, "tile": 66}))


class RecordingTask(SegmentationTask):
    """Segmentation that counts its validations, keeps the validation targets and stores the count."""

    def __init__(self) -> None:
        super().__init__(["background", "root"])
        self.validations = 0
        self.targets: list[np.ndarray] = []

    def metrics(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        self.validations += 1
        self.targets.append(target.numpy())
        return {**super().metrics(logits, target), "score": float(self.validations)}  # every epoch is best

    def meta(self) -> dict:
        return {**super().meta(), "validations": self.validations}


def test_hooks_threads_and_validation_focus(tmp_path):
    samples = segmentation_samples(3)
    finished, threads_seen = [], []
    task = RecordingTask()
    config = TrainConfig(epochs=2, threads=2, val_focus_fraction=1.0, **{**TINY, "val_tiles": 32})
    result = train(samples, task, tmp_path / "h.pt", config, finish=finished.append,
                   report=lambda row: threads_seen.append(torch.get_num_threads()))
    # meta() is read at every save: the files hold what the task learned by then
    assert read_model_file(result.best_path)["validations"] == 2
    assert finished == [result.best_path]
    # torch ran on the configured threads and is back to the fixture's one thread
    assert threads_seen == [2, 2] and torch.get_num_threads() == 1
    # validation tiles centred on the classes half the time (root centre ~50 %) vs anywhere (~root share)
    anywhere = RecordingTask()
    train(samples, anywhere, tmp_path / "a.pt", TrainConfig(epochs=1, val_focus_fraction=0.0,
                                                             **{**TINY, "val_tiles": 32}))
    centre_root = [int((t[:, 32, 32] == 2).sum()) for t in (task.targets[0], anywhere.targets[0])]
    assert centre_root[0] >= 10 and centre_root[0] > centre_root[1] + 6


def test_bad_threads_and_focus_fractions_are_refused(tmp_path):
    for change, word in [({"threads": 0}, "--threads"), ({"val_focus_fraction": 1.5}, "val_focus_fraction")]:
        with pytest.raises(ConfigError, match=word):
            train(segmentation_samples(2), SegmentationTask(["a", "b"]), tmp_path / "x.pt",
                  TrainConfig(**{**TINY, **change}))


def test_find_partner_matches_the_stem_in_any_image_suffix(tmp_path):
    io.write_image(tmp_path / "p0.TIF", np.zeros((4, 4), np.uint8))
    io.write_image(tmp_path / "p1.png", np.zeros((4, 4), np.uint8))
    assert find_partner(tmp_path, "p0") == tmp_path / "p0.TIF"
    assert find_partner(tmp_path, "p1") == tmp_path / "p1.png"
    assert find_partner(tmp_path, "p2") is None


def test_cli_train_threads_hold_for_the_training_only(tmp_path):
    from rootscope.cli import main

    images, masks = write_set(tmp_path, n=2)
    out = tmp_path / "cli.pt"
    assert main(["unet", "train", str(images), "--masks", str(masks), "-o", str(out), "--epochs", "1",
                 "--tile", "64", "--depth", "2", "--width", "4", "--batch", "4", "--tiles-per-epoch", "8",
                 "--device", "cpu", "--threads", "2"]) == 0
    assert read_model_file(out)["training"]["config"]["threads"] == 2
    assert torch.get_num_threads() == 1  # the fixture's setting is back


def test_mined_mistakes_centre_the_tiles_of_their_image():
    image = np.zeros((300, 300, 1), np.float32)
    target = np.ones((300, 300), np.uint8)
    target[150, 20:40] = 2
    sampler = TileSampler([Sample(image, target, class_focus(target, 2))], 32, augment=NO_AUGMENT,
                          focus_fraction=1.0, hard_fraction=1.0, seed=0)
    sampler.set_hard(0, np.array([[280, 280]]))  # the model got the bottom-right corner wrong
    centres = [sampler._centre(0) for _ in range(10)]
    assert all(tuple(c) == (280, 280) for c in centres)
    sampler.hard_fraction = 0.0
    assert not any(tuple(sampler._centre(0)) == (280, 280) for _ in range(10))


class MiningTask(SegmentationTask):
    """Segmentation that records the images it was asked to find mistakes in."""

    def __init__(self) -> None:
        super().__init__(["background", "root"])
        self.mined: list[tuple[int, ...]] = []

    def mistakes(self, logits: np.ndarray, target: np.ndarray) -> np.ndarray:
        self.mined.append(logits.shape)
        return super().mistakes(logits, target)


def test_mining_runs_on_whole_training_images_and_counts_as_training_time(tmp_path):
    samples = segmentation_samples(3)
    task = MiningTask()
    t = time.process_time()
    result = train(samples, task, tmp_path / "m.pt", TrainConfig(epochs=3, mine_every=1, cpu_clock=True, **TINY))
    assert task.mined == [(2, 128, 128)] * 3  # whole images, every epoch
    assert result.history["train_s"].iloc[-1] <= time.process_time() - t  # CPU seconds of this process
    with pytest.raises(ConfigError, match="mine_every"):
        train(samples, task, tmp_path / "m.pt", TrainConfig(mine_every=-1, **TINY))


def test_initial_bias_starts_the_network_at_the_class_prior():
    samples = segmentation_samples(3)
    freq = class_frequencies(samples, 2)
    bias = torch.tensor(SegmentationTask(["background", "root"]).initial_bias(samples))
    assert np.allclose(bias.softmax(0).numpy(), freq, atol=1e-4)
    weighted = torch.tensor(SegmentationTask(["background", "root"], [1.0, 3.0]).initial_bias(samples))
    assert np.allclose(weighted.softmax(0).numpy(), freq * [1, 3] / (freq * [1, 3]).sum(), atol=1e-4)


def test_calibration_undoes_a_biased_root_output_on_the_validation_images(tmp_path):
    samples = segmentation_samples(5)
    config = TrainConfig(epochs=8, lr=1e-2, **TINY)
    result = train(samples, SegmentationTask(["background", "root"], [1.0, 1.0]), tmp_path / "c.pt", config)
    payload = read_model_file(result.best_path)
    payload["state_dict"]["head.bias"][1] += 2.5  # now the model draws roots far too wide
    model = build_model(payload)
    save_model_file(result.best_path, model, {k: v for k, v in payload.items() if k not in ("state_dict",
                                                                                           "architecture")})
    val = split_samples(samples, config.val_fraction, config.seed)[1]

    def val_dice() -> float:
        seg = load_segmenter(result.best_path, device="cpu", tile=64, overlap=32)
        return float(np.mean([dice(seg.predict(s.image) == 2, s.target == 2) for s in val]))

    before = val_dice()
    offsets = calibrate_biases(result.best_path, samples, config)
    assert offsets["background"] == 0.0 and offsets["root"] <= -1.5
    assert read_model_file(result.best_path)["bias_offsets"] == offsets
    assert val_dice() > before + 0.05


def test_cli_time_limit_alone_trains_by_the_clock(tmp_path):
    from rootscope.cli import main

    images, masks = write_set(tmp_path, n=2)
    out = tmp_path / "clock.pt"
    assert main(["unet", "train", str(images), "--masks", str(masks), "-o", str(out), "--time-limit", "0.05",
                 "--tile", "64", "--depth", "2", "--width", "4", "--batch", "4", "--tiles-per-epoch", "8",
                 "--device", "cpu", "--mine-every", "2"]) == 0
    payload = read_model_file(out)
    history = read_model_file(last_path(out))["history"]
    assert history[-1]["train_s"] >= 3.0  # neither 40 epochs nor early stopping ended it first
    assert payload["training"]["config"]["mine_every"] == 2 and set(payload["bias_offsets"]) == {"background", "root"}


def plate_with_empty_bottom(size: int = 120) -> Sample:
    """One plate with two rows of seedlings (background 1, roots 2, seeds 3) and agar only below 75 %."""
    target = np.ones((size, size), np.uint8)
    for top, col in ((6, 30), (62, 80)):
        target[top + 4 : top + 28, col : col + 3] = 2
        target[top : top + 8, col - 4 : col + 7] = 3
    image = np.choose(target - 1, [0.3, 0.75, 0.55]).astype(np.float32)[..., None]
    return Sample(image, target, class_focus(target, 3), "plate")


def test_one_image_is_validated_on_rows_that_hold_every_class():
    """The bottom 20 % of a plate is often agar only: validating there scored every class 1.000."""
    sample = plate_with_empty_bottom()
    train_set, val_set = split_samples([sample], 0.2)
    (val,) = val_set
    assert len(val.target) == 24 and set(np.unique(val.target)) == {1, 2, 3}
    assert {1, 2, 3} <= set(np.unique(np.concatenate([t.target.ravel() for t in train_set])))
    assert sum(len(t.target) for t in train_set) + len(val.target) == 120  # every row used once
    for part in (*train_set, val):  # focus points stay on their class, in the part's own rows
        for k, group in enumerate(part.focus, start=1):
            assert len(group) == (part.target == k).sum() and (part.target[group[:, 0], group[:, 1]] == k).all()
    maps = Sample(sample.image, np.zeros((120, 120, 2), np.float32), name="heat")
    assert len(split_samples([maps], 0.2)[1][0].target) == 24  # map targets: the bottom rows, as before


def test_a_class_missing_from_validation_is_not_scored():
    task = SegmentationTask(["background", "root", "seed"])
    logits = torch.zeros(1, 3, 4, 4)
    logits[0, 0] = 1.0  # everything predicted background
    only_background = task.metrics(logits, torch.ones(1, 4, 4, dtype=torch.uint8))
    assert only_background["dice_background"] == 1.0
    assert all(np.isnan(only_background[f"{m}_{c}"]) for m in ("dice", "precision", "recall") for c in ("root", "seed"))
    assert np.isnan(only_background["score"])
    target = torch.ones(1, 4, 4, dtype=torch.uint8)
    target[0, 0, :2] = 2
    with_root = task.metrics(logits, target)
    assert with_root["dice_root"] == 0.0 and np.isnan(with_root["dice_seed"]) and with_root["score"] == 0.0


def test_cli_train_refuses_to_write_its_model_over_a_mask(tmp_path, capsys):
    from rootscope.cli import main

    images, masks = write_set(tmp_path, n=2)
    before = (masks / "p0.png").read_bytes()
    assert main(["unet", "train", str(images), "--masks", str(masks), "-o", str(masks / "p0.png"), "--epochs", "1",
                 "--tile", "64", "--depth", "2", "--width", "4", "--batch", "4", "--tiles-per-epoch", "8",
                 "--device", "cpu"]) == 2
    assert "p0.png: would overwrite the input" in capsys.readouterr().err
    assert (masks / "p0.png").read_bytes() == before and sorted(p.name for p in masks.iterdir()) == ["p0.png", "p1.png"]
