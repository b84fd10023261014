"""RSML (Root System Markup Language) 1.0 and 2D+t (1.4): the data model, reading, writing and helpers.

Points are ``(x, y[, z])`` in the file's unit (pixels for plate images), as RSML writes them: this
module is the one place where they meet the ``(row, col)`` order used elsewhere (see
:meth:`Root.rc`).

Time (2D+t RSML, the convention of RootSystemTracker): the metadata's ``<observation-hours>`` lists
the observation times (h); each point of a timed root carries ``coord_th``, the time (h) at which
the root reached it, and ``coord_t``, the same time in observation steps (1 = the first
observation, fractional between two), with ``coord_x``, ``coord_y`` and per-point values such as
``diameter``. In memory these are per-point functions of the root: ``time`` (h), ``time_index``
(steps) and ``diameter`` (px), see :attr:`Root.times_h`; :func:`scene_at` gives the scene as it was
at a given time.
"""

from __future__ import annotations

import copy
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
import re
from pathlib import Path
from xml.parsers import expat

import cv2
import numpy as np
import pandas as pd

from .errors import InputError
from .io import write_text

#: Per-point function names of 2D+t roots: time (h) the root reached the point, the same time in
#: observation steps (1-based, fractional), and diameter (px).
TIME, TIME_INDEX, DIAMETER = "time", "time_index", "diameter"
#: Point attributes of 2D+t RSML (RootSystemTracker) that hold a per-point function, by function name.
_POINT_ATTRIBUTES = {TIME_INDEX: "coord_t", TIME: "coord_th"}


@dataclass
class Root:
    """One root: an ordered polyline from its base (insertion) to its tip, and its child roots.

    ``points`` is ``N x 2`` (x, y) or ``N x 3`` (x, y, z) float64. ``functions`` holds per-point
    values (e.g. ``diameter``, ``time``), each of length N; ``function_domains`` keeps each
    function's RSML ``domain`` (``polyline`` when absent). ``order`` is 1 for a root attached to
    the plant, 2 for its laterals, and so on (set from nesting when read). Per-point time and
    diameter are the functions :data:`TIME`, :data:`TIME_INDEX` and :data:`DIAMETER`, also given by
    :attr:`times_h`, :attr:`time_index` and :attr:`diameters`.
    """

    points: np.ndarray
    id: str = ""
    label: str = ""
    order: int = 1
    children: list[Root] = field(default_factory=list)
    functions: dict[str, np.ndarray] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    function_domains: dict[str, str] = field(default_factory=dict)

    @property
    def times_h(self) -> np.ndarray | None:
        """Per point, the time (h since the first observation) the root reached it (``coord_th``); None
        when the root has no time."""
        return self.functions.get(TIME)

    @property
    def time_index(self) -> np.ndarray | None:
        """Per point, the same time in observation steps (``coord_t``: 1 = the first observation,
        fractional between two); None when not given."""
        return self.functions.get(TIME_INDEX)

    @property
    def diameters(self) -> np.ndarray | None:
        """Per point, the root's diameter (in the file's unit, px); None when not given."""
        return self.functions.get(DIAMETER)

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

    @property
    def observation_hours(self) -> np.ndarray:
        """Observation times (h) of a 2D+t scene, from ``<observation-hours>`` (kept as written in
        ``extra``): a float64 array, empty when not given. Raises ValueError when not numbers."""
        text = self.extra.get("observation-hours", "").strip()
        return np.array([float(v) for v in re.split(r"[,;\s]+", text)] if text else [], dtype=np.float64)

    @observation_hours.setter
    def observation_hours(self, hours: np.ndarray) -> None:
        self.extra["observation-hours"] = ",".join(_num(h) for h in np.asarray(hours, dtype=np.float64).ravel())


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
    """Read an RSML 1.0 file (and the RootNav / TILLMore / 2D+t dialects) into a :class:`Scene`.

    Points are ``(x, y)`` or ``(x, y, z)`` in the file's unit (pixels for images). A root's geometry
    is its ``polyline``; a root with only ``rootnavspline`` control points (TILLMore) gets the
    centripetal Catmull-Rom curve through them (:func:`spline_through`, a point about every 2 px);
    a root with neither keeps an empty ``0 x 2`` array. Root order is the nesting depth (1 = attached to the
    plant). 2D+t RSML (RootSystemTracker, RSML 1.4): points given as ``coord_x``/``coord_y`` are read
    as x/y; on points that carry ``coord_t`` or ``coord_th``, every other attribute becomes a per-point
    function (``coord_th`` -> :data:`TIME` in h, ``coord_t`` -> :data:`TIME_INDEX` in observation
    steps, ``diameter``, ``vx``, ...), and ``<observation-hours>`` gives
    :attr:`Metadata.observation_hours`. Unknown elements are ignored; empty or odd IDs are kept as
    written. Raises :class:`InputError` naming the file when it is missing, empty, not XML, not RSML,
    declares a DTD/entities, holds a coordinate or time that is not a number, or a timed point that
    lacks a value the root's other points have.
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
    try:
        _ = metadata.observation_hours  # parsed here to name a bad value with its file
    except ValueError:
        raise InputError(f"{path}: <observation-hours> '{metadata.extra['observation-hours']}' is not a "
                         "comma-separated list of numbers (hours). Fix it in the RSML file.") from None
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
    functions: dict[str, np.ndarray] = {}
    if geometry is not None:
        polyline = _child(geometry, "polyline")
        spline = _child(geometry, "rootnavspline")
        if polyline is not None and len(_children(polyline, "point")):
            points, functions = _read_points(polyline, path, where)
        elif spline is not None and len(_children(spline, "point")):
            points = spline_through(_read_points(spline, path, where)[0])
    domains = dict.fromkeys(functions, "polyline")
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


_AXES = ("x", "y", "z")
_FROM_ATTRIBUTE = {attribute: name for name, attribute in _POINT_ATTRIBUTES.items()}


def _point_values(point: ET.Element) -> dict[str, str]:
    """A point's attributes (``coord_x``/``coord_y``/``coord_z`` named x/y/z; plain x/y/z win), or the
    text of its ``<x>``, ``<y>``, ``<z>`` children when no attribute gives a coordinate."""
    values = {name: value for name, value in point.attrib.items() if name not in _AXES}
    for axis in _AXES:
        if f"coord_{axis}" in values:
            values[axis] = values.pop(f"coord_{axis}")
        if point.get(axis) is not None:
            values[axis] = point.get(axis)
    if not any(axis in values for axis in _AXES):
        values.update({_local(c.tag): _text(c) for c in point if _local(c.tag) in _AXES})
    return values


def _read_points(element: ET.Element, path: Path, where: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``<point x= y= [z=]/>`` (or ``<point><x>..</x>..</point>``, or 2D+t ``coord_x=``...) -> ``N x 2``
    points, or ``N x 3`` when every point has a z, and the per-point functions of 2D+t points (those
    that carry ``coord_t`` or ``coord_th``; none otherwise), each of length N."""
    rows = [_point_values(point) for point in _children(element, "point")]
    has_z = all("z" in row for row in rows)
    axes = ("x", "y", "z") if has_z else ("x", "y")
    points = np.array(
        [[_float(row.get(a), path, f"{where}, point {i} {a}") for a in axes] for i, row in enumerate(rows)],
        dtype=np.float64,
    )
    if not any(attribute in row for row in rows for attribute in _FROM_ATTRIBUTE):
        return points, {}
    names = [n for n in dict.fromkeys(n for row in rows for n in row) if n not in _AXES]
    return points, {_FROM_ATTRIBUTE.get(n, n): _point_function(rows, n, path, where) for n in names}


