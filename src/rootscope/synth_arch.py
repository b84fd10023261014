"""Root system architecture for synthetic plates: seedlings whose roots grow over time.

Everything here lives in the *canonical plate frame* (frame 0), in pixels, with ``x`` to the right
and ``y`` downwards. Each root is a full path sampled every 1 px (consecutive points exactly 1 px
apart, so arc length = index) grown up to a time horizon; at time ``t`` the visible root is the
prefix of length ``rate * (t - emergence)``. A lateral starts exactly on a sample of its parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter


@dataclass
class RootPath:
    """One root of a seedling in the canonical frame.

    ``path`` is ``N x 2`` (x, y) px, 1 px apart; ``insert_index`` is the sample of the parent's path
    where it starts (-1 for the primary); ``rate`` is growth in px/h; ``radius`` in px.
    """

    plant: int
    root: int
    parent: int
    order: int
    path: np.ndarray
    insert_index: int
    emergence_h: float
    rate: float
    radius: float

    @property
    def full_length(self) -> float:
        return float(len(self.path) - 1)

    def length_at(self, time_h: float) -> float:
        """Visible length (px) at ``time_h`` hours after sowing."""
        return float(np.clip(self.rate * (time_h - self.emergence_h), 0.0, self.full_length))

    def prefix(self, length: float) -> np.ndarray:
        """The first ``length`` px of the path as points 1 px apart, ending exactly at ``length``."""
        whole = int(np.floor(length))
        points = self.path[: whole + 1]
        rest = length - whole
        if rest > 1e-9 and whole + 1 < len(self.path):
            end = self.path[whole] + rest * (self.path[whole + 1] - self.path[whole])
            points = np.vstack([points, end])
        return points


@dataclass
class Seedling:
    """A germinated seed: seed coat, shoot (hypocotyl + two cotyledons) and its roots.

    ``seed`` is the seed centre (x, y) px, where the primary root starts; ``seed_axes`` are the
    ellipse half-axes (px) and ``seed_angle`` its orientation (degrees); ``shoot_dir`` is the angle
    of the hypocotyl from straight up (radians); sizes of the shoot are in px at full size;
    ``hairiness`` (0-1) scales the root hairs and ``vigor`` all growth rates (some seedlings lag).
    """

    plant: int
    seed: np.ndarray
    seed_axes: tuple[float, float]
    seed_angle: float
    germination_h: float
    shoot_dir: float
    hypocotyl_px: float
    cotyledon_px: float
    hairiness: float
    vigor: float
    roots: list[RootPath] = field(default_factory=list)


@dataclass(frozen=True)
class Region:
    """Where roots may grow: an axis-aligned box in canonical px (x0, y0, x1, y1)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def first_outside(self, path: np.ndarray) -> int:
        """Index of the first point outside the box (len(path) when all are inside)."""
        out = (path[:, 0] < self.x0) | (path[:, 0] > self.x1) | (path[:, 1] < self.y0) | (path[:, 1] > self.y1)
        hits = np.flatnonzero(out)
        return int(hits[0]) if len(hits) else len(path)


def walk(
    rng: np.random.Generator,
    start: np.ndarray,
    angle0: float,
    setpoint: np.ndarray | float,
    n_steps: int,
    pull_px: float,
    noise: float,
    wave_amp: float,
    wave_px: float,
) -> np.ndarray:
    """Grow a path of ``n_steps`` 1-px steps from ``start``; returns ``(n_steps + 1) x 2`` (x, y).

    Angles are from straight down (radians, positive towards +x). The angle relaxes towards
    ``setpoint`` (scalar or per step) over ``pull_px`` px (gravitropism) and takes a random walk
    (``noise`` rad per sqrt(px)) plus a sinusoidal curvature (``wave_amp`` rad/px, wavelength
    ``wave_px``) that makes the waviness of roots on agar.
    """
    k = 1.0 / max(pull_px, 1.0)
    s = np.arange(n_steps, dtype=np.float64)
    phase = rng.uniform(0, 2 * np.pi)
    drive = noise * rng.standard_normal(n_steps) + wave_amp * np.sin(2 * np.pi * s / wave_px + phase)
    setpoint = np.broadcast_to(np.asarray(setpoint, dtype=np.float64), (n_steps,))
    # x[i+1] = (1 - k) x[i] + k * setpoint[i] + drive[i], with x[0] = angle0
    excitation = k * setpoint + drive
    angles, _ = lfilter([1.0], [1.0, -(1.0 - k)], excitation, zi=[(1.0 - k) * angle0])
    angles = np.clip(np.concatenate([[angle0], angles[:-1]]), -1.75, 1.75)
    steps = np.column_stack([np.sin(angles), np.cos(angles)])
    return np.vstack([start, start + np.cumsum(steps, axis=0)])


