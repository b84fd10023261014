"""Typed settings for one experiment, read from an optional ``rootscope.toml``.

Every key is checked: an unknown key (a typo) or a value of the wrong type raises
:class:`~rootscope.errors.ConfigError` naming the file, the key, the closest valid key and the fix.
Without a file the defaults apply. Relative model paths are resolved against the file's folder.
``rootscope init DIR`` writes :func:`default_config_text`, the defaults with comments.

Lengths in this file are pixels of the aligned reference scan, except ``px_per_mm`` (pixels per mm)
and the ``*_mm`` options of [architecture].
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CONFIG_NAME = "rootscope.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Rect(_Section):
    """A rectangle in pixels of the aligned reference scan: ``x`` (column) and ``y`` (row) of the
    top-left corner, ``width`` and ``height``. Written ``{x = 0, y = 0, width = 100, height = 50}`` or
    ``[x, y, width, height]``."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) != 4:
                raise ValueError("a rectangle is [x, y, width, height] (4 numbers)")
            return dict(zip(("x", "y", "width", "height"), value))
        return value

    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices that cut this rectangle out of an image."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)


class PlateRegions(_Section):
    """Compartments of one plate, measured on their own when given."""

    shoot_zone: Rect | None = None
    seed_line: Rect | None = None
    root_zone: Rect | None = None

    def given(self) -> dict[str, Rect]:
        """The regions that are set, by name."""
        return {name: rect for name in type(self).model_fields if (rect := getattr(self, name)) is not None}