def _point_function(rows: list[dict[str, str]], name: str, path: Path, where: str) -> np.ndarray:
    """The values of point attribute ``name`` over a root's points (float64, one per point)."""
    values = []
    for i, row in enumerate(rows):
        if name not in row:
            raise InputError(f"{path}: {where}, point {i}: no '{name}', which the root's other points have. "
                             "Give every point of a timed root the same attributes.")
        values.append(_float(row[name], path, f"{where}, point {i} {name}"))
    return np.array(values, dtype=np.float64)


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
    ``last_modified`` is written as the current UTC time. A timed root (per-point :data:`TIME` or
    :data:`TIME_INDEX`) is written in the 2D+t convention of RootSystemTracker: each point carries
    ``coord_t`` (observation steps), ``coord_th`` (h), ``coord_x``, ``coord_y`` (``coord_z``) and its
    other per-point values (``diameter``, ...) as attributes; other roots keep ``x``/``y`` points and
    ``<function>`` elements. Observation times are :attr:`Metadata.observation_hours`. Returns ``path``.
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


_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _on_points(root: Root) -> list[str]:
    """Names of the functions written as point attributes: none unless the root is timed (has a
    per-point :data:`TIME` or :data:`TIME_INDEX`); then every function with one value per point,
    domain ``polyline`` and a name that is a plain XML name (not ``x``/``y``/``z``/``coord_*``), time
    first, as RootSystemTracker orders them."""
    n = len(root.points)

    def per_point(name: str) -> bool:
        return (np.size(root.functions[name]) == n and root.function_domains.get(name, "polyline") == "polyline"
                and bool(_XML_NAME.fullmatch(name)) and name not in _AXES and not name.startswith("coord_"))

    names = [name for name in root.functions if per_point(name)]
    if n == 0 or not any(name in _POINT_ATTRIBUTES for name in names):
        return []
    return sorted(names, key=lambda name: list(_POINT_ATTRIBUTES).index(name) if name in _POINT_ATTRIBUTES else 2)


