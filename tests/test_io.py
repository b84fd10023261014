"""Image I/O: formats and bit depths, exact conversion, scale and time tags, atomic writes, bad inputs."""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import tifffile

from rootscope import io
from rootscope.errors import InputError, OutputError, RootscopeError


def _pattern(shape: tuple[int, ...], top: int, dtype: type) -> np.ndarray:
    """Every value from 0 to ``top`` appears (ramp), plus a fixed random part: a strict test image."""
    rng = np.random.default_rng(7)
    values = rng.integers(0, top + 1, size=shape)
    flat = values.reshape(-1)
    flat[: min(flat.size, 256)] = np.linspace(0, top, min(flat.size, 256)).round()
    flat[0], flat[1] = 0, top
    return values.astype(dtype)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("channels", [None, 3, 4])
def test_lossless_formats_round_trip_every_depth_and_layout(tmp_path: Path, suffix: str, bit_depth: int,
                                                            channels: int | None) -> None:
    shape = (24, 40) if channels is None else (24, 40, channels)
    top = 255 if bit_depth == 8 else 65535
    array = _pattern(shape, top, np.uint8 if bit_depth == 8 else np.uint16)
    array[..., 0, 0] = top  # the first pixel is full scale in every channel
    path = io.write_image(tmp_path / f"scan{suffix}", array)
    scan = io.read_scan(path)
    assert scan.pixels.dtype == np.float32 and scan.pixels.shape == shape and scan.bit_depth == bit_depth
    assert scan.pixels.min() >= 0.0 and scan.pixels.max() == 1.0
    np.testing.assert_array_equal(scan.pixels, array.astype(np.float32) / np.float32(top))
    np.testing.assert_array_equal(io.from_float(scan.pixels, scan.bit_depth), array)  # written back as read


@pytest.mark.parametrize("channels", [None, 3])
def test_jpeg_reads_as_8_bit_close_to_what_was_written(tmp_path: Path, channels: int | None) -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (48, 1))
    image = ramp if channels is None else np.dstack([ramp, ramp[::-1], np.full_like(ramp, 0.5)])
    scan = io.read_scan(io.write_image(tmp_path / "scan.jpg", image))
    assert scan.bit_depth == 8 and scan.pixels.shape == image.shape
    assert np.abs(scan.pixels - image).mean() < 2.0 / 255


def test_jpeg_is_written_at_8_bits_from_16_bit_data(tmp_path: Path) -> None:
    scan = io.read_scan(io.write_image(tmp_path / "deep.jpg", np.full((16, 16), 30000, np.uint16)))
    assert abs(scan.pixels.mean() * 255 - 30000 / 257) < 1.0  # scaled, not clipped to white
    scan = io.read_scan(io.write_image(tmp_path / "float.jpg", np.full((16, 16), 0.25, np.float32), bit_depth=16))
    assert abs(scan.pixels.mean() - 0.25) < 1.0 / 255


def test_conversion_to_float_is_exact_and_refuses_other_types() -> None:
    pixels, depth = io.to_float(np.array([0, 1, 128, 255], np.uint8))
    assert depth == 8 and pixels.dtype == np.float32 and pixels[-1] == 1.0 and pixels[0] == 0.0
    assert pixels[2] == np.float32(128 / 255)
    pixels, depth = io.to_float(np.array([0, 257, 65535], np.uint16))
    assert depth == 16 and pixels.tolist() == [0.0, np.float32(257 / 65535), 1.0]
    assert io.to_float(np.array([True, False]))[0].tolist() == [1.0, 0.0]
    assert io.to_float(np.array([0.0, 0.5, 1.0]))[0].tolist() == [0.0, 0.5, 1.0]
    for bad in (np.array([1, 2], np.int32), np.array([-0.5, 2.0])):
        with pytest.raises(InputError, match="not supported"):
            io.to_float(bad, "odd.tif")
    assert io.from_float(np.array([0.0, 0.5, 1.0, 1.7]), 16).tolist() == [0, 32768, 65535, 65535]


def test_planar_tiff_becomes_channels_last(tmp_path: Path) -> None:
    planar = _pattern((3, 20, 30), 65535, np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    scan = io.read_scan(tmp_path / "planar.tif")
    assert scan.pixels.shape == (20, 30, 3)
    np.testing.assert_array_equal(io.from_float(scan.pixels, 16), np.moveaxis(planar, 0, -1))


def test_multi_page_tiff_gives_the_first_page_and_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.full((10, 12), 7, np.uint16))
    tifffile.imwrite(path, np.full((10, 12), 9, np.uint16), append=True)
    with pytest.warns(UserWarning, match="stack.tif: has 2 pages; using the first"):
        scan = io.read_scan(path)
    assert scan.pixels.shape == (10, 12) and np.all(io.from_float(scan.pixels, 16) == 7)