class InputSettings(_Section):
    """Where the scans are and how their names read."""

    layout: Literal["auto", "folders", "flat"] = "auto"
    raw: str = "raw"
    time_patterns: list[str] = Field(default_factory=list)
    flat_pattern: str = r"^(?P<species>[A-Za-z]+)_(?P<session>\d{8})_(?P<plate>\d+)"

    @field_validator("time_patterns")
    @classmethod
    def _time_groups(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            groups = _compile(pattern).groupindex
            missing = {"year", "month", "day"} - set(groups)
            if missing:
                raise ValueError(f"time pattern {pattern!r} lacks the named groups {sorted(missing)}")
        return patterns

    @field_validator("flat_pattern")
    @classmethod
    def _plate_group(cls, pattern: str) -> str:
        if "plate" not in _compile(pattern).groupindex:
            raise ValueError(f"flat_pattern {pattern!r} needs a named group (?P<plate>...)")
        return pattern


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from exc


class ModelPaths(_Section):
    """Trained models (relative paths are relative to the config file)."""

    pixel: Path | None = None
    unet: Path | None = None
    branches: Path | None = None


class AlignSettings(_Section):
    """Registration of every scan of a plate onto one reference scan."""

    enabled: bool = True
    model: Literal["translation", "rigid", "similarity", "affine", "homography"] = "similarity"
    reference: Literal["first", "previous"] | int = "first"
    max_side: int = Field(default=1024, ge=64)


class PlateSettings(_Section):
    """[plate]: find the plate on every scan and measure only inside it, minus its rim
    (:func:`rootscope.plate.find_plate`); ``rect`` gives it instead (px of the aligned scans: x, y, width,
    height), with ``rim_px`` left out inside it."""

    enabled: bool = True
    shape: Literal["auto", "square", "round"] = "auto"
    rect: Rect | None = None
    rim_px: float = Field(default=0.0, ge=0)


class ArchitectureSettings(_Section):
    """Masks -> plants, roots, tips and branching points (see :func:`rootscope.architecture.find_architecture`)."""

    min_area_px: int = Field(default=30, ge=0)
    max_hole_px: int = Field(default=20, ge=0)
    bridge_px: int | None = Field(default=None, ge=0)
    spur_factor: float = Field(default=1.0, ge=0)
    min_plant_length_mm: float = Field(default=2.0, ge=0)
    seed_radius_mm: float | None = Field(default=None, gt=0)
    seed_gap_mm: float = Field(default=5.0, ge=0)
    seedlings_only: bool = True
    sown_in_a_row: bool = True
    smooth_sigma: float = Field(default=2.0, ge=0)
    branch_support_px: float = Field(default=5.0, ge=0)
    branch_lateral_score: float | None = Field(default=None, ge=0, le=1)

    def bridge_at(self, px_per_mm: float) -> int:
        """``bridge_px``, or when unset :data:`BRIDGE_MM` at this scale (px)."""
        return self.bridge_px if self.bridge_px is not None else round(BRIDGE_MM * px_per_mm)


#: Gaps in a root that the architecture closes when ``architecture.bridge_px`` is unset (mm).
BRIDGE_MM = 1.0


class TrackSettings(_Section):
    """[track]: how far (mm, in the reference frame) a plant's seed, a lateral's base and a branching point
    may move between scans and still be the same one (:func:`rootscope.track.track_plate`)."""

    plant_gate_mm: float = Field(default=4.0, gt=0)
    root_gate_mm: float = Field(default=1.5, gt=0)
    point_gate_mm: float = Field(default=1.0, gt=0)


class ReportSettings(_Section):
    """The HTML report."""

    enabled: bool = True
    thumbnail_px: int = Field(default=800, ge=64)


class BatchSettings(_Section):
    """How plates are spread over workers (the command-line options win)."""

    workers: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None
    scheduler: str | None = None

    @field_validator("memory_limit")
    @classmethod
    def _bytes(cls, value: str | None) -> str | None:
        from dask.utils import parse_bytes

        if value is not None:
            try:
                parse_bytes(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an amount of memory; write e.g. \"4GB\" or \"512MB\"") from None
        return value


class Config(_Section):
    """All settings of one experiment."""

    px_per_mm: float | None = Field(default=None, gt=0)
    classes: list[str] = Field(default_factory=lambda: ["background", "root", "seed", "shoot"], min_length=2)
    input: InputSettings = Field(default_factory=InputSettings)
    models: ModelPaths = Field(default_factory=ModelPaths)
    align: AlignSettings = Field(default_factory=AlignSettings)
    plate: PlateSettings = Field(default_factory=PlateSettings)
    architecture: ArchitectureSettings = Field(default_factory=ArchitectureSettings)
    track: TrackSettings = Field(default_factory=TrackSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    regions: dict[str, PlateRegions] = Field(default_factory=dict)

    def regions_for(self, plate: str) -> PlateRegions:
        """Regions of ``plate``: its own [regions.<plate>], else [regions.default], else none."""
        return self.regions.get(plate) or self.regions.get("default") or PlateRegions()

    def section_hash(self, *names: str) -> str:
        """SHA-1 of the named sections (all settings when none are named), as canonical JSON."""
        data = self.model_dump(mode="json")
        picked = {name: data[name] for name in names} if names else data
        return hashlib.sha1(json.dumps(picked, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------- loading
def load_config(path: str | Path | None = None) -> Config:
    """Read settings from ``path`` (a ``rootscope.toml`` or a folder holding one).

    A folder without ``rootscope.toml`` (or ``None``) gives the defaults. Raises
    :class:`ConfigError` for TOML syntax errors, unknown keys and wrong types.
    """
    if path is None:
        return Config()
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
        if not path.exists():
            return Config()
    if not path.exists():
        raise ConfigError(f"{path}: config file not found. Create one with `rootscope init FOLDER`.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}). Fix the line named, or compare with "
                          "`rootscope init` output.") from exc
    config = parse_config(data, source=path)
    for name in ModelPaths.model_fields:
        model = getattr(config.models, name)
        if model is not None and not model.is_absolute():
            setattr(config.models, name, (path.parent / model).resolve())
    return config


def parse_config(data: dict[str, Any], source: str | Path = CONFIG_NAME) -> Config:
    """Validate a parsed TOML mapping into a :class:`Config`; errors become one :class:`ConfigError`."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = dict.fromkeys(_explain(error, data) for error in _merge_unions(exc.errors()))
        raise ConfigError(f"{source}: " + "\n  ".join(problems)) from None


def _merge_unions(errors: list[Any]) -> list[Any]:
    """One error per key: the messages of a union's members are joined with 'or'."""
    merged: dict[tuple, Any] = {}
    for error in errors:
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        if loc in merged and error["type"] != "extra_forbidden":
            merged[loc]["msg"] += f", or {error['msg'][0].lower()}{error['msg'][1:]}"
        else:
            merged[loc] = {**error, "loc": loc}
    return list(merged.values())


def _explain(error: Any, data: dict[str, Any]) -> str:
    loc = [part for part in error["loc"] if not _is_union_tag(part)]
    key = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        valid = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        where = f"'{'.'.join(map(str, loc[:-1]))}'" if len(loc) > 1 else "the top level"
        hint = f" Did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?" if close else ""
        return (f"unknown key '{key}'.{hint} Valid keys in {where}: {', '.join(valid)}. "
                "Fix the spelling or remove the key.")
    value = _value_at(data, loc)
    example = _default_at(loc)
    fix = f" Fix: e.g. {loc[-1]} = {example}." if example is not None else ""
    return f"{key} = {value!r}: {error['msg']}.{fix}"


def _is_union_tag(part: Any) -> bool:
    """Pydantic adds the chosen union member (e.g. 'list[str]', 'literal[...]') to error locations."""
    return isinstance(part, str) and (part.startswith(("literal[", "function-")) or "[" in part
                                      or part in {"int", "str", "float", "bool"})


def _model_at(loc: list[Any]) -> type[BaseModel] | None:
    """The settings class found by walking ``loc`` from :class:`Config` (dict keys are skipped)."""
    current: Any = Config
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _value_at(data: Any, loc: list[Any]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _default_at(loc: list[Any]) -> str | None:
    """The default of the field at ``loc`` written as TOML, when it has a simple one."""
    parent = _model_at(loc[:-1])
    if parent is None or str(loc[-1]) not in parent.model_fields:
        return None
    default = parent.model_fields[str(loc[-1])].get_default(call_default_factory=True)
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (int, float)):
        return repr(default)
    if isinstance(default, str):
        return json.dumps(default)
    if isinstance(default, list) and all(isinstance(v, str) for v in default):
        return json.dumps(default)
    return None


# ------------------------------------------------------------------------------ default file
def default_config_text() -> str:
    """The text of a commented ``rootscope.toml`` holding the defaults (what ``rootscope init`` writes)."""
    return _DEFAULT_TEXT


_DEFAULT_TEXT = '''\
# rootscope settings for one experiment. Every key is optional: delete what you do not change.
# Unknown keys and wrong types are refused with a message naming the key.

# Pixels per millimetre of the scans (600 dpi = 23.62). Unset: read from the files' DPI tags.
# px_per_mm = 23.62

# Class names of the segmentation masks, in order (mask value 1 = first name).
classes = ["background", "root", "seed", "shoot"]

[input]
# "folders": raw/<plate>/<scans>; "flat": raw/<scans> named by flat_pattern; "auto": guess.
layout = "auto"
# Folder of the raw scans, relative to the experiment folder. Scans are only read, never modified.
raw = "raw"
# Regexes with named groups year, month, day[, hour, minute, second] to read capture times from
# file names; empty = the built-in patterns (2025-10-14_03h00, 20251014_030000), then file metadata.
time_patterns = []
# Flat layout: a regex naming the plate (required), and optionally species and session.
# The default reads At_20251103_031.tif as species At, session 2025-11-03, plate 031.
flat_pattern = "^(?P<species>[A-Za-z]+)_(?P<session>\\\\d{8})_(?P<plate>\\\\d+)"

[models]
# Segmentation model: a pixel classifier (rootscope pixel train) or a U-Net (rootscope unet train).
# Paths are relative to this file. The U-Net wins when both are given.
# pixel = "models/root_rf.model"
# unet = "models/root_unet.pt"
# Branching-point model (optional).
# branches = "models/branches.pt"

[align]
enabled = true
# Transform between scans of one plate: "translation", "rigid", "similarity", "affine" or "homography".
model = "similarity"
# Reference scan: "first", an index (0 = first, -1 = last), or "previous" (each scan to the one
# before, chained back to the first: for plates that drift slowly).
reference = "first"
# Longest side (px) of the reduced image used for the coarse search.
max_side = 1024

[plate]
# Find the plate (square or round) on every scan and measure only inside it, minus its rim, so that
# nothing on the bench, the rim or the lid becomes a root (false: measure the whole scan).
enabled = true
shape = "auto"
# Or give it: x, y, width, height in px of the aligned scans, and the rim (px) to leave out inside it.
# rect = [100, 80, 1800, 1800]
# rim_px = 20

[architecture]
# Mask components smaller than this (px) are dropped; holes up to this size (px) are filled.
min_area_px = 30
max_hole_px = 20
# Close gaps up to this length (px) along a root (0 = off; unset: 1 mm at the scan's scale).
# bridge_px = 20
# Skeleton spurs shorter than spur_factor x the local root radius are pruned.
spur_factor = 1.0
# Without seeds in the mask, a plant is a skeleton component at least this long (mm).
min_plant_length_mm = 2.0
# How far from a seed a root may start (mm); unset: from the root width.
# seed_radius_mm = 1.5
# A seed or shoot with no root that near takes a root system whose top is at most this far below it
# (mm): the pale hypocotyl or upper root that a segmentation misses.
seed_gap_mm = 5.0
# Keep only plants that are seedlings (thin, growing down, sown in a row): letters, label edges, specks
# and pieces of root cut off by a gap go to rejected/<scan>.csv with the reason (rootscope.seedlings).
seedlings_only = true
# The plate's seeds were sown in one row: a plant that starts well below the others, or under another
# plant, is a piece of root, not a seedling (false for plates sown in several rows or at random).
sown_in_a_row = true
# Smoothing of root centrelines before lengths are measured (px).
smooth_sigma = 2.0
# With models.branches: a lateral too short to reach out of its parent in the mask still counts when
# the branch-point network found a branching point within this distance (px) of its base, and starts
# there; one shorter than 3 parent diameters with no network point there is a bump (0 = off).
branch_support_px = 5.0
# A network point of at least this score on a root, with no lateral there in the mask, is a lateral of
# length 0: emerged, too young for the mask (unset = off; the demo sets 0.9 for its 11 px/mm model).
# branch_lateral_score = 0.9

[track]
# Plants, lateral roots and branching points are followed from scan to scan in the first scan's frame:
# the same one when it moved less than this (mm) between scans.
plant_gate_mm = 4.0
root_gate_mm = 1.5
point_gate_mm = 1.0

[report]
enabled = true
# Longest side (px) of the overlay thumbnails in report.html.
thumbnail_px = 800

[batch]
# Workers for the local Dask cluster (unset: from CPU cores and memory). --workers wins.
# workers = 4
# Memory per worker, e.g. "4GB" (unset: total memory shared between workers).
# memory_limit = "4GB"
# Address of a running Dask scheduler, e.g. "tcp://10.0.0.5:8786". --scheduler wins.
# scheduler = "tcp://10.0.0.5:8786"

# Regions per plate, as rectangles in pixels of the aligned reference scan:
# {x = left, y = top, width = ..., height = ...}. [regions.default] applies to every plate
# without its own [regions.<plate>] table.
# [regions.default]
# shoot_zone = {x = 0, y = 0, width = 2000, height = 300}
# seed_line = {x = 0, y = 300, width = 2000, height = 60}
# root_zone = {x = 0, y = 360, width = 2000, height = 1640}
'''
