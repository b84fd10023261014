"""Which plants of an architecture are seedlings: the rest (letters, label edges, specks, pieces of root cut
off by a gap in the mask) are rejected, each with its reason.

A seedling on a plate grows down from its seed, and the seeds of a plate are sown in a row. Rules, in the
order they are checked (the first that fails names the reason):

1. ``"no root"``: the plant has no root.
2. ``"not thin"``: its root length is under ``min_slenderness`` times the primary root's median diameter
   (a blob, bubble or speck, not a root).
3. ``"not growing down"``: the primary root descends less than ``min_downward`` of its length (base to tip,
   rows down): handwriting, the rim, the edges of a label run every way; roots follow gravity.
4. Where some plants start at a seed or shoot (``seeded``) and another does not but its top lies within
   ``piece_mm`` of a seeded plant's roots or seed, the shorter of the two is rejected: the unseeded one
   as ``"piece of another plant"`` (a piece of its root that a gap in the mask cut off), the seeded one
   as ``"seed or shoot above a longer root system"`` (the gap lies between the shoot and its root).
5. With ``sown_in_a_row`` (the usual plate):

   - ``"under another plant"``: the plant, not seeded, starts more than ``stack_mm`` below the top of
     another plant, within the columns that plant's roots span (1 mm either side): a piece of that
     plant's root that a gap in the mask cut off, not a seedling of its own (seedlings stand side by
     side, not stacked);
   - ``"off the sowing row"``: it starts more than ``row_tolerance_mm`` above or below the sowing row,
     the median top of the plate's main plants (those at least a quarter as long as the longest).

Everything here is in the mask's pixels except the ``*_mm`` settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .architecture import ImageArchitecture, PlantArchitecture

REJECTED_COLUMNS = ["image", "object", "x_px", "y_px", "length_mm", "reason", "piece_of"]


@dataclass(frozen=True)
class SeedlingRules:
    """The rules of :func:`judge_plants` (see the module docstring); lengths in mm."""

    min_slenderness: float = 8.0
    min_downward: float = 0.4
    sown_in_a_row: bool = True
    stack_mm: float = 1.5
    row_tolerance_mm: float = 10.0
    piece_mm: float = 3.0


def _descent(plant: PlantArchitecture) -> float:
    """Net descent of the primary root (rows, base to tip) over its length; 0 without a primary."""
    if plant.primary is None:
        return 0.0
    root = plant.roots[plant.primary]
    return float((root.points[-1, 0] - root.points[0, 0]) / max(root.length_px, 1e-9))


def _slenderness(plant: PlantArchitecture) -> float:
    """Root length of the plant over the primary root's median diameter."""
    root = plant.roots[plant.primary if plant.primary is not None else 0]
    return plant.total_length_px / max(float(np.median(root.diameter)) if len(root.diameter) else 1.0, 1.0)


def _top(plant: PlantArchitecture) -> float:
    """The highest row of a plant: its seed's, or its roots' where they reach higher."""
    return float(min([plant.seed[0], *(r.points[:, 0].min() for r in plant.roots)]))


def _shape_reason(plant: PlantArchitecture, rules: SeedlingRules) -> str | None:
    if not plant.roots:
        return "no root"
    if _slenderness(plant) < rules.min_slenderness:
        return "not thin"
    if _descent(plant) < rules.min_downward:
        return "not growing down"
    return None


Verdict = tuple[str, int | None] | None  # (reason, index of the plant it is a piece of), or None: kept


