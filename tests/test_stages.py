"""Resumable stages: skip what is up to date, redo what changed, never leave a partial output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rootscope import io
from rootscope.stages import Stage, is_up_to_date, run_stage, why_stale

CALLS: list[str] = []


def threshold(inputs, outputs, level=0.5):
    """A pure stage: image -> binary mask (and its foreground count as JSON)."""
    CALLS.append(inputs["image"].name)
    mask = (io.read_image(inputs["image"]) > level).astype(np.uint8)
    io.write_image(outputs["mask"], mask)
    io.write_json(outputs["count"], {"foreground": int(mask.sum())})


def make_stage(folder: Path, name: str = "a", level: float = 0.5) -> Stage:
    return Stage(
        "threshold",
        lambda i, o: threshold(i, o, level),
        inputs={"image": folder / "raw" / f"{name}.png"},
        outputs={"mask": folder / "out" / f"{name}.png", "count": folder / "out" / f"{name}.json"},
        settings={"level": level},
    )


def write_scan(folder: Path, name: str = "a", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return io.write_image(folder / "raw" / f"{name}.png", rng.random((24, 32)).astype(np.float32))


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def test_second_run_skips(tmp_path):
    write_scan(tmp_path)
    first = run_stage(make_stage(tmp_path))
    second = run_stage(make_stage(tmp_path))
    assert (first.ran, first.reason) == (True, "no manifest")
    assert not second.ran and CALLS == ["a.png"]
    assert is_up_to_date(make_stage(tmp_path))


def test_changed_input_is_redone(tmp_path):
    write_scan(tmp_path, seed=0)
    run_stage(make_stage(tmp_path))
    before = io.read_labels(tmp_path / "out" / "a.png")
    write_scan(tmp_path, seed=1)
    outcome = run_stage(make_stage(tmp_path))
    assert outcome.ran and outcome.reason == "input 'image' changed"
    assert not np.array_equal(before, io.read_labels(tmp_path / "out" / "a.png"))


def test_touched_input_with_same_bytes_is_not_redone(tmp_path):
    scan = write_scan(tmp_path)
    run_stage(make_stage(tmp_path))
    os.utime(scan, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert not run_stage(make_stage(tmp_path)).ran
    assert CALLS == ["a.png"]


def test_changed_settings_are_redone(tmp_path):
    write_scan(tmp_path)
    run_stage(make_stage(tmp_path, level=0.5))
    assert why_stale(make_stage(tmp_path, level=0.8)) == "settings changed"
    run_stage(make_stage(tmp_path, level=0.8))
    assert io.read_json(tmp_path / "out" / "a.json")["foreground"] < 24 * 32 * 0.3


def test_deleted_or_edited_output_is_redone(tmp_path):
    write_scan(tmp_path)
    run_stage(make_stage(tmp_path))
    (tmp_path / "out" / "a.json").unlink()
    assert why_stale(make_stage(tmp_path)) == "output 'count' missing"
    run_stage(make_stage(tmp_path))
    (tmp_path / "out" / "a.json").write_text('{"foreground": -1}\n')
    assert why_stale(make_stage(tmp_path)) == "output 'count' changed"


def test_exception_mid_stage_leaves_no_partial_output(tmp_path):
    write_scan(tmp_path)

    def half_then_fail(inputs, outputs):
        io.write_image(outputs["mask"], np.ones((4, 4), np.uint8))
        raise RuntimeError("disk full")

    stage = make_stage(tmp_path)
    broken = Stage(stage.name, half_then_fail, stage.inputs, stage.outputs, stage.settings)
    with pytest.raises(RuntimeError, match="disk full"):
        run_stage(broken)
    assert list((tmp_path / "out").rglob("*.*")) == []
    assert run_stage(stage).ran
    assert io.read_json(tmp_path / "out" / "a.json")["foreground"] > 0


def test_exception_on_rerun_invalidates_the_old_outputs(tmp_path):
    write_scan(tmp_path)
    run_stage(make_stage(tmp_path))
    write_scan(tmp_path, seed=2)
    stage = make_stage(tmp_path)

    def fail(inputs, outputs):
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        run_stage(Stage(stage.name, fail, stage.inputs, stage.outputs, stage.settings))
    assert why_stale(stage) == "no manifest"  # the old outputs are never taken for new ones


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from rootscope import io
    from rootscope.stages import Stage, run_stage

    root, slow = Path(sys.argv[1]), sys.argv[2] == "slow"

    def blur(inputs, outputs):
        image = io.read_image(inputs["image"])
        out = (image + np.roll(image, 1, 0) + np.roll(image, 1, 1)) / 3
        io.write_image(outputs["smooth"], out[: len(out) // 2])  # half written ...
        (root / f"started-{inputs['image'].stem}").touch()
        if slow and inputs["image"].stem == "f3":
            time.sleep(60)                                          # ... killed here
        io.write_image(outputs["smooth"], out)

    ran = []
    with io.folder_lock(root / "out"):  # as the pipeline does: clean up only while no other run writes
        io.remove_temporaries(root / "out")
        for k in range(6):
            name = f"f{k}"
            stage = Stage("blur", blur, {"image": root / "raw" / f"{name}.png"},
                          {"smooth": root / "out" / f"{name}.png"})
            if run_stage(stage).ran:
                ran.append(name)
    print(",".join(ran))
    """
)


def test_killed_run_resumes_and_equals_an_uninterrupted_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for root in (killed, clean):
        for k in range(6):
            write_scan(root, f"f{k}", seed=k)

    proc = subprocess.Popen([sys.executable, str(script), str(killed), "slow"], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (killed / "started-f3").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the stage script did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    out = killed / "out"
    assert not (out / "f3.png").exists()  # the half-written frame never took its final name
    assert sorted(p.name for p in out.glob("f*.png")) == ["f0.png", "f1.png", "f2.png"]
    assert [p.name for p in out.iterdir() if p.name.startswith(".f3.")]  # its temporary was left behind
    assert (out / ".lock").exists()  # and its lock

    rerun = subprocess.run([sys.executable, str(script), str(killed), "fast"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == "f3,f4,f5"  # finished frames are not recomputed
    assert f"taking over the lock of process {proc.pid}" in rerun.stderr
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".manifests"]  # temporaries, lock gone

    subprocess.run([sys.executable, str(script), str(clean), "fast"], check=True, capture_output=True)
    for k in range(6):
        assert (out / f"f{k}.png").read_bytes() == (clean / "out" / f"f{k}.png").read_bytes()


def test_a_stage_never_deletes_a_temporary_that_another_run_may_be_writing(tmp_path):
    """Two runs of one experiment: one's stage must not remove the other's temporary of the same output
    (that was a FileNotFoundError in the other run); killed writers' temporaries are removed by the
    pipeline under its lock (``io.remove_temporaries``), not by a stage."""
    write_scan(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    in_flight = [out / ".a.x1.tmp.png", out / "..a.x1.tmp.y2.tmp.png", out / ".a.x3.tmp.json"]
    for path in in_flight:
        path.write_bytes(b"partial")
    assert run_stage(make_stage(tmp_path)).ran
    assert all(p.read_bytes() == b"partial" for p in in_flight)
