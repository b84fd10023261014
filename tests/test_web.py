"""The labelling page: strokes become full-size label PNGs, training from them segments a root with
known ground truth, bad requests get the file and the fix, scans are never written."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from rootscope import io
from rootscope.cli import main
from rootscope.errors import ConfigError
from rootscope.web.app import MAX_BODY, create_app
from rootscope.web.workspace import MAX_POINTS, Stroke, Workspace, class_overlay, paint


def plate(seed: int, shape=(240, 320)) -> tuple[np.ndarray, np.ndarray]:
    """A grey plate with noise and one bright curved root 5 px wide; returns (RGB image, root mask)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    mask = np.zeros(shape, np.uint8)
    rows = np.arange(20, h - 20)
    cols = (w / 2 + 40 * np.sin(rows / 50 + seed)).astype(np.int32)
    cv2.polylines(mask, [np.stack([cols, rows], 1).reshape(-1, 1, 2)], False, 1, 5)
    grey = 0.35 + 0.45 * cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8) + rng.normal(0, 0.04, shape)
    image = np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    return image, mask


@pytest.fixture
def folder(tmp_path):
    """An experiment: two plates of two scans each, classes background and root."""
    for p in (1, 2):
        for s in (0, 1):
            image, _ = plate(2 * p + s)
            io.write_image(tmp_path / "raw" / f"plate{p}" / f"scan{s}.png", image)
    (tmp_path / "rootscope.toml").write_text('classes = ["background", "root"]\n')
    return tmp_path


def root_strokes(seed: int) -> list[dict]:
    """Strokes a user would paint at preview scale 1: one along the root, three on the background."""
    _, mask = plate(seed)
    rows, cols = np.nonzero(mask)
    on = [[float(cols[rows == r].mean()), float(r)] for r in range(40, 200, 10)]
    off = [[[20, 30], [20, 200]], [[300, 30], [300, 200]], [[60, 225], [260, 225]]]
    return [{"points": on, "width": 2, "label": 2}] + [{"points": p, "width": 3, "label": 1} for p in off]


def test_a_stroke_is_drawn_at_full_size_without_blending(tmp_path):
    labels = np.zeros((300, 400), np.uint8)
    out = paint(labels, Stroke(np.array([[10, 20], [60, 20]]), width=4, label=2), scale=0.5)
    assert set(np.unique(out)) == {0, 2}  # no anti-aliased in-between values
    rows, cols = np.nonzero(out)
    assert cols.min() == pytest.approx(20, abs=4) and cols.max() == pytest.approx(120, abs=4)
    assert rows.min() >= 40 - 5 and rows.max() <= 40 + 5 and rows.max() - rows.min() + 1 == pytest.approx(8, abs=1)
    assert not labels.any()  # the input is left alone


def test_a_thin_label_survives_the_preview(tmp_path):
    labels = np.zeros((400, 400), np.uint8)
    labels[:, 100] = 2  # 1 px wide at full size, a quarter of a pixel in a 100 px preview
    picture = class_overlay(labels, [(0, 0, 255), (255, 0, 0)], (100, 100))
    assert (picture[:, 25, :3] == (255, 0, 0)).all() and (picture[:, 25, 3] == 255).all()
    assert picture[:, 60, 3].max() == 0