@pytest.mark.parametrize(("suffix", "tolerance"), [(".png", 1e-3), (".tif", 1e-6), (".jpg", 0.5 / 25.4)])
def test_pixel_scale_written_is_read_back(tmp_path: Path, suffix: str, tolerance: float) -> None:
    image = np.zeros((8, 8), np.uint8)
    tagged = io.read_scan(io.write_image(tmp_path / f"tagged{suffix}", image, px_per_mm=23.622))
    assert tagged.px_per_mm == pytest.approx(23.622, abs=tolerance)
    bare = io.read_scan(io.write_image(tmp_path / f"bare{suffix}", image))
    assert bare.px_per_mm is None  # never assumed
    assert io.resolve_px_per_mm(tagged, None) == tagged.px_per_mm
    assert io.resolve_px_per_mm(bare, 10.0) == 10.0  # the given value wins
    with pytest.raises(RootscopeError, match=f"bare{suffix}: no pixel scale"):
        io.resolve_px_per_mm(bare, None)
    with pytest.raises(RootscopeError, match="positive"):
        io.resolve_px_per_mm(tagged, -1.0)


def test_times_from_file_names_and_sorting() -> None:
    expected = datetime(2025, 10, 14, 3, 0)
    for name in ("plateA_2025-10-14_03h00.tif", "scan_20251014_030000.png", "plate1_2025-10-14T03-00.jpg"):
        assert io.parse_time(Path(name).stem) == expected, name
    assert io.parse_time("plate_2025-10-14") == datetime(2025, 10, 14)
    assert io.parse_time("plate_no_time") is None
    assert io.parse_time("plate_2025-13-40_03h00") is None  # not a date
    custom = [r"day(?P<day>\d+)_(?P<month>\d+)_(?P<year>\d{4})"]
    assert io.parse_time("p_day3_11_2025", custom) == datetime(2025, 11, 3)
    names = ["p_2025-10-14_12h00.png", "p_2025-10-14_03h00.png", "zzz.png", "aaa.png", "p_2025-10-13_23h59.png"]
    assert [p.name for p in io.sort_by_time(names)] == [
        "p_2025-10-13_23h59.png", "p_2025-10-14_03h00.png", "p_2025-10-14_12h00.png", "aaa.png", "zzz.png"]


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path) -> None:
    io.write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    io.write_image(tmp_path / "a.tif", np.zeros((4, 4), np.uint16))
    io.write_json(tmp_path / "a.json", {"x": np.float32(1.5), "v": np.arange(3)})
    io.write_table(tmp_path / "a.csv", pd.DataFrame({"plant": [1, 2]}))
    io.write_table(tmp_path / "a.parquet", pd.DataFrame({"plant": [1, 2]}))
    io.write_text(tmp_path / "a.txt", "root")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json", "a.parquet", "a.png", "a.tif", "a.txt"]
    assert io.read_json(tmp_path / "a.json") == {"x": 1.5, "v": [0, 1, 2]}
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_a_failed_write_leaves_the_target_untouched(tmp_path: Path) -> None:
    target = io.write_text(tmp_path / "result.csv", "old\n")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("killed mid-write")
    with pytest.raises(TypeError):
        io.write_json(tmp_path / "result.csv", {"bad": object()})

    class Broken:
        def to_csv(self, path: Path, index: bool) -> None:
            Path(path).write_text("partial")
            raise OSError("disk full")

    with pytest.raises(OSError):
        io.write_table(target, Broken())
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.csv"]


def test_outputs_never_overwrite_inputs(tmp_path: Path) -> None:
    scan = io.write_image(tmp_path / "scan.png", np.full((4, 4), 7, np.uint8))
    os.link(scan, tmp_path / "link.png")
    for spelling in (tmp_path / "x" / ".." / "scan.png", tmp_path / "link.png"):  # another name, a hard link
        with pytest.raises(OutputError, match="would overwrite the input .*scan.png"):
            with io.protect([scan], outputs=[spelling]):
                pass
    with io.protect([scan], outputs=[tmp_path / "out.png"]):
        io.write_image(tmp_path / "out.png", np.zeros((4, 4), np.uint8))
        with pytest.raises(OutputError, match="scan.png: would overwrite the input"):
            io.write_image(scan, np.zeros((4, 4), np.uint8))  # a write the command did not declare
        with pytest.raises(OutputError, match="link.png: would overwrite the input"):
            io.write_text(tmp_path / "link.png", "x")
    assert (io.read_labels(scan) == 7).all() and sorted(p.name for p in tmp_path.iterdir()) == [
        "link.png", "out.png", "scan.png"]
    io.write_image(scan, np.zeros((4, 4), np.uint8))  # the guard ends with its block
    with pytest.raises(OutputError, match="model.pt: an input inside the output folder"):
        with io.protect([tmp_path / "out" / "model.pt"], folders=[tmp_path / "out"]):
            pass


