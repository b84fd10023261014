"""Branching points: matching metric, heat-map targets, peaks, fusion, a toy training run, CLI contract."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rootscope import branches as br
from rootscope import io
from rootscope.cli import app, main
from rootscope.errors import InputError, ModelError
from rootscope.metrics import match_points, match_points_ignoring


# ------------------------------------------------------------------------------ matching metric
def test_matching_with_no_predictions_misses_every_point():
    m = match_points(np.zeros((0, 2)), np.array([[10.0, 10.0], [50.0, 50.0]]), 6)
    assert (m.tp, m.fp, m.fn, m.f1, m.recall) == (0, 0, 2, 0.0, 0.0)
    assert np.isnan(m.mean_error)


def test_matching_with_no_truth_counts_every_prediction_false():
    m = match_points(np.array([[1.0, 2.0]]), np.zeros((0, 2)), 6)
    assert (m.tp, m.fp, m.fn, m.precision) == (1 - 1, 1, 0, 0.0)


def test_duplicate_predictions_match_once():
    truth = np.array([[100.0, 100.0]])
    m = match_points(np.array([[101.0, 100.0], [101.0, 100.0], [99.0, 100.0]]), truth, 6)
    assert (m.tp, m.fp, m.fn) == (1, 2, 0)
    assert m.mean_error == pytest.approx(1.0)


def test_points_just_inside_match_and_just_outside_do_not():
    truth = np.array([[0.0, 0.0], [100.0, 0.0]])
    inside = match_points(np.array([[5.99, 0.0], [100.0, 6.0]]), truth, 6)  # 6.0 exactly is inside
    outside = match_points(np.array([[6.01, 0.0], [100.0, -6.01]]), truth, 6)
    assert (inside.tp, inside.fp, inside.fn) == (2, 0, 0)
    assert (outside.tp, outside.fp, outside.fn) == (0, 2, 2)


def test_matching_is_one_to_one_and_optimal():
    # greedy nearest-first would pair p0-t1 (0.5 px) and leave t0 unmatched; Hungarian pairs both
    truth = np.array([[0.0, 0.0], [5.0, 0.0]])
    pred = np.array([[4.5, 0.0], [10.5, 0.0]])
    m = match_points(pred, truth, 6)
    assert m.tp == 2 and m.f1 == 1.0


def test_a_prediction_at_an_ignored_point_is_neither_false_nor_found():
    truth, ignored = np.array([[0.0, 0.0]]), np.array([[50.0, 0.0], [90.0, 0.0]])
    pred = np.array([[1.0, 0.0], [2.0, 0.0], [51.0, 0.0], [200.0, 0.0]])  # a duplicate, an ignored one, a stray
    m = match_points_ignoring(pred, truth, ignored, 6)
    assert (m.tp, m.fp, m.fn) == (1, 2, 0)  # the duplicate near the matched point stays false
    assert (match_points(pred, truth, 6).fp, match_points_ignoring(pred[:1], truth, ignored, 6).fp) == (3, 0)


# ------------------------------------------------------------------------------ targets and peaks
def test_heatmap_peaks_at_the_points_with_height_one():
    points = np.array([[10.0, 20.0], [40.0, 5.0]])
    heat = br.heatmap(points, (32, 64), sigma=2.0)
    assert heat.dtype == np.float32 and heat.shape == (32, 64)
    for x, y in points.astype(int):
        assert heat[y, x] == pytest.approx(1.0)
        assert heat[y - 3 : y + 4, x - 3 : x + 4].max() == heat[y, x]
    assert heat[0, 63] == 0.0  # far from both points
    assert heat[20, 10 + 2] == pytest.approx(np.exp(-0.5), rel=1e-5)  # one sigma away


def test_heatmap_ignores_points_outside_the_image():
    heat = br.heatmap(np.array([[-50.0, 5.0], [5.0, 500.0]]), (16, 16))
    assert not heat.any()


def test_find_peaks_recovers_subpixel_points_once_each():
    rng = np.random.default_rng(0)
    truth = np.array([[12.3, 40.7], [60.5, 20.2], [90.0, 90.0]])
    heat = br.heatmap(truth, (128, 128), 2.0) * np.array([1.0])
    heat = np.maximum(heat, br.heatmap(truth[:1] + [1.0, 0.0], (128, 128), 2.0) * 0.9)  # shoulder, no second peak
    heat += rng.uniform(0, 0.05, heat.shape).astype(np.float32)
    peaks = br.find_peaks(heat, threshold=0.5, min_distance=3)
    assert peaks.shape == (3, 3)
    m = match_points(peaks[:, :2], truth, 1.0)
    assert m.tp == 3 and m.mean_error < 0.6
    assert np.all(np.diff(peaks[:, 2]) <= 0)  # strongest first


def test_find_peaks_threshold_and_flat_top():
    heat = np.zeros((40, 40), np.float32)
    heat[10:13, 10:13] = 0.8  # flat top: one peak at its centre
    heat[30, 30] = 0.3  # below threshold
    peaks = br.find_peaks(heat, threshold=0.5)
    assert peaks.shape == (1, 3)
    assert peaks[0, :2] == pytest.approx([11.0, 11.0]) and peaks[0, 2] == pytest.approx(0.8)
    assert len(br.find_peaks(np.zeros((8, 8), np.float32))) == 0


def test_points_from_csv_rsml_and_bad_files(tmp_path: Path):
    csv = tmp_path / "a.csv"
    csv.write_text("x,y\n10,20\n30.5,40\n")
    assert br.read_points(csv).tolist() == [[10.0, 20.0], [30.5, 40.0]]
    bad = tmp_path / "b.csv"
    bad.write_text("col,row\n1,2\n")
    with pytest.raises(InputError, match="b.csv.*x and y"):
        br.read_points(bad)
    with pytest.raises(InputError, match="c.txt"):
        br.read_points(tmp_path / "c.txt")
    from rootscope.rsml import Plant, Root, Scene, write_rsml

    lateral = Root(points=np.array([[50.0, 60.0], [70.0, 65.0]]), order=2)
    primary = Root(points=np.array([[50.0, 10.0], [50.0, 100.0]]), order=1, children=[lateral])
    write_rsml(tmp_path / "p.rsml", Scene(plants=[Plant(roots=[primary])]))
    assert br.read_points(tmp_path / "p.rsml").tolist() == [[50.0, 60.0]]


def test_fusion_keeps_supported_junctions_and_adds_strong_peaks():
    heat = br.heatmap(np.array([[20.0, 20.0], [80.0, 20.0]]), (50, 100), 2.0)  # work scale 0.5
    pred = br.BranchPrediction(heat=heat, root=None, scale=0.5)
    peaks = br.to_full(br.find_peaks(heat, 0.5), 0.5)  # (40.5, 40.5), (160.5, 40.5) full size
    junctions = np.array([[43.0, 41.0],   # supported: moved onto the nearby peak
                          [100.0, 60.0]])  # no heat there: a crossing, dropped
    fused = br.fuse(peaks, junctions, pred, support=0.25, radius=6)
    assert len(fused) == 2
    assert match_points(fused[:, :2], np.array([[40.5, 40.5], [160.5, 40.5]]), 0.5).tp == 2


def test_evaluate_takes_scored_points_and_empty_predictions():
    truth = np.array([[10.0, 10.0], [40.0, 40.0]])
    assert br.evaluate(np.array([[11.0, 10.0, 0.9]]), truth)["f1"] == pytest.approx(2 / 3)
    assert br.evaluate(np.zeros((0, 3)), truth)["recall"] == 0.0


def test_evaluate_ignores_hidden_points_both_ways():
    truth = np.array([[10.0, 10.0], [40.0, 40.0], [80.0, 80.0]])
    hidden = np.array([False, True, True])
    pred = np.array([[11.0, 10.0], [41.0, 40.0], [200.0, 200.0]])  # finds one seen + one hidden point, one false
    e = br.evaluate(pred, truth, 6, ignore=hidden)
    assert (e["tp"], e["fp"], e["fn"]) == (1, 1, 0) and e["error_px"] == pytest.approx(1.0)
    assert br.evaluate(np.zeros((0, 2)), truth, 6, ignore=hidden)["fn"] == 1
    assert br.evaluate(pred, truth, 6)["tp"] == 2


def test_synthetic_points_inside_the_image_and_hidden_laterals():
    from types import SimpleNamespace

    from rootscope.rsml import Plant, Root, Scene

    diameter = {"diameter": np.full(3, 6.0)}
    hidden = Root(points=np.array([[50.0, 40.0], [53.0, 40.0]]), order=2)  # 3 px long, parent 6 px wide
    seen = Root(points=np.array([[50.0, 70.0], [80.0, 75.0]]), order=2)
    primary = Root(points=np.array([[50.0, 10.0], [50.0, 40.0], [50.0, 70.0]]), order=1, children=[hidden, seen],
                   functions=diameter)
    points = pd.DataFrame({"x": [50.0, 50.0, 500.0], "y": [40.0, 70.0, 40.0]})  # the last one left the image
    frame = SimpleNamespace(scene=Scene(plants=[Plant(roots=[primary])]), branch_points=points,
                            mask=np.zeros((100, 100), np.uint8))
    assert br.synthetic_points(frame).tolist() == [[50.0, 40.0], [50.0, 70.0]]
    assert br.synthetic_hidden(frame).tolist() == [True, False]


def test_sample_targets_at_work_scale_and_tiles_near_points():
    image = np.random.default_rng(0).random((200, 300, 3)).astype(np.float32)
    mask = np.zeros((200, 300), bool)
    mask[:, 148:153] = True
    s = br.make_sample(image, np.array([[150.0, 100.0]]), mask, settings=br.BranchSettings(scale=0.5))
    assert s.image.shape == (100, 150, 3) and s.target.shape == (100, 150, 2)
    assert np.unravel_index(s.target[..., 0].argmax(), (100, 150)) == (50, 75)  # (x, y) 150, 100 at half size
    assert s.target[..., 1][:, 75].all() and not s.target[..., 1][:, 10].any()
    near = s.focus[0]
    assert np.abs(near - [50, 75]).max() <= 24 and len(s.focus[1]) == (s.target[..., 1] > 0.5).sum()
    with_input = br.make_sample(image, np.zeros((0, 2)), mask, settings=br.BranchSettings(mask_input=True))
    assert with_input.image.shape[2] == 4 and not with_input.target[..., 0].any()
    with pytest.raises(InputError, match="mask"):
        br.make_sample(image, np.zeros((0, 2)), None, name="plate7")


def test_point_set_from_rsml_draws_root_masks(tmp_path: Path):
    from rootscope.rsml import Plant, Root, Scene, write_rsml

    lateral = Root(points=np.array([[50.0, 60.0], [80.0, 70.0]]), order=2)
    primary = Root(points=np.array([[50.0, 10.0], [50.0, 120.0]]), order=1, children=[lateral])
    io.write_image(tmp_path / "img" / "a.png", np.full((128, 128), 0.5, np.float32))
    io.write_image(tmp_path / "img" / "b.png", np.full((128, 128), 0.5, np.float32))
    write_rsml(tmp_path / "pts" / "a.rsml", Scene(plants=[Plant(roots=[primary])]))
    samples, settings, skipped = br.load_point_set(tmp_path / "img", tmp_path / "pts")
    assert skipped == ["b.png"] and settings.mask_head and len(samples) == 1
    target = samples[0].target
    assert target.shape == (64, 64, 2) and target[5:60, 25, 1].all()  # primary drawn at half size
    assert np.unravel_index(target[..., 0].argmax(), (64, 64)) == (30, 25)


# ------------------------------------------------------------------------------ toy training
def toy_plate(seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Grey image with bright discs (the planted points) and bright lines of the same value (distractors)."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size), 0.2, np.float32)
    for _ in range(2):
        a, b = rng.integers(0, size, 2), rng.integers(0, size, 2)
        cv2.line(image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 0.8, 1)
    points = rng.uniform(8, size - 8, (4, 2))
    for x, y in points:
        cv2.circle(image, (int(round(x)), int(round(y))), 3, 0.8, -1)
    image += rng.normal(0, 0.03, image.shape).astype(np.float32)
    return np.clip(image, 0, 1), np.rint(points)


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory) -> Path:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and far faster on a busy machine
    settings = br.BranchSettings(scale=1.0, sigma=1.5, mask_head=False)
    samples = [br.make_sample(*toy_plate(k), settings=settings, name=f"toy{k}", seed=k) for k in range(4)]
    out = tmp_path_factory.mktemp("toy") / "toy.pt"
    config = br.default_config(epochs=10, tile=32, depth=2, width=8, batch=16, tiles_per_epoch=64, val_tiles=16,
                               lr=1e-2, device="cpu")
    try:
        br.train_branches(samples, out, config, settings=settings)
    finally:
        torch.set_num_threads(threads)
    return out


def test_short_training_finds_the_planted_points(toy_model: Path):
    detector = br.load_branch_model(toy_model, tile=96, overlap=16)
    assert detector.meta["kind"] == "branch-points" and detector.meta["classes"] == ["branch_heatmap"]
    tp = fp = fn = 0
    for seed in (100, 101, 102):  # unseen plates
        image, truth = toy_plate(seed)
        m = match_points(detector.detect(image)[:, :2], truth, 3)
        tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
    assert 2 * tp / (2 * tp + fp + fn) >= 0.8


def test_training_tunes_the_threshold_on_whole_images_and_validates_anywhere(toy_model: Path):
    from rootscope.unet import read_model_file

    payload = read_model_file(toy_model)
    assert payload["training"]["config"]["val_focus_fraction"] == 0.0  # unbiased validation tiles
    assert br.default_config().val_focus_fraction == 0.0
    # the finish hook stored the threshold tuned on the whole held-out image, and the detector uses it
    assert 0.1 <= payload["threshold"] <= 0.95 and payload["threshold_f1_validation_images"] >= 0.5
    assert payload["nms_px"] in br.NMS_PX and "fusion" not in payload  # no mask head: nothing to fuse
    assert payload["tta"] in br.TTA_CHOICES  # test-time augmentation chosen with the threshold
    detector = br.load_branch_model(toy_model)
    assert (detector.threshold, detector.min_distance, detector.tta) == (payload["threshold"], payload["nms_px"],
                                                                          payload["tta"])
    t = detector.threshold
    assert detector.fusion_levels() == {"support": t / 2, "strong": (1 + t) / 2, "radius": 6.0}


DIHEDRAL = [lambda a: a, lambda a: a[::-1], lambda a: a[:, ::-1], lambda a: a[::-1, ::-1],
            lambda a: a.swapaxes(0, 1), lambda a: a.swapaxes(0, 1)[::-1], lambda a: a.swapaxes(0, 1)[:, ::-1],
            lambda a: a.swapaxes(0, 1)[::-1, ::-1]]
INVERSE = [0, 1, 2, 3, 4, 6, 5, 7]  # a transpose then a flip is undone by the other flip then the transpose


def test_tta_averages_the_views_mapped_back(toy_model: Path):
    """4 views: the flips; 8 views: also those of the transpose; each mapped back before the mean."""
    detector = br.load_branch_model(toy_model, tile=96, overlap=0)  # one 96 px tile: nothing else changes
    image = toy_plate(300)[0][:, :, None]
    x = image.astype(np.float32)
    plain = [DIHEDRAL[INVERSE[k]](detector.predict_work(np.ascontiguousarray(g(x)), 1.0, tta=1).heat)
             for k, g in enumerate(DIHEDRAL)]
    for n in (4, 8):
        heat = detector.predict_work(x, 1.0, tta=n).heat
        np.testing.assert_allclose(heat, np.mean(plain[:n], axis=0), atol=2e-6)
    assert np.abs(plain[0] - plain[4]).max() > 1e-3  # the network alone is not symmetric: the mean is no no-op


def test_tta_with_all_views_gives_mirrored_points_for_a_mirrored_image(toy_model: Path):
    detector = br.load_branch_model(toy_model, tile=96, overlap=0, tta=8)
    image = toy_plate(301)[0]
    points = detector.detect(image)
    assert len(points) >= 3 and detector.tta == 8
    for flipped, mirror in ((image[:, ::-1], lambda p: np.column_stack([95 - p[:, 0], p[:, 1]])),
                            (image.T, lambda p: p[:, ::-1])):
        found = detector.detect(np.ascontiguousarray(flipped))
        assert len(found) == len(points)
        np.testing.assert_allclose(found[:, 2], points[:, 2], atol=1e-5)
        assert match_points(found[:, :2], mirror(points[:, :2]), 0.01).tp == len(points)
    without = br.load_branch_model(toy_model, tile=96, overlap=0, tta=1)
    assert np.abs(without.predict(image).heat - detector.predict(image).heat).max() > 1e-3  # tta=1: plain
    assert np.array_equal(detector.detect(image, tta=1), without.detect(image))  # per-call override


def test_tta_must_be_one_four_or_eight(toy_model: Path):
    with pytest.raises(InputError, match="must be one of 1, 4, 8"):
        br.load_branch_model(toy_model, tta=2)
    with pytest.raises(InputError, match="not 3"):
        br.load_branch_model(toy_model).predict(toy_plate(0)[0], tta=3)


def test_tuning_picks_the_settings_of_the_best_validation_f1():
    """Two made-up TTA choices: the one whose heat-map has the points wins, with a threshold between
    its true peaks (0.9) and its false ones (0.4); fusion adds nothing without junctions."""
    truth = [np.array([[20.0, 20.0], [60.0, 30.0]]), np.array([[40.0, 40.0]])]
    noise = np.array([[70.0, 70.0]])

    def predict(n: int) -> list[br.BranchPrediction]:
        out = []
        for t in truth:
            heat = 0.9 * br.heatmap(t, (80, 80)) if n == 4 else 0.9 * br.heatmap(t[:1] + 9, (80, 80))
            heat = np.maximum(heat, 0.4 * br.heatmap(noise, (80, 80)))
            out.append(br.BranchPrediction(heat, None, 1.0))
        return out

    tuned = br.tune_detection(predict, truth, br.BranchSettings(), tta=(1, 4),
                              junctions=lambda p: np.zeros((0, 2)))
    assert tuned["tta"] == 4 and tuned["f1"] == 1.0 and 0.4 < tuned["threshold"] <= 0.9
    assert [c["tta"] for c in tuned["candidates"]] == [1, 4] and tuned["candidates"][0]["f1"] < 0.5
    assert tuned["fusion"]["f1"] == 1.0 and tuned["fusion"]["strong"] <= 0.9


def test_root_mask_is_the_mask_head_at_full_size(toy_model: Path):
    detector = br.load_branch_model(toy_model)
    root = np.zeros((50, 60), np.float32)
    root[10:20, 30:40] = 0.9
    pred = br.BranchPrediction(heat=np.zeros_like(root), root=root, scale=0.5)
    mask = detector.root_mask(pred, (101, 119))
    assert mask.shape == (101, 119) and mask.dtype == bool
    assert mask[20:40, 60:80].all() and mask.sum() == 20 * 20
    with pytest.raises(ModelError, match="no root-mask output"):
        detector.root_mask(br.BranchPrediction(heat=root, root=None, scale=0.5), (100, 120))


def test_loading_another_kind_of_model_is_refused(tmp_path: Path):
    from rootscope.unet import UNet, UNetConfig, save_model_file

    path = save_model_file(tmp_path / "seg.pt", UNet(UNetConfig(3, 2, 2, 4)), {"kind": "segmentation"})
    with pytest.raises(ModelError, match="seg.pt.*not a branch-point model"):
        br.load_branch_model(path)
    assert not br.is_branch_model(path)


# ------------------------------------------------------------------------------ CLI
def test_cli_detect_writes_image_x_y_score(toy_model: Path, tmp_path: Path):
    for k in (200, 201):
        io.write_image(tmp_path / "imgs" / f"plate{k}.png", toy_plate(k)[0])
    result = CliRunner().invoke(app, ["branches", "detect", str(tmp_path / "imgs"), "--model", str(toy_model),
                                      "-o", str(tmp_path / "points.csv")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "points.csv")
    assert list(table.columns) == ["image", "x", "y", "score"]
    assert set(table.image) <= {"plate200.png", "plate201.png"} and len(table) >= 4


def test_cli_train_reads_csv_points_and_names_missing_ones(tmp_path: Path, capsys):
    images, points = tmp_path / "imgs", tmp_path / "pts"
    for k in range(2):
        image, xy = toy_plate(k, 64)
        io.write_image(images / f"p{k}.png", image)
        io.write_table(points / f"p{k}.csv", pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}))
    model = tmp_path / "m.pt"
    import torch

    threads = torch.get_num_threads()
    assert main(["branches", "train", str(images), "--points", str(points), "-o", str(model), "--epochs", "1",
                 "--tile", "32", "--depth", "2", "--width", "4", "--batch", "8", "--tiles-per-epoch", "8",
                 "--scale", "1", "--device", "cpu", "--threads", "1"]) == 0
    assert torch.get_num_threads() == threads  # --threads holds for the training only
    assert br.is_branch_model(model)
    assert br.load_branch_model(model).settings.mask_head is False  # CSV points, no masks: heat-map only
    empty = tmp_path / "none"
    empty.mkdir()
    assert main(["branches", "train", str(images), "--points", str(empty), "-o", str(model)]) == 2
    assert "no image has a point file" in capsys.readouterr().err


# ------------------------------------------------------------------------------ shipped model
@pytest.fixture(scope="module")
def unseen_crop() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 768 px window of a synthetic plate no shipped model saw (seed 123, day 9), its points and hidden flags."""
    from rootscope.synth import SynthConfig, make_series

    frame = make_series(frames=1, seed=123, config=SynthConfig(size=2000, start_h=216.0))[0]
    points, hidden = br.synthetic_points(frame), br.synthetic_hidden(frame)
    r0, c0 = np.clip(np.median(points[:, ::-1], axis=0).astype(int) - 384, 0, 2000 - 768)
    inside = (points[:, 0] >= c0 + 8) & (points[:, 0] < c0 + 760) & (points[:, 1] >= r0 + 8) & (points[:, 1] < r0 + 760)
    edge = (points[:, 0] >= c0) & (points[:, 0] < c0 + 768) & (points[:, 1] >= r0) & (points[:, 1] < r0 + 768)
    ignore = hidden[edge] | ~inside[edge]  # points at the window's rim count neither way
    return frame.image[r0 : r0 + 768, c0 : c0 + 768], points[edge] - [c0, r0], ignore