def test_strokes_become_the_label_png_the_cli_reads_and_can_be_undone(folder):
    raw = {p: p.read_bytes() for p in (folder / "raw").rglob("*.png")}
    client = TestClient(create_app(folder, preview_px=160))  # scans are 320 px wide: preview scale 0.5
    info = client.get("/api/info").json()
    assert [s["key"] for s in info["scans"]] == ["plate1/scan0", "plate1/scan1", "plate2/scan0", "plate2/scan1"]
    assert [c["name"] for c in info["classes"]] == ["background", "root"]
    answer = client.post("/api/scans/plate1/scan1/strokes", json={"points": [[10, 10], [50, 10]], "width": 2, "label": 2})
    assert answer.status_code == 200, answer.text
    labels = io.read_labels(folder / "labels" / "plate1" / "scan1.png")
    assert labels.shape == (240, 320) and answer.json()["labelled"]["root"] == int((labels == 2).sum()) > 0
    assert labels[20, 20:100].min() == 2 and labels[:10].max() == 0  # preview (10, 10) is full size (20, 20)
    client.post("/api/scans/plate1/scan1/strokes", json={"points": [[30, 10]], "width": 4, "label": 0})
    assert io.read_labels(folder / "labels" / "plate1" / "scan1.png")[20, 60] == 0  # erased
    assert client.post("/api/scans/plate1/scan1/undo", json={}).status_code == 200
    assert np.array_equal(io.read_labels(folder / "labels" / "plate1" / "scan1.png"), labels)
    client.post("/api/scans/plate1/scan1/undo", json={})
    assert not io.read_labels(folder / "labels" / "plate1" / "scan1.png").any()
    refused = client.post("/api/scans/plate1/scan1/undo", json={})
    assert refused.status_code == 400 and "nothing to undo" in refused.json()["detail"]
    picture = cv2.imdecode(np.frombuffer(client.get("/api/scans/plate1/scan1/image.jpg").content, np.uint8), 1)
    assert picture.shape == (120, 160, 3)
    assert {p: p.read_bytes() for p in (folder / "raw").rglob("*.png")} == raw  # scans never written


def test_bad_requests_name_the_problem(folder):
    client = TestClient(create_app(folder))
    bad_label = client.post("/api/scans/plate1/scan0/strokes", json={"points": [[1, 1]], "width": 3, "label": 5})
    assert bad_label.status_code == 400 and "background, root" in bad_label.json()["detail"]
    assert client.post("/api/scans/plate1/scan0/strokes", json={"points": [], "width": 3, "label": 1}).status_code == 422
    no_width = client.post("/api/scans/plate1/scan0/strokes", json={"points": [[1, 1]], "width": 0, "label": 1})
    assert no_width.status_code == 400 and "brush width" in no_width.json()["detail"]
    unknown = client.get("/api/scans/plate9/scan0/labels.png")
    assert unknown.status_code == 404 and "plate1/scan0" in unknown.json()["detail"]
    untrained = client.get("/api/scans/plate1/scan0/prediction.png")
    assert untrained.status_code == 400 and "Train" in untrained.json()["detail"]
    nothing = client.post("/api/train", json={})
    assert nothing.status_code == 400 and "nothing is labelled" in nothing.json()["detail"]
    client.post("/api/scans/plate1/scan0/strokes", json={"points": [[5, 5], [30, 5]], "width": 3, "label": 2})
    one_class = client.post("/api/train", json={})
    assert one_class.status_code == 400 and "background" in one_class.json()["detail"]
    wrong_size = folder / "labels" / "plate2" / "scan0.png"
    io.write_image(wrong_size, np.zeros((10, 10), np.uint8))
    clash = client.get("/api/scans/plate2/scan0/labels.png")
    assert clash.status_code == 400 and str(wrong_size) in clash.json()["detail"]


def test_training_from_strokes_segments_an_unlabelled_scan(folder):
    client = TestClient(create_app(folder, preview_px=400))  # preview = full size
    for stroke in root_strokes(2):  # plate1/scan0 is plate(2)
        assert client.post("/api/scans/plate1/scan0/strokes", json=stroke).status_code == 200
    answer = client.post("/api/train", json={})
    assert answer.status_code == 200, answer.text
    assert answer.json()["scans"] == ["plate1/scan0"] and (folder / "models" / "pixel.model").is_file()
    assert client.get("/api/info").json()["models"] == {"live": str(folder / "models" / "pixel.model")}
    space: Workspace = client.app.state.workspace
    mask, _, names = space.segmentation("plate2/scan1")  # a scan nobody painted: plate(5)
    found = mask == names.index("root") + 1
    truth = plate(5)[1] == 1
    assert 2 * (found & truth).sum() / (found.sum() + truth.sum()) > 0.85
    picture = cv2.imdecode(np.frombuffer(client.get("/api/scans/plate2/scan1/prediction.png").content, np.uint8),
                           cv2.IMREAD_UNCHANGED)
    assert picture.shape == (240, 320, 4) and ((picture[..., 3] > 0) == found).mean() > 0.99  # background clear
    unsure = cv2.imdecode(np.frombuffer(client.get("/api/scans/plate2/scan1/uncertainty.png").content, np.uint8),
                          cv2.IMREAD_UNCHANGED)
    assert unsure[..., 3][truth].mean() > unsure[..., 3][~truth].mean()  # doubt lies along the root, not the agar
    first = (folder / "models" / "pixel.model").read_bytes()
    client.post("/api/scans/plate2/scan1/strokes", json=root_strokes(5)[0])
    assert client.post("/api/train", json={}).json()["scans"] == ["plate1/scan0", "plate2/scan1"]
    assert (folder / "models" / "pixel.previous.model").read_bytes() == first  # the replaced model is kept