def grow_seedlings(
    rng: np.random.Generator,
    seeds: np.ndarray,
    region: Region,
    px_per_mm: float,
    horizon_h: float,
    crossers: set[int],
    radii_mm: tuple[float, float, float],
    min_radius_px: float,
    max_radius_px: float,
) -> list[Seedling]:
    """Grow one seedling per seed position (canonical px) up to ``horizon_h`` hours after sowing.

    Plants listed in ``crossers`` get one long, shallow lateral aimed at a neighbour so that roots
    of different plants cross. ``radii_mm`` are root radii of orders 1, 2, 3 (clipped to
    ``[min_radius_px, max_radius_px]``).
    """
    mm = px_per_mm
    centre_x = 0.5 * (region.x0 + region.x1)
    seedlings = []
    for plant, seed in enumerate(seeds, start=1):
        germ = rng.uniform(24.0, 40.0)
        seedling = Seedling(
            plant=plant,
            seed=seed,
            seed_axes=(rng.uniform(0.28, 0.34) * mm, rng.uniform(0.17, 0.21) * mm),
            seed_angle=rng.uniform(0, 180),
            germination_h=germ,
            shoot_dir=rng.normal(0.0, 0.25),
            hypocotyl_px=rng.uniform(1.5, 3.0) * mm,
            cotyledon_px=rng.uniform(0.9, 1.4) * mm,
            hairiness=rng.uniform(0.2, 1.0),
            vigor=float(rng.choice([1.0, 0.6], p=[0.8, 0.2])),
        )
        radius = [float(np.clip(r * mm * rng.uniform(0.85, 1.15), min_radius_px, max_radius_px)) for r in radii_mm]
        rate = rng.uniform(0.22, 0.38) * mm * seedling.vigor
        n = int(rate * (horizon_h - germ))
        path = walk(rng, seed, rng.normal(0, 0.15), 0.0, n, 6 * mm, 0.03 * np.sqrt(15 / mm), 0.012 * 15 / mm, 4.5 * mm)
        primary = RootPath(plant, 0, -1, 1, path[: region.first_outside(path)], -1, germ, rate, radius[0])
        seedling.roots.append(primary)
        toward = 1.0 if seed[0] < centre_x else -1.0
        _add_laterals(rng, seedling, primary, region, mm, horizon_h, radius, crossing=plant in crossers,
                      toward=toward)
        seedlings.append(seedling)
    return seedlings


def _add_laterals(
    rng: np.random.Generator,
    seedling: Seedling,
    parent: RootPath,
    region: Region,
    mm: float,
    horizon_h: float,
    radius: list[float],
    crossing: bool = False,
    toward: float = 1.0,
) -> None:
    """Laterals along ``parent`` (acropetal: nearer the base emerges earlier), recursively to order 3."""
    order = parent.order + 1
    if order > 3:
        return
    spacing = (4.0 if order == 2 else 4.5) * mm
    s = rng.uniform(3.0, 7.0) * mm if order == 2 else rng.uniform(2.0, 4.0) * mm
    side = rng.choice([-1.0, 1.0])
    first = True
    while s < parent.full_length - 4 * mm:
        index = int(s)
        passed = parent.emergence_h + index / parent.rate
        delay = rng.uniform(60.0, 100.0) if order == 2 else rng.uniform(30.0, 60.0)
        emergence = passed + delay
        cross = crossing and first
        if cross:
            emergence = passed + rng.uniform(20.0, 30.0)
            side = toward
        if emergence < horizon_h - 2.0:
            rate = (rng.uniform(0.30, 0.38) if cross else rng.uniform(0.08, 0.22) / (order - 1) * seedling.vigor) * mm
            n = int(rate * (horizon_h - emergence))
            tangent = parent.path[min(index + 3, len(parent.path) - 1)] - parent.path[max(index - 3, 0)]
            parent_angle = np.arctan2(tangent[0], tangent[1])
            insertion = np.deg2rad(rng.uniform(75.0, 80.0) if cross else rng.uniform(35.0, 80.0))
            angle0 = parent_angle + side * insertion
            gsa = np.deg2rad(rng.uniform(50.0, 58.0) if cross else rng.uniform(25.0, 55.0))
            steps = np.arange(max(n, 1), dtype=np.float64)
            setpoint = side * gsa * (1.0 - 0.5 * steps / (steps + 25 * mm))
            pull = (12.0 if cross else rng.uniform(4.0, 10.0)) * mm
            path = walk(rng, parent.path[index], angle0, setpoint, n, pull, 0.025 * np.sqrt(15 / mm), 0.008 * 15 / mm, 3.5 * mm)
            path = path[: region.first_outside(path)]
            if len(path) > 3:
                child = RootPath(seedling.plant, len(seedling.roots), parent.root, order, path, index,
                                 float(emergence), float(rate), radius[order - 1])
                seedling.roots.append(child)
                if order == 2 and child.full_length > 10 * mm:
                    _add_laterals(rng, seedling, child, region, mm, horizon_h, radius)
        first = False
        side = -side if rng.random() < 0.75 else side
        s += spacing * rng.uniform(0.5, 1.6)