def test_shipped_model_is_small_safe_and_finds_branching_points(unseen_crop):
    import torch

    path = br.DEFAULT_MODEL
    assert path.stat().st_size < 2_000_000
    payload = torch.load(path, weights_only=True)  # plain tensors and data: no pickled code
    assert payload["kind"] == br.KIND and payload["architecture"]["width"] <= 16
    detector = br.load_branch_model(device="cpu")
    assert detector.path == path
    assert not detector.settings.mask_input and detector.settings.mask_head  # image only, own root mask
    image, truth, ignore = unseen_crop
    assert (~ignore).sum() >= 10
    e = br.evaluate(detector.detect(image), truth, 6, ignore=ignore)
    assert e["f1"] >= 0.75, e


def test_shipped_models_see_a_coarser_scan_at_their_training_resolution():
    """A 1000 px plate (half the training px/mm): given the scan's px/mm, the image is resized to the
    resolution the network learnt (the half-size model: not at all), and far more branching points are
    found than at the fixed half scale. The full-size default model warns that it enlarges the scan 2x."""
    from rootscope.synth import SynthConfig, make_series

    frame = make_series(frames=1, seed=123, config=SynthConfig(size=1000, start_h=216.0))[0]
    truth, ignore = br.synthetic_points(frame), br.synthetic_hidden(frame)
    with pytest.warns(UserWarning, match="enlarged 2.0x"):
        br.load_branch_model(device="cpu").predict(frame.image[:128, :128], px_per_mm=frame.px_per_mm)
    assert br.shipped_model_for(frame.px_per_mm) == br.COARSE_MODEL
    assert br.shipped_model_for(frame.px_per_mm * 1.5) == br.MEDIUM_MODEL  # the demo's 11 px/mm
    assert br.shipped_model_for(frame.px_per_mm * 2) == br.DEFAULT_MODEL
    detector = br.load_branch_model(br.COARSE_MODEL, device="cpu")
    assert detector.scale_for(frame.px_per_mm) == pytest.approx(2 * detector.settings.scale, rel=1e-6)
    fixed = br.evaluate(detector.detect(frame.image), truth, 3, ignore=ignore)
    scaled = br.evaluate(detector.detect(frame.image, px_per_mm=frame.px_per_mm), truth, 3, ignore=ignore)
    assert scaled["recall"] >= fixed["recall"] + 0.15, (fixed, scaled)
    assert scaled["f1"] >= 0.65 and scaled["f1"] > fixed["f1"], (fixed, scaled)


