"""RSML (Root System Markup Language) 1.0: the data model, reading, writing and helpers.

Points are ``(x, y[, z])`` in the file's unit (pixels for plate images), as RSML writes them: this
module is the one place where they meet the ``(row, col)`` order used elsewhere (see
:meth:`Root.rc`).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from xml.parsers import expat

import cv2
import numpy as np
import pandas as pd

from .errors import InputError
from .io import write_text


@dataclass
class Root:
    """One root: an ordered polyline from its base (insertion) to its tip, and its child roots.

    ``points`` is ``N x 2`` (x, y) or ``N x 3`` (x, y, z) float64. ``functions`` holds per-point
    values (e.g. ``diameter``, ``time``), each of length N; ``function_domains`` keeps each
    function's RSML ``domain`` (``polyline`` when absent). ``order`` is 1 for a root attached to
    the plant, 2 for its laterals, and so on (set from nesting when read).
    """

    points: np.ndarray
    id: str = ""
    label: str = ""
    order: int = 1
    children: list[Root] = field(default_factory=list)
    functions: dict[str, np.ndarray] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    function_domains: dict[str, str] = field(default_factory=dict)

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
        """Every root of every plant, depth first."""
        return [r for plant in self.plants for r in plant.all_roots()]


# ------------------------------------------------------------------------------------ coordinates
def xy_to_rc(points: np.ndarray) -> np.ndarray:
    """``N x 2`` (x, y) (or ``N x 3`` (x, y, z), z dropped) -> ``N x 2`` (row, col) float64."""
    return np.asarray(points, dtype=np.float64).reshape(-1, np.shape(points)[-1])[:, [1, 0]]


def rc_to_xy(points: np.ndarray) -> np.ndarray:
    """``N x 2`` (row, col) -> ``N x 2`` (x, y) float64."""
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)[:, [1, 0]]


def _empty_points() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.float64)


# ----------------------------------------------------------------------------------- safe parsing
class _Refused(Exception):
    """A DTD or entity declaration: refused before anything is expanded."""


def _refuse(*_args: object) -> None:
    raise _Refused


def _parse_xml(path: Path, data: bytes) -> ET.Element:
    """Parse bytes into an element tree with expat, refusing DTDs and entity declarations.

    Namespace prefixes are kept verbatim in tag names (``xsi:type``); :func:`_local` strips them.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        return builder.close()
    except _Refused:
        raise InputError(
            f"{path}: declares a DTD or entities (<!DOCTYPE/<!ENTITY>); rootscope refuses those for "
            "safety. Remove the DOCTYPE block (RSML does not need one) and read the file again."
        ) from None
    except expat.ExpatError as exc:
        raise InputError(
            f"{path}: is not well-formed XML ({exc}). Re-export the RSML from the annotation tool."
        ) from None


