"""Seedlings and the objects that are not (rootscope.seedlings, rootscope.plants) on small drawn masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rootscope.architecture import find_architecture
from rootscope.config import ArchitectureSettings
from rootscope.plants import find_plants, seed_mask
from rootscope.seedlings import SeedlingRules, judge_plants

PX_PER_MM = 5.0


def _root(mask: np.ndarray, col: int, top: int, bottom: int, value: int = 1, wave: float = 4.0) -> None:
    """A wavy root 3 px wide going down from ``top`` to ``bottom`` around ``col``."""
    rows = np.arange(top, bottom)
    cols = col + wave * np.sin(rows / 15.0)
    cv2.polylines(mask, [np.stack([cols, rows], 1).round().astype(np.int32)], False, value, 3)


def plate() -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """Three seedlings (seed blobs on row 20) and, with the (row, col) where each starts, the things that
    are not: a piece of seedling A's root below a gap, a horizontal stroke (handwriting), a fat blob and a
    root far below the sowing row."""
    mask = np.zeros((420, 320), np.uint8)
    for col in (40, 110, 180):
        _root(mask, col, 24, 190)
        cv2.circle(mask, (col, 20), 5, 2, -1)
    _root(mask, 40, 215, 265)  # a gap of 25 px (5 mm) below seedling A's root: a piece of it
    cv2.line(mask, (230, 90), (300, 96), 1, 3)  # handwriting: a stroke across
    cv2.ellipse(mask, (270, 200), (30, 14), 0, 0, 360, 1, -1)  # a fat blob
    _root(mask, 250, 300, 400)  # a root system far below the seeds
    return mask, {"piece": (215, 40), "stroke": (90, 230), "blob": (200, 270), "low": (300, 250)}


def _reasons(table) -> dict[str, str]:
    """Rejected object -> reason, named by the nearest drawn thing."""
    _, things = plate()
    out = {}
    for row in table.itertuples():
        name = min(things, key=lambda k: np.hypot(things[k][0] - row.y_px, things[k][1] - row.x_px))
        out[name] = row.reason
    return out


def test_seedlings_are_kept_and_each_other_object_is_rejected_with_its_reason():
    """Without seeds every root system long enough is an object; only the seedlings stay."""
    mask, _ = plate()
    arch = find_architecture(mask == 1, min_plant_length_px=20, bridge_px=0)
    assert len(arch.plants) == 7 and not any(p.seeded for p in arch.plants)
    judged, rejected = judge_plants(arch, PX_PER_MM, image="p")
    assert [round(p.seed[1]) for p in judged.plants] == [45, 115, 185] and [p.id for p in judged.plants] == [1, 2, 3]
    assert _reasons(rejected) == {"piece": "under another plant", "stroke": "not growing down",
                                  "blob": "not thin", "low": "off the sowing row"}
    assert set(rejected.image) == {"p"} and (rejected.length_mm > 0).all()
    assert judged.plants[0].total_length_px == arch.plants[0].total_length_px  # kept plants are unchanged
    assert any("4 object(s) rejected" in w for w in judged.warnings)
    judged, rejected = judge_plants(arch, PX_PER_MM, SeedlingRules(sown_in_a_row=False))
    assert len(judged.plants) == 5 and set(rejected.reason) == {"not growing down", "not thin"}


def test_beside_seedlings_a_root_piece_without_a_seed_is_a_piece_of_the_nearest():
    """With seeds, a root system at the seeds' level without one is a plant of its own for the architecture;
    within 3 mm of a seedling's root it is a piece of that seedling (its lateral, cut off by a gap)."""
    mask, _ = plate()
    _root(mask, 56, 40, 100, wave=1.0)  # beside seedling A's root, 12-14 px (2.6 mm) from it
    arch = find_architecture(mask == 1, seed_mask=mask == 2, min_plant_length_px=20, bridge_px=0)
    assert [p.seeded for p in arch.plants] == [True, True, True, False, False]  # the piece and the stroke
    judged, rejected = judge_plants(arch, PX_PER_MM)
    assert len(judged.plants) == 3 and list(rejected.reason) == ["piece of another plant", "not growing down"]
    assert rejected.x_px.iloc[0] == pytest.approx(56, abs=3)