def test_cli_detect_picks_the_half_size_model_for_a_coarse_scan(unseen_crop, tmp_path: Path):
    import warnings

    io.write_image(tmp_path / "imgs" / "crop.png", unseen_crop[0][:128, :128])
    args = ["branches", "detect", str(tmp_path / "imgs"), "-o", str(tmp_path / "p.csv"), "--threads", "1"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(app, [*args, "--px-per-mm", "7.35"])
        assert result.exit_code == 0, result.output
        assert not [w for w in caught if "enlarged" in str(w.message)]  # the half-size model needs no enlarging
        result = CliRunner().invoke(app, [*args, "--px-per-mm", "7.35", "--model", str(br.DEFAULT_MODEL)])
        assert result.exit_code == 0, result.output
        assert [w for w in caught if "enlarged 2.0x" in str(w.message)]


def test_cli_detect_uses_the_shipped_model_by_default(unseen_crop, tmp_path: Path):
    io.write_image(tmp_path / "imgs" / "crop.png", unseen_crop[0][:256, :256])
    result = CliRunner().invoke(app, ["branches", "detect", str(tmp_path / "imgs"), "-o", str(tmp_path / "p.csv"),
                                      "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == ["image", "x", "y", "score"]



def test_a_uint8_scan_gives_the_points_of_its_float_conversion(unseen_crop):
    """A scan as read (uint8, converted and normalised tile by tile) predicts exactly what its float copy does."""
    scan = np.rint(unseen_crop[0][:320, :384] * 255).astype(np.uint8)
    detector = br.load_branch_model(br.DEFAULT_MODEL, tile=128, overlap=32)
    for px_per_mm in (None, 14.705882):  # a scale a hair off 1 keeps the size: the same path
        as_float = detector.predict(io.to_float(scan)[0], px_per_mm=px_per_mm)
        as_read = detector.predict(scan, px_per_mm=px_per_mm)
        assert np.array_equal(as_float.heat, as_read.heat) and np.array_equal(as_float.root, as_read.root)
    points = detector.detect(scan, fuse_junctions=True)
    assert len(points) and np.array_equal(points, detector.detect(io.to_float(scan)[0], fuse_junctions=True))