def _piece_reasons(plants: list[PlantArchitecture], px_per_mm: float, rules: SeedlingRules) -> list[Verdict]:
    """Rule 4 for plants that passed the shape rules: of a seeded and an unseeded plant within ``piece_mm``
    (the unseeded one's top to the seeded one's seed or roots), the shorter one is a piece of the other."""
    reasons: list[Verdict] = [None] * len(plants)
    seeded = [i for i, p in enumerate(plants) if p.seeded]
    if not seeded or len(seeded) == len(plants):
        return reasons
    owner = np.concatenate([[i] * (1 + sum(len(r.points) for r in plants[i].roots)) for i in seeded])
    tree = cKDTree(np.vstack([np.vstack([plants[i].seed[None], *(r.points for r in plants[i].roots)]) for i in seeded]))
    for i, plant in enumerate(plants):
        if plant.seeded:
            continue
        gap, k = tree.query(plant.seed, distance_upper_bound=rules.piece_mm * px_per_mm)
        if not np.isfinite(gap):
            continue
        j = int(owner[k])
        if plant.total_length_px < plants[j].total_length_px:
            reasons[i] = ("piece of another plant", j)
        else:
            reasons[j] = ("seed or shoot above a longer root system", i)
    return reasons


def _row_reasons(plants: list[PlantArchitecture], px_per_mm: float, rules: SeedlingRules) -> list[Verdict]:
    """The sowing-row rules for plants that passed the shape rules."""
    if not plants:
        return []
    lengths = np.array([p.total_length_px for p in plants])
    tops = np.array([_top(p) for p in plants])
    spans = [(min(r.points[:, 1].min() for r in p.roots), max(r.points[:, 1].max() for r in p.roots)) for p in plants]
    row = float(np.median(tops[lengths >= 0.25 * lengths.max()]))
    stack, tolerance, side = rules.stack_mm * px_per_mm, rules.row_tolerance_mm * px_per_mm, px_per_mm
    reasons: list[Verdict] = []
    for i, plant in enumerate(plants):
        col = plant.seed[1]
        under = [j for j, (c0, c1) in enumerate(spans) if j != i and not plant.seeded
                 and c0 - side <= col <= c1 + side and tops[i] > tops[j] + stack]
        if under:
            reasons.append(("under another plant", min(under, key=lambda j: tops[j])))
        elif abs(tops[i] - row) > tolerance:
            reasons.append(("off the sowing row", None))
        else:
            reasons.append(None)
    return reasons


def judge_plants(arch: ImageArchitecture, px_per_mm: float, rules: SeedlingRules | None = None,
                 image: str = "") -> tuple[ImageArchitecture, pd.DataFrame]:
    """The architecture with only its seedlings (renumbered 1..N, left in their order) and a table of the
    rejected plants: ``image``, ``object`` (its number before), ``x_px``, ``y_px`` (where it starts),
    ``length_mm``, ``reason`` (see the module docstring) and ``piece_of``: the number of the plant it is a
    piece of (rules 4 and 5; for a seed or shoot above a root system, that root system), else empty."""
    rules = rules or SeedlingRules()
    verdicts: list[Verdict] = [(r, None) if (r := _shape_reason(p, rules)) else None for p in arch.plants]
    for rule in (_piece_reasons, *((_row_reasons,) if rules.sown_in_a_row else ())):
        passed = [i for i, v in enumerate(verdicts) if v is None]
        for i, verdict in zip(passed, rule([arch.plants[i] for i in passed], px_per_mm, rules)):
            verdicts[i] = None if verdict is None else (verdict[0], None if verdict[1] is None else passed[verdict[1]])
    kept = [replace(p, id=k + 1) for k, p in enumerate(p for p, v in zip(arch.plants, verdicts) if v is None)]
    rows = [{"image": image, "object": p.id, "x_px": float(p.seed[1]), "y_px": float(p.seed[0]),
             "length_mm": p.total_length_px / px_per_mm, "reason": v[0],
             "piece_of": np.nan if v[1] is None else arch.plants[v[1]].id}
            for p, v in zip(arch.plants, verdicts) if v]
    gone = len(rows)
    judged = replace(arch, plants=kept, warnings=list(arch.warnings) + ([
        f"{image or 'mask'}: {gone} object(s) rejected as not seedlings (see the rejected table)"] if gone else []))
    return judged, pd.DataFrame(rows, columns=REJECTED_COLUMNS)