def test_review_shows_the_pipelines_rows_and_overlay_of_the_scan(folder):
    out = folder / "out"
    rows = [{"plate": "plate1", "scan": "scan1.png", "image": "scan1", "plant": k, "primary_length_mm": 10.0 + k}
            for k in (1, 2)] + [{"plate": "plate2", "scan": "scan1.png", "image": "scan1", "plant": 1,
                                 "primary_length_mm": 99.0}]
    io.write_table(out / "traits.csv", pd.DataFrame(rows))
    io.write_image(out / "plate1" / "overlays" / "scan1.png", np.zeros((8, 8, 3), np.uint8))
    client = TestClient(create_app(folder))
    answer = client.get("/api/scans/plate1/scan1/results").json()
    assert answer["overlay"] and [r["primary_length_mm"] for r in answer["rows"]] == [11.0, 12.0]
    assert client.get("/api/scans/plate1/scan1/overlay.png").status_code == 200
    assert client.get("/api/scans/plate2/scan1/results").json() == {"rows": [{**rows[2]}], "overlay": False}
    missing = client.get("/api/scans/plate2/scan1/overlay.png")
    assert missing.status_code == 404 and "rootscope run" in missing.json()["detail"]


def test_the_page_and_its_files_are_served(folder):
    client = TestClient(create_app(folder))
    page = client.get("/").text
    assert "<canvas id=\"ink\">" in page and "/static/app.js" in page
    assert "loadPicture" in client.get("/static/app.js").text
    assert client.get("/static/nothing.js").status_code == 404


def test_a_plain_folder_of_images_works_too_and_a_missing_one_is_named(tmp_path):
    io.write_image(tmp_path / "a.png", plate(0)[0])
    space = Workspace(tmp_path)
    assert list(space.scans) == ["a"] and space.label_path("a") == tmp_path / "labels" / "a.png"
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception, match="no scans found"):
        Workspace(empty)


def test_a_unet_from_the_config_can_be_shown_to_correct_it(tmp_path, one_torch_thread):
    from test_unet import TINY, segmentation_samples, toy_plate

    from rootscope.unet import SegmentationTask, TrainConfig, balanced_class_weights, load_segmenter, train

    samples = segmentation_samples(3)
    task = SegmentationTask(["background", "root"], balanced_class_weights(samples, 2))
    model = train(samples, task, tmp_path / "unet.pt", TrainConfig(epochs=8, lr=1e-2, **TINY)).best_path
    io.write_image(tmp_path / "raw" / "p1" / "a.png", toy_plate(7)[0])
    (tmp_path / "rootscope.toml").write_text(f'classes = ["background", "root"]\n[models]\nunet = "{model.name}"\n')
    client = TestClient(create_app(tmp_path))
    assert list(client.get("/api/info").json()["models"]) == ["unet"]
    picture = cv2.imdecode(np.frombuffer(client.get("/api/scans/p1/a/prediction.png?model=unet").content, np.uint8),
                           cv2.IMREAD_UNCHANGED)
    expected = load_segmenter(model).predict(io.read_image(tmp_path / "raw" / "p1" / "a.png")) == 2
    assert picture.shape == (128, 128, 4) and expected.any() and np.array_equal(picture[..., 3] > 0, expected)
    live = client.get("/api/scans/p1/a/prediction.png?model=live")
    assert live.status_code == 400 and "press Train" in live.json()["detail"]