def test_an_unwritable_output_folder_is_one_error_naming_it(tmp_path: Path, monkeypatch) -> None:
    """As root, chmod does not stop a write: the system call that creates the file is made to fail as it
    would in a folder without write permission (EACCES) or on a read-only disk (EROFS)."""
    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if Path(dir).is_relative_to(tmp_path / "ro"):
            raise OSError(code, os.strerror(code), str(Path(dir) / ".a.tmp"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    for code in (errno.EACCES, errno.EROFS):
        with pytest.raises(OutputError, match=rf"^{re.escape(str(tmp_path / 'ro' / 'sub'))}: cannot write there .*chmod"):
            io.write_table(tmp_path / "ro" / "sub" / "t.csv", pd.DataFrame({"a": [1]}))
    io.write_text(tmp_path / "ok" / "t.txt", "fine")  # other folders are untouched by the patch


def test_temporaries_of_killed_writers_are_found_anywhere_and_nothing_else(tmp_path: Path) -> None:
    """The names atomic_path gives its temporaries, also those of a writer inside a stage writing
    atomically onto the stage's temporary (``..a.x1.tmp.y2.tmp.png``)."""
    left = [tmp_path / ".a.x1.tmp.png", tmp_path / "p" / "..a.x1.tmp.y2.tmp.png", tmp_path / "p" / "q" / ".t.z.tmp.csv"]
    kept = [tmp_path / "a.png", tmp_path / ".lock", tmp_path / "p" / ".manifests" / "seg.a.png.json", tmp_path / "tmp.csv"]
    for path in (*left, *kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    with io.atomic_path(tmp_path / "b.png") as tmp:
        assert tmp.parent == tmp_path and fnmatch.fnmatch(tmp.name, io.TEMP_PATTERN)
    assert io.remove_temporaries(tmp_path) == 3
    assert not any(p.exists() for p in left) and all(p.exists() for p in kept)


def test_one_process_at_a_time_holds_a_folder_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with io.folder_lock(out) as lock:
        holder = json.loads(lock.read_text())
        assert lock == out / ".lock" and holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OutputError, match=rf"out/.lock: another rootscope run .*process {os.getpid()} on "):
            with io.folder_lock(out):
                pass
        assert lock.exists()  # the refused one did not release it
    assert not lock.exists()
    with pytest.raises(RuntimeError):
        with io.folder_lock(out):
            raise RuntimeError("the run failed")
    assert not lock.exists()  # released on error too


def test_a_lock_left_by_a_dead_process_is_taken_over_and_others_are_refused(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / ".lock"
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "2025-01-01T00:00:00"}))
    notes: list[str] = []
    with io.folder_lock(tmp_path, notify=notes.append):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert notes == [f"{lock}: taking over the lock of process {dead.pid} on {socket.gethostname()}, since "
                     "2025-01-01T00:00:00, which has ended."]
    for holder, message in [({"pid": dead.pid, "host": "another-host"}, f"process {dead.pid} on another-host"),
                            (None, "a process unknown: the file cannot be read")]:
        lock.write_text("" if holder is None else json.dumps(holder))  # another host's pids cannot be checked
        with pytest.raises(OutputError, match=re.escape(message)):
            with io.folder_lock(tmp_path):
                pass
        assert lock.exists()


RACER = """
import json, sys, time, warnings
from pathlib import Path
from rootscope import io
from rootscope.errors import OutputError
folder, go = Path(sys.argv[1]), Path(sys.argv[2])
deadline = time.time() + 60  # a test that failed before the start must not leave racers behind
while not go.exists():
    if time.time() > deadline:
        sys.exit("no start")
    time.sleep(0.002)
warnings.simplefilter("ignore")
try:
    with io.folder_lock(folder):
        start = time.time()
        time.sleep(0.3)
        print(json.dumps([start, time.time()]))
except OutputError:
    print("refused")
"""


