"""RSML (Root System Markup Language) 1.0: the data model, reading, writing and helpers.

Points are ``(x, y[, z])`` in the file's unit (pixels for plate images), as RSML writes them: this
module is the one place where they meet the ``(row, col)`` order used elsewhere (see
:meth:`Root.rc`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Root:
    """One root: an ordered polyline from its base (insertion) to its tip, and its child roots.

    ``points`` is ``N x 2`` (x, y) or ``N x 3`` (x, y, z) float64. ``functions`` holds per-point
    values (e.g. ``diameter``, ``time``), each of length N. ``order`` is 1 for a root attached to
    the plant, 2 for its laterals, and so on (set from nesting when read).
    """

    points: np.ndarray
    id: str = ""
    label: str = ""
    order: int = 1
    children: list[Root] = field(default_factory=list)
    functions: dict[str, np.ndarray] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)

    def rc(self) -> np.ndarray:
        """Points as ``N x 2`` (row, col) = (y, x): the order used by the image code."""
        return np.asarray(self.points, dtype=np.float64)[:, [1, 0]]

    def walk(self):
        """This root and all its descendants, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Plant:
    """One plant: its first-order roots (each with nested laterals)."""

    roots: list[Root] = field(default_factory=list)
    id: str = ""
    label: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    def all_roots(self) -> list[Root]:
        """Every root of the plant, depth first (first-order roots and their laterals)."""
        return [r for root in self.roots for r in root.walk()]


@dataclass
class Metadata:
    """RSML metadata. ``resolution`` is units per pixel as RSML defines it (1 with unit 'pixel')."""

    unit: str = "pixel"
    resolution: float = 1.0
    software: str = "rootscope"
    version: str = "1"
    last_modified: str = ""
    user: str = ""
    file_key: str = ""
    time_sequence: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Scene:
    """An RSML document: metadata and plants."""

    plants: list[Plant] = field(default_factory=list)
    metadata: Metadata = field(default_factory=Metadata)

    def all_roots(self) -> list[Root]:
        return [r for plant in self.plants for r in plant.all_roots()]