def decode(response) -> np.ndarray:
    """A picture answer as RGB(A), in RGB order."""
    assert response.status_code == 200, response.text
    picture = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(picture, cv2.COLOR_BGRA2RGBA if picture.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def test_views_are_crops_of_the_full_size_scan_and_labels_zoomed_pixel_by_pixel(folder):
    client = TestClient(create_app(folder, preview_px=160))  # the whole scan is shown at half size
    space: Workspace = client.app.state.workspace
    for stroke in root_strokes(2):
        client.post("/api/scans/plate1/scan0/strokes", json={**stroke, "full_size": True})
    full = io.from_float(space.image("plate1/scan0"))
    labels = io.read_labels(folder / "labels" / "plate1" / "scan0.png")
    view = "x0=130&y0=30&x1=250&y1=110"  # 120 x 80 full-size pixels: 1:1 by default
    assert np.array_equal(space.preview("plate1/scan0", space.window("plate1/scan0", (130, 30, 250, 110))),
                          full[30:110, 130:250])
    jpeg = decode(client.get(f"/api/scans/plate1/scan0/image.jpg?{view}")).astype(int)
    error = [np.abs(jpeg - full[30 + d : 110 + d, 130:250]).mean() for d in (0, 1)]  # JPEG, quality 90
    assert jpeg.shape == (80, 120, 3) and error[0] < 4 and error[0] < error[1] / 2  # not one pixel off
    picture = decode(client.get(f"/api/scans/plate1/scan0/labels.png?{view}"))
    colours = np.array([(0, 0, 0), *space.colours])
    assert np.array_equal(picture[..., 3] > 0, labels[30:110, 130:250] > 0)
    assert np.array_equal(picture[..., :3], colours[labels[30:110, 130:250]])
    zoomed = decode(client.get("/api/scans/plate1/scan0/labels.png?x0=150&y0=40&x1=170&y1=55&px=160"))
    assert zoomed.shape == (120, 160, 4)  # 8 picture pixels per full-size pixel, each one a crisp block
    assert np.array_equal(zoomed, np.repeat(np.repeat(picture[10:25, 20:40], 8, axis=0), 8, axis=1))
    assert (zoomed[..., 3] > 0).any() and not (zoomed[..., 3] > 0).all()
    whole = decode(client.get("/api/scans/plate1/scan0/labels.png?x0=0&y0=0&x1=320&y1=240&px=80"))
    assert whole.shape == (60, 80, 4) and (whole[..., 3] > 0).sum() >= (labels[::4, ::4] > 0).sum()  # thin kept
    assert decode(client.get("/api/scans/plate1/scan0/image.jpg")).shape == (120, 160, 3)  # no view: as before


def test_a_one_pixel_stroke_at_high_zoom_lands_on_exactly_those_full_size_pixels(folder):
    client = TestClient(create_app(folder, preview_px=160))
    # At zoom 16 the page maps the cursor to fractional full-size pixels; the pixel under it is painted.
    line = {"points": [[100.2, 50.9], [104.5, 50.1], [110.97, 50.5]], "width": 1, "label": 2, "full_size": True}
    assert client.post("/api/scans/plate2/scan0/strokes", json=line).json()["labelled"]["root"] == 11
    labels = io.read_labels(folder / "labels" / "plate2" / "scan0.png")
    expected = np.zeros_like(labels)
    expected[50, 100:111] = 2
    assert np.array_equal(labels, expected)
    dot = {"points": [[7.99, 3.01]], "width": 1, "label": 1, "full_size": True}
    client.post("/api/scans/plate2/scan0/strokes", json=dot)
    expected[3, 7] = 1
    assert np.array_equal(io.read_labels(folder / "labels" / "plate2" / "scan0.png"), expected)
    brush = {"points": [[200.5, 100.5], [200.5, 120.5]], "width": 5, "label": 2, "full_size": True}
    client.post("/api/scans/plate2/scan0/strokes", json=brush)  # the brush width is in full-size pixels too
    painted = io.read_labels(folder / "labels" / "plate2" / "scan0.png")[90:130, 190:215] == 2
    assert painted.sum(axis=1).max() == 5 and np.flatnonzero(painted.any(axis=0)).tolist() == list(range(8, 13))


def test_a_view_of_a_prediction_equals_that_part_of_the_whole_scans(folder):
    client = TestClient(create_app(folder, preview_px=160))
    for stroke in root_strokes(2):
        client.post("/api/scans/plate1/scan0/strokes", json={**stroke, "full_size": True})
    assert client.post("/api/train", json={}).status_code == 200
    fresh = Workspace(folder, preview_px=160)  # nothing predicted yet: small views are predicted alone
    views = {(130, 90, 190, 150): None, (0, 0, 100, 80): None}  # inside (the halo on all sides) and at a corner
    for rect in views:
        views[rect] = fresh.segmentation("plate2/scan1", window=fresh.window("plate2/scan1", rect))
    assert not fresh._predictions  # the whole scan was not predicted for them
    mask, proba, names = fresh.segmentation("plate2/scan1")
    for (x0, y0, x1, y1), (view_mask, view_proba, view_names) in views.items():
        assert view_names == names and np.array_equal(view_mask, mask[y0:y1, x0:x1])
        np.testing.assert_allclose(view_proba, proba[:, y0:y1, x0:x1], atol=1e-6)
        assert np.unique(view_mask).size == 2 or (x0, y0) == (0, 0)  # the inner view holds root and background
    root = mask == names.index("root") + 1
    picture = decode(client.get("/api/scans/plate2/scan1/prediction.png?x0=130&y0=90&x1=190&y1=150&px=120"))
    assert np.array_equal(picture[..., 3] > 0, np.repeat(np.repeat(root[90:150, 130:190], 2, 0), 2, 1))
    doubt = (1 - proba.max(axis=0)) * 2
    unsure = decode(client.get("/api/scans/plate2/scan1/uncertainty.png?x0=130&y0=90&x1=190&y1=150"))
    assert np.abs(unsure[..., 3].astype(int) - np.clip(doubt[90:150, 130:190] * 255, 0, 255).astype(int)).max() <= 1
    cached = client.app.state.workspace
    cached.segmentation("plate2/scan1")  # once the whole scan is predicted, views are cut from it
    assert np.array_equal(cached.segmentation("plate2/scan1", window=cached.window("plate2/scan1", (0, 0, 100, 80)))[0],
                          mask[:80, :100])


def test_bad_views_name_the_scan_and_the_fix(folder):
    client = TestClient(create_app(folder, preview_px=160))  # scans are 320 x 240
    for what in ("image.jpg", "labels.png", "prediction.png", "uncertainty.png"):
        outside = client.get(f"/api/scans/plate1/scan0/{what}?x0=300&y0=0&x1=400&y1=50")
        assert outside.status_code == 400, what
        assert "plate1/scan0" in outside.json()["detail"] and "0 <= x0 < x1 <= 320" in outside.json()["detail"]
    for query in ("x0=10&y0=10&x1=10&y1=50", "x0=-5&y0=0&x1=20&y1=20", "x0=0&y0=100&x1=20&y1=90"):
        empty = client.get(f"/api/scans/plate1/scan0/labels.png?{query}")
        assert empty.status_code == 400 and "empty or outside" in empty.json()["detail"], query
    half = client.get("/api/scans/plate1/scan0/labels.png?x0=0&y0=0")
    assert half.status_code == 400 and "all four of x0, y0, x1, y1" in half.json()["detail"]
    large = client.get("/api/scans/plate1/scan0/labels.png?x0=0&y0=0&x1=20&y1=20&px=400")
    assert large.status_code == 400 and "at most 160 px" in large.json()["detail"]
    assert client.get("/api/scans/plate1/scan0/labels.png?x0=0&y0=0&x1=20&y1=20&px=0").status_code == 400
    assert client.get("/api/scans/plate1/scan0/labels.png?x0=a&y0=0&x1=20&y1=20").status_code == 422
    assert client.get("/api/scans/plate1/scan0/size").json() == {"width": 320, "height": 240}


def test_a_model_path_among_the_scans_or_labels_is_refused_when_the_page_opens(folder):
    def scans() -> dict:
        return {p: p.read_bytes() for p in (folder / "raw").rglob("*") if p.is_file()}

    raw = scans()
    for pixel in ("raw/plate1/scan0.png", "raw/plate1/new.model", "labels/plate1/scan0.png", "labels/pixel.model"):
        (folder / "rootscope.toml").write_text(f'classes = ["background", "root"]\n[models]\npixel = "{pixel}"\n')
        fix = r"\[models\] pixel = .*set \[models\] pixel to a file outside"
        with pytest.raises(ConfigError, match=fix) as refused:
            create_app(folder)
        assert str(folder / "rootscope.toml") in str(refused.value) and "\n" not in str(refused.value), pixel
        assert main(["serve", str(folder)]) == 2  # the command line prints it and stops
    assert scans() == raw  # nothing written among the scans
    io.write_image(folder / "flat" / "a.png", plate(0)[0])  # a plain folder of images: the scans lie in it
    (folder / "flat" / "rootscope.toml").write_text('[models]\npixel = "a.png"\n')
    with pytest.raises(ConfigError, match=r"\[models\] pixel"):
        Workspace(folder / "flat")
    (folder / "rootscope.toml").write_text('classes = ["background", "root"]\n[models]\npixel = "mine/pixel.model"\n')
    assert Workspace(folder).model_path == folder / "mine" / "pixel.model"  # anywhere else is fine


def test_other_hosts_and_origins_and_plain_posts_are_refused(folder):
    client = TestClient(create_app(folder))  # TestClient: the server listens as testserver, port 80
    for stroke in root_strokes(2):
        assert client.post("/api/scans/plate1/scan0/strokes", json=stroke).status_code == 200
    labels = (folder / "labels" / "plate1" / "scan0.png").read_bytes()
    rebound = client.get("/api/info", headers={"Host": "evil.example:8765"})  # DNS rebinding
    assert rebound.status_code == 403 and "evil.example:8765" in rebound.json()["detail"]
    assert "localhost:80" in rebound.json()["detail"]
    assert client.get("/api/info", headers={"Host": "localhost:8765"}).status_code == 403  # not our port
    assert client.get("/api/info", headers={"Host": "localhost"}).status_code == 200
    for origin in ("http://127.0.0.1:9999", "http://evil.example", "null"):
        other = client.post("/api/train", json={}, headers={"Origin": origin})
        assert other.status_code == 403 and origin in other.json()["detail"], origin
    # What fetch(..., {method: "POST", mode: "no-cors"}) of another site can send: no JSON content type.
    for url in ("/api/train", "/api/scans/plate1/scan0/undo"):
        for headers in ({}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}):
            plain = client.post(url, content=b"{}", headers=headers)
            assert plain.status_code == 415 and "application/json" in plain.json()["detail"], (url, headers)
    assert not (folder / "models").exists()  # nothing trained,
    assert (folder / "labels" / "plate1" / "scan0.png").read_bytes() == labels  # nothing undone
    own = client.post("/api/scans/plate1/scan0/undo", json={}, headers={"Origin": "http://testserver"})
    assert own.status_code == 200  # the page itself still may
    named = create_app(folder, hosts=["rootscope.lan:8000"])  # a name given at start replaces the defaults
    assert TestClient(named, base_url="http://rootscope.lan:8000").get("/api/info").status_code == 200
    assert TestClient(named).get("/api/info").status_code == 403