def test_processes_racing_for_a_stale_lock_never_hold_it_together(tmp_path: Path) -> None:
    """Eight processes find the same lock of a dead process at once: the holds never overlap in time."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "x"}))
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(go)], stdout=subprocess.PIPE,
                               text=True) for _ in range(8)]
    try:
        time.sleep(1.5)  # let every racer import rootscope and wait for the start
        go.touch()
        said = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
    holds = sorted(json.loads(line) for line in said if line != "refused")
    assert holds and len(holds) + said.count("refused") == 8
    assert all(later[0] >= earlier[1] for earlier, later in zip(holds, holds[1:])), holds
    assert not (tmp_path / ".lock").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["go"]


def _bad_file(folder: Path, kind: str) -> Path:
    good = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3)).astype(np.uint8)
    if kind == "missing":
        return folder / "missing.png"
    if kind == "zero-byte":
        (folder / "zero.png").write_bytes(b"")
        return folder / "zero.png"
    if kind in ("truncated-png", "truncated-jpeg"):
        full = io.write_image(folder / ("full.png" if kind == "truncated-png" else "full.jpg"), good)
        cut = folder / f"cut{full.suffix}"
        cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        full.unlink()
        return cut
    if kind == "unsupported":
        (folder / "scan.bmp").write_bytes(b"BM" + bytes(60))
        return folder / "scan.bmp"
    if kind == "text-png":
        (folder / "notes.png").write_text("this is a text file, not a PNG")
        return folder / "notes.png"
    if kind == "text-tif":
        (folder / "notes.tif").write_text("this is a text file, not a TIFF")
        return folder / "notes.tif"
    (folder / "sub.png").mkdir()
    return folder / "sub.png"


@pytest.mark.parametrize(
    "kind", ["missing", "zero-byte", "truncated-png", "truncated-jpeg", "unsupported", "text-png", "text-tif", "folder"]
)
def test_bad_inputs_raise_input_error_naming_the_file_and_write_nothing(tmp_path: Path, kind: str) -> None:
    path = _bad_file(tmp_path, kind)
    before = sorted(tmp_path.iterdir())
    for reader in (io.read_scan, io.read_labels):
        with pytest.raises(InputError) as info:
            reader(path)
        assert path.name in str(info.value)
    assert sorted(tmp_path.iterdir()) == before


def test_labels_are_read_as_class_indices(tmp_path: Path) -> None:
    labels = np.zeros((10, 10), np.uint8)
    labels[2:5, 3:7] = 2
    np.testing.assert_array_equal(io.read_labels(io.write_image(tmp_path / "l.png", labels)), labels)
    np.testing.assert_array_equal(io.read_labels(io.write_image(tmp_path / "g.png", np.dstack([labels] * 3))), labels)
    colour = np.dstack([labels, labels * 0, labels])
    with pytest.raises(InputError, match="c.png: label image has colours"):
        io.read_labels(io.write_image(tmp_path / "c.png", colour))


def test_folders_expand_to_their_images(tmp_path: Path) -> None:
    for name in ("b.png", "a.tif", "c.JPG", "b_mask.png"):
        io.write_image(tmp_path / name, np.zeros((4, 4), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in io.expand_inputs([tmp_path])] == ["a.tif", "b.png", "b_mask.png", "c.JPG"]
    assert [p.name for p in io.expand_inputs([tmp_path], skip=["*_mask.png"])] == ["a.tif", "b.png", "c.JPG"]
    assert [p.name for p in io.expand_inputs([tmp_path / "b_mask.png"], skip=["*_mask.png"])] == ["b_mask.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: folder holds no"):
        io.expand_inputs([tmp_path / "empty"])
    with pytest.raises(InputError, match="not valid JSON"):
        io.read_json(io.write_text(tmp_path / "bad.json", "{"))


def test_a_mask_names_its_classes_in_the_json_beside_it(tmp_path: Path) -> None:
    mask = io.write_image(tmp_path / "a_mask.png", np.ones((4, 4), np.uint8))
    assert io.read_mask_classes(mask) is None
    io.write_json(io.mask_sidecar(mask), {"classes": ["background", "root"], "model": "m.model"})
    assert io.mask_sidecar(mask) == tmp_path / "a_mask.json" and io.read_mask_classes(mask) == ["background", "root"]
    io.write_json(io.mask_sidecar(mask), ["background", "root"])
    with pytest.raises(InputError, match='a_mask.json: expected {"classes"'):
        io.read_mask_classes(mask)


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (40, 1)])
def test_a_mask_of_one_pixel_row_or_column_is_refused(tmp_path: Path, shape: tuple[int, int]) -> None:
    path = tmp_path / "tiny.png"
    path.write_bytes(cv2.imencode(".png", np.ones(shape, np.uint8))[1].tobytes())
    with pytest.raises(InputError, match=rf"tiny.png: label image or mask is {shape[0]} x {shape[1]} px"):
        io.read_labels(path)


def test_real_jpegs_load_and_the_broken_scan_is_named(shared_data: Path) -> None:
    files = sorted(p for p in shared_data.rglob("*.jpg") if p.name != "Photo_invalid.jpg")
    assert len(files) >= 100
    for path in files[::-1]:
        scan = io.read_scan(path)
        assert scan.pixels.ndim == 3 and scan.pixels.shape[2] == 3 and scan.bit_depth == 8, path
        assert 0.0 <= scan.pixels.min() < scan.pixels.max() <= 1.0, path
    photo = io.read_scan(shared_data / "rhizoscan-arabidopsis/J10/Photo_001.jpg")
    assert photo.pixels.shape == (2848, 4288, 3) and photo.time == datetime(2013, 4, 18, 8, 13, 43)  # EXIF
    broken = shared_data / "rhizoscan-arabidopsis/J10/Photo_invalid.jpg"
    with pytest.raises(InputError, match="Photo_invalid.jpg: cannot be read as an image"):
        io.read_scan(broken)


@pytest.mark.parametrize("dpi", [72.0, 96.0])
def test_placeholder_dpi_is_not_taken_as_a_scale(tmp_path: Path, dpi: float) -> None:
    path = io.write_image(tmp_path / "scan.png", np.zeros((8, 8), np.uint8), px_per_mm=dpi / io.MM_PER_INCH)
    scan = io.read_scan(path)
    assert scan.px_per_mm is None
    with pytest.raises(RootscopeError, match="--px-per-mm"):
        io.resolve_px_per_mm(scan, None)
    assert io.resolve_px_per_mm(scan, 23.6) == 23.6


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_images_over_the_pixel_limit_are_one_input_error_naming_file_size_and_fix(
        tmp_path: Path, suffix: str, monkeypatch) -> None:
    path = io.write_image(tmp_path / f"tray{suffix}", np.full((10, 30, 3), 0.5, np.float32))
    assert io.image_size(path) == (30, 10) and io.read_scan(path).pixels.shape == (10, 30, 3)
    monkeypatch.setattr(io, "MAX_PIXELS", 299)  # the decoders' limit, set low: a 30 x 10 scan is "too large"
    for reader in (io.read_scan, io.read_labels, io.image_size):
        with pytest.raises(InputError) as info:
            reader(path)
        message = str(info.value)
        assert message.startswith(f"{path}: 30 x 10 px") and "MAX_PIXELS" in message and "crop" in message
        assert "\n" not in message


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_scans_past_pils_bomb_limit_read_and_keep_their_uint8(tmp_path: Path, suffix: str) -> None:
    """182 Mpx grey (13500 x 13500, over twice PIL's 89 Mpx default) reads; PIL used to refuse it."""
    side = 13500
    path = tmp_path / f"big{suffix}"
    if suffix == ".tif":
        big = tifffile.memmap(path, shape=(side, side), dtype=np.uint8, photometric="minisblack")
        big[::100, ::100] = 200
        big.flush()
        del big
    else:
        big = np.zeros((side, side), np.uint8)
        big[::100, ::100] = 200
        cv2.imwrite(str(path), big, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        del big
    assert io.MAX_PIXELS >= 20000 * 20000
    scan = io.read_scan(path, convert=False)
    assert scan.pixels.shape == (side, side) and scan.pixels.dtype == np.uint8 and scan.bit_depth == 8
    assert scan.pixels[100, 200] == 200 and scan.pixels[101, 200] == 0 and int(scan.pixels[:200, :200].sum()) == 4 * 200
    assert isinstance(scan.pixels, np.memmap) == (suffix == ".tif")  # uncompressed TIFF: mapped, not read


def test_uncompressed_tiffs_are_memory_mapped_and_others_read_alike(tmp_path: Path) -> None:
    image = _pattern((40, 50, 3), 65535, np.uint16)
    for name, kwargs in {"plain": {}, "zlib": {"compression": "zlib"}, "big-endian": {"byteorder": ">"}}.items():
        tifffile.imwrite(tmp_path / f"{name}.tif", image, photometric="rgb", **kwargs)
        raw = io.read_scan(tmp_path / f"{name}.tif", convert=False)
        assert raw.pixels.dtype == np.uint16 and raw.bit_depth == 16, name
        np.testing.assert_array_equal(raw.pixels, image)
        assert isinstance(raw.pixels, np.memmap) == (name == "plain"), name
        if name == "plain":
            assert not raw.pixels.flags.writeable  # the input is never written through the map
        np.testing.assert_array_equal(io.read_scan(tmp_path / f"{name}.tif").pixels, io.to_float(image)[0])
