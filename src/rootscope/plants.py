"""The plants of one class mask, as the ``measure`` stage finds them: classes -> seeds -> architecture ->
seedlings (:mod:`rootscope.architecture`, :mod:`rootscope.seedlings`), with the settings of
``[architecture]`` (:class:`rootscope.config.ArchitectureSettings`). The pipeline and the demo call this."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .architecture import ImageArchitecture, find_architecture
from .config import ArchitectureSettings
from .seedlings import REJECTED_COLUMNS, SeedlingRules, judge_plants


def seed_mask(mask: np.ndarray, classes: Mapping[str, int]) -> np.ndarray | None:
    """Where plants start: the ``seed`` class when the mask holds any, else the ``shoot`` class (a
    seedling's shoot sits on its seed), else None (plants then start at the top of their roots)."""
    for name in ("seed", "shoot"):
        if name in classes:
            found = mask == classes[name]
            if found.any():
                return found
    return None


def find_plants(mask: np.ndarray, classes: Mapping[str, int], opts: ArchitectureSettings, px_per_mm: float, *,
                support: np.ndarray | None = None, emerging: np.ndarray | None = None,
                name: str = "") -> tuple[ImageArchitecture, pd.DataFrame]:
    """Plants of a class mask (``classes``: name -> mask value, with ``root``) and the objects rejected as
    not seedlings (:data:`rootscope.seedlings.REJECTED_COLUMNS`; empty with ``opts.seedlings_only`` off).

    ``support`` / ``emerging``: branching points found by a detector (``K x 2`` (row, col), see
    :func:`rootscope.architecture.find_architecture`). Lengths in ``opts`` are mm, ``px_per_mm`` the scale.
    """
    arch = find_architecture(
        mask == classes["root"], seed_mask=seed_mask(mask, classes), min_area_px=opts.min_area_px,
        max_hole_px=opts.max_hole_px, bridge_px=opts.bridge_at(px_per_mm), spur_factor=opts.spur_factor,
        smooth_sigma=opts.smooth_sigma, min_plant_length_px=opts.min_plant_length_mm * px_per_mm,
        seed_radius_px=None if opts.seed_radius_mm is None else opts.seed_radius_mm * px_per_mm,
        seed_gap_px=opts.seed_gap_mm * px_per_mm, support=support, support_px=opts.branch_support_px,
        emerging=emerging, name=name)
    if not opts.seedlings_only:
        return arch, pd.DataFrame(columns=REJECTED_COLUMNS)
    return judge_plants(arch, px_per_mm, SeedlingRules(sown_in_a_row=opts.sown_in_a_row), image=name)