def _local(tag: str) -> str:
    """Tag name without its namespace prefix (``po:accession`` -> ``accession``)."""
    return tag.rsplit(":", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


def _inner_xml(element: ET.Element) -> str:
    """Text of a leaf element, or the serialized children of a structured one."""
    if len(element) == 0:
        return _text(element)
    return "".join(ET.tostring(child, encoding="unicode").strip() for child in element)


def _float(value: str | None, path: Path, where: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}: '{value}' is not a number. Fix the value in the RSML file.") from None


# ------------------------------------------------------------------------------------------ reading
def read_rsml(path: str | os.PathLike) -> Scene:
    """Read an RSML 1.0 file (and the RootNav / TILLMore dialects) into a :class:`Scene`.

    Points are ``(x, y)`` or ``(x, y, z)`` in the file's unit (pixels for images). A root's geometry
    is its ``polyline``; a root with only ``rootnavspline`` control points (TILLMore) gets the
    centripetal Catmull-Rom curve through them (:func:`spline_through`, a point about every 2 px);
    a root with neither keeps an empty ``0 x 2`` array. Root order is the nesting depth (1 = attached to the
    plant). Unknown elements are ignored; empty or odd IDs are kept as written. Raises
    :class:`InputError` naming the file when it is missing, empty, not XML, not RSML, declares a
    DTD/entities, or holds a coordinate that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise InputError(f"{path}: RSML file {what}. Check the path.")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: file is empty. Re-export the RSML from the annotation tool.")
    top = _parse_xml(path, data)
    if _local(top.tag) != "rsml":
        raise InputError(
            f"{path}: is XML but not RSML (top element <{top.tag}>, expected <rsml>). "
            "Give an RSML file (root architecture), not another XML document."
        )
    metadata = _read_metadata(_child(top, "metadata"))
    plants = [
        _read_plant(plant, path)
        for scene in _children(top, "scene")
        for plant in _children(scene, "plant")
    ]
    return Scene(plants, metadata)


_METADATA_FIELDS = {
    "unit": "unit", "software": "software", "version": "version", "last-modified": "last_modified",
    "user": "user", "file-key": "file_key",
}


def _read_metadata(element: ET.Element | None) -> Metadata:
    metadata = Metadata(software="", version="")
    if element is None:
        return metadata
    for child in element:
        name = _local(child.tag)
        if name in _METADATA_FIELDS:
            setattr(metadata, _METADATA_FIELDS[name], _text(child))
        elif name == "resolution":
            try:
                metadata.resolution = float(_text(child))
            except ValueError:  # e.g. TILLMore's 'xxx dpi': kept as written, not interpreted
                metadata.extra["resolution"] = _text(child)
        elif name == "time-sequence":
            metadata.time_sequence = {_local(c.tag): _text(c) for c in child}
        else:
            metadata.extra[name] = _inner_xml(child)
    return metadata


def _read_properties(element: ET.Element) -> dict[str, str]:
    block = _child(element, "properties")
    if block is None:
        return {}
    return {_local(p.tag): p.get("value", _text(p)) for p in block}


def _read_plant(element: ET.Element, path: Path) -> Plant:
    roots = [_read_root(root, path, order=1) for root in _children(element, "root")]
    return Plant(roots, element.get("ID", element.get("id", "")), element.get("label", ""),
                 _read_properties(element))


def _read_root(element: ET.Element, path: Path, order: int) -> Root:
    root_id = element.get("ID", element.get("id", ""))
    where = f"root '{root_id}'"
    geometry = _child(element, "geometry")
    points = _empty_points()
    if geometry is not None:
        polyline = _child(geometry, "polyline")
        spline = _child(geometry, "rootnavspline")
        if polyline is not None and len(_children(polyline, "point")):
            points = _read_points(polyline, path, where)
        elif spline is not None and len(_children(spline, "point")):
            points = spline_through(_read_points(spline, path, where))
    functions: dict[str, np.ndarray] = {}
    domains: dict[str, str] = {}
    block = _child(element, "functions")
    for function in [] if block is None else _children(block, "function"):
        name = function.get("name", "")
        samples = _children(function, "sample")
        functions[name] = np.array(
            [_float(s.get("value", _text(s)), path, f"{where}, function '{name}'") for s in samples],
            dtype=np.float64,
        )
        domains[name] = function.get("domain", "polyline")
    children = [_read_root(child, path, order + 1) for child in _children(element, "root")]
    return Root(points, root_id, element.get("label", ""), order, children, functions,
                _read_properties(element), domains)


def _read_points(element: ET.Element, path: Path, where: str) -> np.ndarray:
    """``<point x= y= [z=]/>`` (or ``<point><x>..</x>..</point>``) -> ``N x 2``, or ``N x 3`` when
    every point has a z."""
    rows = []
    for point in _children(element, "point"):
        values = {k: point.get(k) for k in ("x", "y", "z") if point.get(k) is not None}
        if not values:
            values = {_local(c.tag): _text(c) for c in point if _local(c.tag) in ("x", "y", "z")}
        rows.append(values)
    has_z = all("z" in row for row in rows)
    axes = ("x", "y", "z") if has_z else ("x", "y")
    return np.array(
        [[_float(row.get(a), path, f"{where}, point {i} {a}") for a in axes] for i, row in enumerate(rows)],
        dtype=np.float64,
    )


def _catmull_rom(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Centripetal Catmull-Rom segment from ``p1`` (s = 0) to ``p2`` (s = 1) (Barry-Goldman form).

    Knot spacing is the square root of each chord, which keeps the curve free of cusps and loops and
    limits overshoot where control points are unevenly spaced. Points are ``... x D`` arrays that
    broadcast with ``s`` (``... x 1``).
    """
    t1 = np.sqrt(np.linalg.norm(p1 - p0, axis=-1, keepdims=True))
    t2 = t1 + np.sqrt(np.linalg.norm(p2 - p1, axis=-1, keepdims=True))
    t3 = t2 + np.sqrt(np.linalg.norm(p3 - p2, axis=-1, keepdims=True))
    t = t1 + s * (t2 - t1)
    a1 = ((t1 - t) * p0 + t * p1) / t1
    a2 = ((t2 - t) * p1 + (t - t1) * p2) / (t2 - t1)
    a3 = ((t3 - t) * p2 + (t - t2) * p3) / (t3 - t2)
    b1 = ((t2 - t) * a1 + t * a2) / t2
    b2 = ((t3 - t) * a2 + (t - t1) * a3) / (t3 - t1)
    return ((t2 - t) * b1 + (t - t1) * b2) / (t2 - t1)


def spline_through(control: np.ndarray, step_px: float = 2.0) -> np.ndarray:
    """Centripetal Catmull-Rom curve through control points, sampled about every ``step_px`` of arc.

    ``control`` is ``N x D`` (D = 2 or 3). The curve passes exactly through every control point
    (consecutive duplicates are dropped); at the ends, phantom points mirror the neighbouring control
    point. Each segment is cut into ``ceil(arc length / step_px)`` pieces of equal arc length.
    Returns ``M x D`` float64 with ``M >= N``; a single point is returned as is.
    """
    control = np.asarray(control, dtype=np.float64)
    if len(control) > 1:
        control = control[np.r_[True, np.any(np.diff(control, axis=0) != 0, axis=1)]]
    if len(control) < 2:
        return control.copy()
    padded = np.vstack([2.0 * control[0] - control[1], control, 2.0 * control[-1] - control[-2]])
    p0, p1, p2, p3 = (padded[i : len(padded) - 3 + i, None, :] for i in range(4))
    fine = np.linspace(0.0, 1.0, 33)
    dense = _catmull_rom(p0, p1, p2, p3, fine[None, :, None])  # S x 33 x D
    pieces = np.linalg.norm(np.diff(dense, axis=1), axis=2)  # S x 32
    arc = pieces.sum(axis=1)
    counts = np.maximum(1, np.ceil(arc / step_px).astype(int))
    segment = np.repeat(np.arange(len(counts)), counts)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    # arc length -> curve parameter u = segment + t, by interpolation along the dense samples
    offsets = np.r_[0.0, np.cumsum(arc)[:-1]]
    cumulative = np.r_[(offsets[:, None] + np.c_[np.zeros(len(arc)), np.cumsum(pieces, axis=1)[:, :-1]]).ravel(),
                       offsets[-1] + arc[-1]]
    parameter = np.r_[(np.arange(len(arc))[:, None] + fine[None, :-1]).ravel(), float(len(arc))]
    u = np.interp(offsets[segment] + j / counts[segment] * arc[segment], cumulative, parameter)
    t = np.where(j == 0, 0.0, np.clip(u - segment, 0.0, 1.0))[:, None]
    curve = _catmull_rom(p0[segment, 0], p1[segment, 0], p2[segment, 0], p3[segment, 0], t)
    return np.vstack([curve, control[-1:]])


# ------------------------------------------------------------------------------------------ writing
def _num(value: float) -> str:
    """Shortest text that reads back to the same float64 (``989`` rather than ``989.0``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def write_rsml(path: str | os.PathLike, scene: Scene) -> Path:
    """Write a :class:`Scene` as RSML 1.0, atomically (via :func:`rootscope.io.write_text`).

    Coordinates are written with ``repr`` precision, so :func:`read_rsml` gives back the same
    float64 values; ``z`` is written only for roots whose points are ``N x 3``. An empty
    ``last_modified`` is written as the current UTC time. Returns ``path``.
    """
    meta = scene.metadata
    top = ET.Element("rsml")
    block = ET.SubElement(top, "metadata")
    stamp = meta.last_modified or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    for name, value in (("version", meta.version), ("unit", meta.unit), ("resolution", _num(meta.resolution)),
                        ("last-modified", stamp), ("software", meta.software), ("user", meta.user),
                        ("file-key", meta.file_key)):
        ET.SubElement(block, name).text = value
    if meta.time_sequence:
        sequence = ET.SubElement(block, "time-sequence")
        for name, value in meta.time_sequence.items():
            ET.SubElement(sequence, name).text = value
    standard = {"version", "unit", "resolution", "last-modified", "software", "user", "file-key", "time-sequence"}
    for name, value in meta.extra.items():
        if name not in standard:
            _append_extra(block, name, value)
    scene_element = ET.SubElement(top, "scene")
    for plant in scene.plants:
        element = ET.SubElement(scene_element, "plant", {"ID": plant.id, "label": plant.label})
        _append_properties(element, plant.properties)
        for root in plant.roots:
            _append_root(element, root)
    ET.indent(top, space="  ")
    text = ET.tostring(top, encoding="unicode", xml_declaration=False)
    return write_text(path, '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")


def _append_extra(parent: ET.Element, name: str, value: str) -> None:
    element = ET.SubElement(parent, name)
    if value.startswith("<"):  # a structured element kept as its inner XML
        try:
            element.extend(list(ET.fromstring(f"<x>{value}</x>")))
            return
        except ET.ParseError:
            pass
    element.text = value


def _append_properties(parent: ET.Element, properties: dict[str, str]) -> None:
    if properties:
        block = ET.SubElement(parent, "properties")
        for name, value in properties.items():
            ET.SubElement(block, name, {"value": str(value)})


def _append_root(parent: ET.Element, root: Root) -> None:
    element = ET.SubElement(parent, "root", {"ID": root.id, "label": root.label})
    _append_properties(element, root.properties)
    points = np.asarray(root.points, dtype=np.float64)
    if len(points):
        polyline = ET.SubElement(ET.SubElement(element, "geometry"), "polyline")
        axes = ("x", "y", "z") if points.shape[1] == 3 else ("x", "y")
        for row in points:
            ET.SubElement(polyline, "point", {a: _num(v) for a, v in zip(axes, row)})
    if root.functions:
        block = ET.SubElement(element, "functions")
        for name, values in root.functions.items():
            function = ET.SubElement(block, "function",
                                     {"name": name, "domain": root.function_domains.get(name, "polyline")})
            for value in np.asarray(values, dtype=np.float64).ravel():
                ET.SubElement(function, "sample").text = _num(value)
    for child in root.children:
        _append_root(element, child)


# ------------------------------------------------------------------------------------------ helpers
def polyline_length(points: np.ndarray) -> float:
    """Length of a polyline (``N x 2`` or ``N x 3``), in its unit; 0 for fewer than two points."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def root_length(root: Root) -> float:
    """Length of one root's own polyline (laterals not included), in px (3D when z is given)."""
    return polyline_length(root.points)


def plant_length(plant: Plant) -> float:
    """Total root length of a plant: all its roots and laterals, in px."""
    return float(sum(root_length(r) for r in plant.all_roots()))


def scene_length(scene: Scene) -> float:
    """Total root length of every plant in the scene, in px."""
    return float(sum(plant_length(p) for p in scene.plants))


def distance_to_polyline(point: np.ndarray, polyline: np.ndarray) -> float:
    """Shortest distance from a point to a polyline (segments, not only vertices), in px.

    Both use the same axes (x, y[, z]); a polyline of one point gives the distance to it, an empty
    one gives ``inf``.
    """
    polyline = np.asarray(polyline, dtype=np.float64)
    point = np.asarray(point, dtype=np.float64)[: polyline.shape[1] if polyline.ndim == 2 else None]
    if len(polyline) == 0:
        return float("inf")
    if len(polyline) == 1:
        return float(np.linalg.norm(point - polyline[0]))
    start, seg = polyline[:-1], np.diff(polyline, axis=0)
    sq = np.einsum("ij,ij->i", seg, seg)
    t = np.clip(np.einsum("ij,ij->i", point - start, seg) / np.where(sq > 0, sq, 1.0), 0.0, 1.0)
    return float(np.linalg.norm(start + t[:, None] * seg - point, axis=1).min())


def root_table(scene: Scene) -> pd.DataFrame:
    """One row per root: ``plant``, ``root`` (depth-first index in its plant), ``parent`` (-1 for
    first-order roots), ``order``, ``plant_id``, ``root_id``, ``label``, ``n_points``, ``length_px``.

    ``plant`` and ``root`` are the indices used by :func:`branching_points` and :func:`tips`, since
    IDs in real files are often empty or repeated.
    """
    rows = [
        {"plant": p, "root": r, "parent": parent, "order": root.order, "plant_id": plant.id,
         "root_id": root.id, "label": root.label, "n_points": len(root.points),
         "length_px": root_length(root)}
        for p, plant in enumerate(scene.plants)
        for r, (root, parent) in enumerate(_walk_with_parent(plant))
    ]
    return pd.DataFrame(rows, columns=_ROOT_COLUMNS)


_ROOT_COLUMNS = ["plant", "root", "parent", "order", "plant_id", "root_id", "label", "n_points", "length_px"]


def _walk_with_parent(plant: Plant) -> list[tuple[Root, int]]:
    """Depth-first roots of a plant with the depth-first index of their parent (-1 for none)."""
    out: list[tuple[Root, int]] = []

    def visit(root: Root, parent: int) -> None:
        index = len(out)
        out.append((root, parent))
        for child in root.children:
            visit(child, index)

    for root in plant.roots:
        visit(root, -1)
    return out


def hidden_laterals(scene: Scene) -> list[tuple[Plant, Root]]:
    """(plant, lateral) of every lateral still shorter than its parent's diameter (RSML function
    ``diameter``) where it leaves the parent: it lies inside the parent's outline, so no image or mask
    shows it. Roots without a diameter function count as width 0 (nothing hidden)."""
    out = []
    for plant in scene.plants:
        for parent in plant.all_roots():
            width = parent.functions.get("diameter", np.zeros(len(parent.points)))
            for child in parent.children:
                if len(child.points) and len(parent.points):
                    j = int(np.argmin(np.hypot(*(parent.points[:, :2] - child.points[0, :2]).T)))
                    if root_length(child) < width[j]:
                        out.append((plant, child))
    return out


def branching_points(scene: Scene) -> pd.DataFrame:
    """Where each lateral root starts: its first point, with its distance to the parent polyline.

    Columns ``plant, root, parent, order, x, y, distance_px`` (``plant``/``root``/``parent`` are
    indices as in :func:`root_table`; ``order`` is the child's). Roots without points and
    first-order roots give no row. ``df[["x", "y"]].to_numpy()`` is the ``K x 2`` array of points.
    """
    rows = []
    for p, plant in enumerate(scene.plants):
        walked = _walk_with_parent(plant)
        for r, (root, parent) in enumerate(walked):
            if parent < 0 or len(root.points) == 0:
                continue
            first = np.asarray(root.points, dtype=np.float64)[0]
            rows.append({"plant": p, "root": r, "parent": parent, "order": root.order,
                         "x": first[0], "y": first[1],
                         "distance_px": distance_to_polyline(first, walked[parent][0].points)})
    return pd.DataFrame(rows, columns=["plant", "root", "parent", "order", "x", "y", "distance_px"])


def tips(scene: Scene) -> pd.DataFrame:
    """The tip (last point) of every root that has points: columns ``plant, root, order, x, y``."""
    rows = [
        {"plant": p, "root": r, "order": root.order, "x": root.points[-1][0], "y": root.points[-1][1]}
        for p, plant in enumerate(scene.plants)
        for r, (root, _) in enumerate(_walk_with_parent(plant))
        if len(root.points)
    ]
    return pd.DataFrame(rows, columns=["plant", "root", "order", "x", "y"]).astype({"x": float, "y": float})


_SHIFT = 4  # sub-pixel bits for OpenCV drawing


def _odd_width(width_px: float) -> int:
    """The odd whole width nearest ``width_px`` (ties go up), at least 1 px."""
    return 2 * int(np.floor(max(width_px, 0.0) / 2.0)) + 1


def _thickness(width: int) -> int:
    """OpenCV ``thickness`` that draws an 8-connected line ``width`` px across (odd ``width``).

    OpenCV draws thick lines about ``thickness + 2`` px across (thickness 2 and 3 both give 3 and 5
    px: 2 -> 3, 3 -> 5, 5 -> 7); thickness 1 draws a plain 1 px line.
    """
    return 1 if width <= 1 else max(2, width - 2)


def render_mask(
    scene: Scene,
    shape: tuple[int, int],
    width_px: float = 5.0,
    value: int = 1,
    use_diameter: bool = False,
) -> np.ndarray:
    """Draw every root of the scene into an ``H x W`` uint8 mask (``value`` on roots, 0 elsewhere).

    Roots are drawn with ``cv2.polylines`` at sub-pixel positions, without anti-aliasing, with round
    caps and joins, ``width_px`` across (rounded to the nearest odd number of pixels, so that the
    line is symmetric about its centre: 5 px gives 5 pixels across a horizontal root). With
    ``use_diameter``, a root that has a ``diameter`` function (one value per point, in px) is drawn
    segment by segment at the mean diameter of each segment's ends instead. A one-point root is a
    disc; ``z`` is ignored; points outside ``shape`` are clipped.
    """
    height, width = int(shape[0]), int(shape[1])
    mask = np.zeros((height, width), dtype=np.uint8)
    across = _odd_width(width_px)
    colour = int(value)
    for root in scene.all_roots():
        points = np.asarray(root.points, dtype=np.float64)
        if len(points) == 0:
            continue
        fixed = np.rint(points[:, :2] * (1 << _SHIFT)).astype(np.int32)
        diameter = root.functions.get("diameter") if use_diameter else None
        if diameter is not None and len(diameter) == len(points) and len(points) > 1:
            for a, b, d in zip(fixed[:-1], fixed[1:], (diameter[:-1] + diameter[1:]) / 2.0):
                cv2.line(mask, tuple(map(int, a)), tuple(map(int, b)), colour,
                         _thickness(_odd_width(d)), cv2.LINE_8, _SHIFT)
        elif len(points) == 1:
            radius = ((across - 1) << _SHIFT) // 2
            cv2.circle(mask, tuple(map(int, fixed[0])), radius, colour, -1, cv2.LINE_8, _SHIFT)
        else:
            cv2.polylines(mask, [fixed.reshape(-1, 1, 2)], False, colour, _thickness(across), cv2.LINE_8, _SHIFT)
    return mask