def test_a_shoot_above_a_gap_gives_way_to_its_root_system():
    """The pale hypocotyl is missed: the shoot's own root piece is short and the root system below it is
    long. Without the seed gap the shoot and the root system are two objects (the shoot rejected); with
    it, the shoot takes the root system."""
    mask = np.zeros((300, 120), np.uint8)
    cv2.ellipse(mask, (60, 20), (14, 8), 0, 0, 360, 3, -1)  # a shoot
    _root(mask, 60, 28, 60)  # a bit of root under it
    _root(mask, 60, 70, 280)  # the root system, 10 px (2 mm at 5 px/mm) lower
    classes = {"root": 1, "shoot": 3}
    assert seed_mask(mask, classes).sum() == (mask == 3).sum()
    plain = ArchitectureSettings(seed_gap_mm=1.0, bridge_px=0, min_plant_length_mm=2.0, seedlings_only=False)
    arch, _ = find_plants(mask, classes, plain, PX_PER_MM)
    assert [p.seeded for p in arch.plants] == [True, False]  # the shoot with its bit, and the root system
    arch, _ = find_plants(mask, classes, plain.model_copy(update={"seed_gap_mm": 10.0}), PX_PER_MM)
    assert len(arch.plants) == 1 and arch.plants[0].seeded and arch.plants[0].total_length_px > 200
    # with the seedling rules, the root system is joined to the shoot across the gap even when it is wider
    arch, rejected = find_plants(mask, classes, plain.model_copy(update={"seedlings_only": True}), PX_PER_MM)
    assert len(arch.plants) == 1 and arch.plants[0].seeded and rejected.empty
    assert arch.plants[0].total_length_px > 200


@pytest.mark.parametrize("seedlings_only", [True, False])
def test_find_plants_rejects_only_when_asked(seedlings_only):
    mask, _ = plate()
    opts = ArchitectureSettings(bridge_px=0, min_plant_length_mm=4.0, seedlings_only=seedlings_only)
    arch, rejected = find_plants(mask, {"root": 1}, opts, PX_PER_MM)  # no seed class: plants start at tops
    assert (len(arch.plants), len(rejected)) == ((3, 3) if seedlings_only else (7, 0))  # the piece joined


def test_a_piece_cut_off_by_a_gap_is_joined_to_its_plant():
    """Seedling A's root has a 25 px (5 mm) gap: with seeds, the architecture leaves the piece below
    unassigned; without, it is a plant "under another plant", which find_plants joins back to A (a line
    of at most 5 mm), so A gets its whole length and nothing is rejected for it."""
    mask, _ = plate()
    opts = ArchitectureSettings(bridge_px=0, min_plant_length_mm=4.0)
    arch, rejected = find_plants(mask, {"root": 1}, opts, PX_PER_MM)
    assert "under another plant" not in set(rejected.reason) and len(arch.plants) == 3
    a = min(arch.plants, key=lambda p: p.seed[1])
    assert a.total_length_px > 168 + 50 + 20  # its root above the gap, the piece and the line between
    assert set(rejected.reason) == {"not growing down", "not thin", "off the sowing row"}


def test_a_root_system_below_a_shoot_without_root_is_joined_to_it():
    """The shoot has no root at all (so no plant of its own); the root system starts 35 px (3.5 mm at
    10 px/mm) below it, farther than the seed gap and the seed's own reach: the seedling rules join them
    (join_seeds), and the plant starts at the shoot, where the next scan's tracking will look for it."""
    mask = np.zeros((300, 120), np.uint8)
    cv2.ellipse(mask, (60, 20), (14, 8), 0, 0, 360, 3, -1)
    _root(mask, 60, 63, 280)
    opts = ArchitectureSettings(seed_gap_mm=1.0, bridge_px=0, min_plant_length_mm=2.0)
    arch, _ = find_plants(mask, {"root": 1, "shoot": 3}, opts.model_copy(update={"seedlings_only": False}), 10.0)
    assert len(arch.plants) == 1 and not arch.plants[0].seeded
    arch, rejected = find_plants(mask, {"root": 1, "shoot": 3}, opts, 10.0)
    assert len(arch.plants) == 1 and arch.plants[0].seeded and rejected.empty
    assert arch.plants[0].seed == pytest.approx([20, 60], abs=1.5)