def test_every_answer_forbids_inline_script_and_the_page_inserts_no_html(folder):
    client = TestClient(create_app(folder))
    answers = [client.get("/"), client.get("/static/app.js"), client.get("/api/info"),
               client.get("/api/scans/plate9/x/size"), client.get("/", headers={"Host": "evil.example"}),
               client.post("/api/train", json={})]
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 403, 400]
    for answer in answers:
        policy = answer.headers["content-security-policy"]
        for rule in ("script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
            assert rule in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
    page = answers[0].text
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/static/app.js">']  # no inline script
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline handlers
    script = answers[1].text  # data goes in as text: the browser test shows it with a hostile plate name
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)


def test_request_bodies_and_strokes_are_bounded(folder):
    client = TestClient(create_app(folder, preview_px=160))  # scans are 320 x 240: preview scale 0.5
    url = "/api/scans/plate1/scan0/strokes"
    huge = json.dumps({"points": [[1.5, 2.5]] * 300_000, "width": 3, "label": 1}).encode()  # 3.6 MB
    assert len(huge) > MAX_BODY
    too_large = client.post(url, content=huge, headers={"Content-Type": "application/json"})
    assert too_large.status_code == 413 and f"{MAX_BODY} bytes" in too_large.json()["detail"]
    chunked = client.post(url, content=iter([huge[:100_000]] * 30), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413  # no Content-Length: counted while reading
    full = {"label": 1, "full_size": True}
    bad = {  # stroke, the bound its message states
        "1e300": ({"points": [[10, 10]], "width": 1e300, **full}, "at most 320 px"),
        "1e5, two points": ({"points": [[10, 10], [20, 20]], "width": 1e5, **full}, "at most 320 px"),
        "3e9, one point": ({"points": [[10, 10]], "width": 3e9, **full}, "at most 320 px"),
        "preview pixels": ({"points": [[10, 10]], "width": 161, "label": 1}, "at most 160 px"),
        "points": ({"points": [[1, 1]] * (MAX_POINTS + 1), "width": 3, "label": 1}, f"1 to {MAX_POINTS}"),
        "far": ({"points": [[1, 1e300]], "width": 3, **full}, "<= 3200 px"),
        "NaN": ({"points": [[1, float("nan")]], "width": 3, "label": 1}, "finite"),  # json.dumps writes NaN
    }
    for name, (stroke, bound) in bad.items():
        answer = client.post(url, content=json.dumps(stroke), headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and bound in answer.json()["detail"], (name, answer.text)
    assert not (folder / "labels").exists()
    widest = client.post(url, json={"points": [[0, 0], [319, 239]], "width": 320, "label": 1, "full_size": True})
    assert widest.status_code == 200 and widest.json()["labelled"]["background"] > 0.9 * 240 * 320
    longest = client.post(url, json={"points": [[k % 300, 5] for k in range(MAX_POINTS)], "width": 1, "label": 2,
                                     "full_size": True})
    assert longest.status_code == 200


def refuse_writes_under(monkeypatch, folder: Path) -> None:
    """Writes into ``folder`` fail as in a folder without write permission (tests run as root, where
    chmod does not stop writes): the temporary file that every output goes through is refused."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).is_relative_to(folder):
            raise PermissionError(13, "Permission denied", dir)
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(io.tempfile, "mkstemp", mkstemp)


def test_an_output_folder_that_cannot_be_written_is_named_not_a_500(folder, monkeypatch):
    client = TestClient(create_app(folder, preview_px=400))
    for stroke in root_strokes(2):
        assert client.post("/api/scans/plate1/scan0/strokes", json=stroke).status_code == 200
    labels = folder / "labels" / "plate1"
    before = (labels / "scan0.png").read_bytes()
    refuse_writes_under(monkeypatch, labels)
    stroke = client.post("/api/scans/plate1/scan0/strokes", json=root_strokes(2)[0])
    undo = client.post("/api/scans/plate1/scan0/undo", json={})
    for answer in (stroke, undo):
        detail = answer.json()["detail"]
        assert answer.status_code == 409 and str(labels) in detail and "Permission denied" in detail, answer.text
        assert "\n" not in detail
    assert (labels / "scan0.png").read_bytes() == before
    monkeypatch.undo()
    assert client.post("/api/scans/plate1/scan0/undo", json={}).status_code == 200  # the step was kept
    (folder / "models").write_text("")  # a real failure, also as root: a file where the model folder goes
    train = client.post("/api/train", json={})
    assert train.status_code == 409 and f"make {folder / 'models'} a folder you can write to" in train.json()["detail"]
    assert not (folder / "models" / "pixel.model").exists() and client.get("/api/info").json()["models"] == {}


def test_serve_allow_host_adds_a_name_the_page_may_be_opened_by(folder, monkeypatch):
    import uvicorn

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda web, host, port, **_: served.update(web=web, port=port))
    assert main(["serve", str(folder), "--port", "8765", "--allow-host", "mypc.local"]) == 0
    for name, status in (("mypc.local", 200), ("127.0.0.1", 200), ("localhost", 200), ("evil.example", 403)):
        client = TestClient(served["web"], base_url=f"http://{name}:8765")
        assert client.get("/api/info").status_code == status, name
    assert TestClient(served["web"], base_url="http://mypc.local:8000").get("/api/info").status_code == 403