def _append_points(polyline: ET.Element, root: Root, on_points: list[str]) -> None:
    """``<point x= y= [z=]/>`` per point, or, for a timed root, ``<point coord_t= coord_th= coord_x=
    coord_y= [coord_z=] diameter= .../>`` (time first, then coordinates, then the other values)."""
    points = np.asarray(root.points, dtype=np.float64)
    axes = _AXES[: points.shape[1]]
    timed = [name for name in on_points if name in _POINT_ATTRIBUTES]
    values = [np.asarray(root.functions[name], dtype=np.float64).ravel() for name in on_points]
    for i, row in enumerate(points):
        if not on_points:
            ET.SubElement(polyline, "point", {a: _num(v) for a, v in zip(axes, row)})
            continue
        attributes = {_POINT_ATTRIBUTES[name]: _num(values[k][i]) for k, name in enumerate(timed)}
        attributes.update({f"coord_{a}": _num(v) for a, v in zip(axes, row)})
        attributes.update({name: _num(values[k][i]) for k, name in enumerate(on_points) if name not in timed})
        ET.SubElement(polyline, "point", attributes)


def _append_root(parent: ET.Element, root: Root) -> None:
    element = ET.SubElement(parent, "root", {"ID": root.id, "label": root.label})
    _append_properties(element, root.properties)
    on_points = _on_points(root)
    if len(root.points):
        _append_points(ET.SubElement(ET.SubElement(element, "geometry"), "polyline"), root, on_points)
    functions = {name: values for name, values in root.functions.items() if name not in on_points}
    if functions:
        block = ET.SubElement(element, "functions")
        for name, values in functions.items():
            function = ET.SubElement(block, "function",
                                     {"name": name, "domain": root.function_domains.get(name, "polyline")})
            for value in np.asarray(values, dtype=np.float64).ravel():
                ET.SubElement(function, "sample").text = _num(value)
    for child in root.children:
        _append_root(element, child)


# ------------------------------------------------------------------------------------------ helpers
def observation_index(hours: np.ndarray | float, observation_hours: np.ndarray) -> np.ndarray:
    """Times in observation steps, as RootSystemTracker's ``coord_t``.

    Parameters
    ----------
    hours : array_like of float
        Times (h, same origin as ``observation_hours``).
    observation_hours : array_like of float
        The observation times (h), strictly increasing, at least one.

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``hours``: 1 at the first observation, k at the k-th, linear between two;
        before the first and after the last, linear with the nearest interval, never below 0 (one
        observation: 1 everywhere). NaN stays NaN.
    """
    hours = np.asarray(hours, dtype=np.float64)
    obs = np.asarray(observation_hours, dtype=np.float64).ravel()
    if len(obs) == 0 or np.any(np.diff(obs) <= 0):
        raise ValueError(f"observation hours must be strictly increasing, at least one (got {obs.tolist()})")
    if len(obs) == 1:
        return np.where(np.isnan(hours), np.nan, 1.0)
    steps = np.interp(hours, obs, np.arange(1.0, len(obs) + 1.0))
    steps = np.where(hours < obs[0], 1.0 + (hours - obs[0]) / (obs[1] - obs[0]), steps)
    steps = np.where(hours > obs[-1], len(obs) + (hours - obs[-1]) / (obs[-1] - obs[-2]), steps)
    return np.maximum(steps, 0.0)


def scene_at(scene: Scene, hours: float) -> Scene:
    """The scene as it was at time ``hours``: a 2D+t scene cut back to what had grown by then.

    Parameters
    ----------
    scene : Scene
        A scene whose roots carry per-point time (:attr:`Root.times_h`, h), e.g. read from a 2D+t
        RSML file. It is not changed.
    hours : float
        Time (h, the origin of the per-point times, e.g. ``scene.metadata.observation_hours[k]``).

    Returns
    -------
    Scene
        A new scene with the same plants (a plant may be left without roots) and metadata. A timed
        root keeps its points with time <= ``hours`` and the values of its per-point functions there;
        it exists once two of its points have been reached (its only point for a one-point root):
        before that it is left out, with its laterals. A root without per-point time is kept whole.
        (RootSystemTracker writes ``coord_th = 0`` on the first point of some laterals whatever their
        ``coord_t``; the two-point rule keeps such a base from standing alone.)
    """
    plants = [Plant([r for r in (_root_at(root, hours) for root in plant.roots) if r is not None],
                    plant.id, plant.label, dict(plant.properties)) for plant in scene.plants]
    return Scene(plants, copy.deepcopy(scene.metadata))


def _root_at(root: Root, hours: float) -> Root | None:
    """``root`` as it was at ``hours`` (see :func:`scene_at`), or None when it had not grown yet."""
    n = len(root.points)
    times = root.times_h
    keep = np.ones(n, dtype=bool)
    if times is not None and np.size(times) == n:
        keep = np.asarray(times, dtype=np.float64) <= hours
        if keep.sum() < min(2, n):
            return None
    functions = {name: np.array(values, dtype=np.float64)[keep] if np.size(values) == n else np.array(values)
                 for name, values in root.functions.items()}
    children = [c for c in (_root_at(child, hours) for child in root.children) if c is not None]
    return Root(np.asarray(root.points, dtype=np.float64)[keep], root.id, root.label, root.order, children,
                functions, dict(root.properties), dict(root.function_domains))


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
