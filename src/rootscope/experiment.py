"""Find the plates of an experiment and their scans, in time order.

Two layouts under ``experiment/<input.raw>`` (default ``raw/``):

- folders: ``raw/<plate>/<scans>``, one folder per plate;
- flat: ``raw/<scans>`` with names read by ``input.flat_pattern`` (default: ``At_20251103_031.tif``
  = species ``At``, session 2025-11-03, plate ``031``; the plate is ``At_031``).

Capture times come from the file name (``input.time_patterns``, else rootscope's built-in patterns),
else from TIFF/EXIF metadata, else (flat layout) the session date. Scans are sorted by time.
Files that cannot be scans (empty, not an image, an unreadable header, a name the flat pattern does
not read) are listed in :attr:`Experiment.problems` and left out; they never stop the run. Discovery
only opens file headers: a scan that is damaged further in fails later, when its frame is read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


from . import io
from .config import Config, load_config
from .errors import InputError

#: A regex that never matches: reads the capture time from metadata only.
_NO_NAME_TIME = (r"(?!)",)


@dataclass
class Plate:
    """One plate: its scans in time order and their capture times (None when unknown)."""

    name: str
    scans: list[Path]
    times: list[datetime | None]
    species: str | None = None

    def hours(self) -> list[float | None]:
        """Hours since the plate's first scan with a known time (None where the time is unknown)."""
        known = [t for t in self.times if t is not None]
        if not known:
            return [None] * len(self.times)
        first = min(known)
        return [None if t is None else (t - first).total_seconds() / 3600.0 for t in self.times]


@dataclass
class Problem:
    """A file that was left out of the experiment, and why."""

    path: Path
    message: str
    plate: str = ""


@dataclass
class Experiment:
    """An experiment folder: its settings, plates and the files that were left out."""

    root: Path
    config: Config
    plates: list[Plate]
    problems: list[Problem] = field(default_factory=list)

    @property
    def out(self) -> Path:
        """Where every result goes (``experiment/out``); raw scans are never written."""
        return self.root / "out"

    @property
    def n_scans(self) -> int:
        return sum(len(p.scans) for p in self.plates)


def discover(root: str | os.PathLike, config: Config | None = None) -> Experiment:
    """Find plates and scans under ``root`` (settings from ``root/rootscope.toml`` unless given).

    Raises :class:`InputError` when ``root`` or its raw folder is missing or holds no usable scan;
    single bad files are recorded as problems instead.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: experiment folder not found.")
    config = config if config is not None else load_config(root)
    raw = root / config.input.raw
    layout_hint = (f"Put the scans in {raw}/<plate>/ (one folder per plate) or directly in {raw}/ "
                   "with names like At_20251103_031.tif; `rootscope init` creates the layout.")
    if not raw.is_dir():
        raise InputError(f"{raw}: raw scan folder not found. {layout_hint}")
    entries = sorted(p for p in raw.iterdir() if not p.name.startswith("."))
    folders = [p for p in entries if p.is_dir()]
    layout = config.input.layout
    if layout == "auto":
        layout = "folders" if folders else "flat"
    problems: list[Problem] = []
    if layout == "folders":
        plates = _folder_plates(folders, config, problems)
        problems += [Problem(p, f"not inside a plate folder of {raw}; left out") for p in entries if p.is_file()]
    else:
        plates = _flat_plates([p for p in entries if p.is_file()], config, problems)
    if not plates:
        found = "; ".join(f"{p.path.name}: {p.message}" for p in problems[:5])
        raise InputError(f"{raw}: no usable scans found{f' ({found})' if found else ''}. {layout_hint}")
    return Experiment(root, config, plates, problems)


def _folder_plates(folders: list[Path], config: Config, problems: list[Problem]) -> list[Plate]:
    patterns = config.input.time_patterns or None
    plates = []
    for folder in folders:
        scans = _usable([p for p in sorted(folder.iterdir()) if not p.name.startswith(".")], folder.name, problems)
        if not scans:
            problems.append(Problem(folder, "plate folder holds no usable scans; plate left out", folder.name))
            continue
        scans = io.sort_by_time(scans, patterns)
        plates.append(Plate(folder.name, scans, [io.acquisition_time(p, patterns) for p in scans]))
    return plates


def _flat_plates(files: list[Path], config: Config, problems: list[Problem]) -> list[Plate]:
    pattern = re.compile(config.input.flat_pattern)
    groups: dict[str, list[tuple[datetime | None, Path]]] = {}
    species: dict[str, str | None] = {}
    for path in _usable(files, "", problems):
        match = pattern.search(path.stem)
        if match is None:
            problems.append(Problem(path, f"name does not match input.flat_pattern {pattern.pattern!r}; left out"))
            continue
        parts = match.groupdict()
        name = "_".join(v for v in (parts.get("species"), parts["plate"]) if v)
        rest = path.stem[: match.start()] + path.stem[match.end():]
        time = (io.parse_time(rest, config.input.time_patterns or None)
                or io.acquisition_time(path, _NO_NAME_TIME) or _session_date(parts.get("session")))
        groups.setdefault(name, []).append((time, path))
        species[name] = parts.get("species")
    plates = []
    for name in sorted(groups):
        ordered = sorted(groups[name], key=lambda tp: (tp[0] is None, tp[0] or datetime.min, tp[1].name))
        plates.append(Plate(name, [p for _, p in ordered], [t for t, _ in ordered], species[name]))
    return plates


def _session_date(session: str | None) -> datetime | None:
    if session is None:
        return None
    try:
        return datetime.strptime(session, "%Y%m%d")
    except ValueError:
        return None


def _usable(paths: list[Path], plate: str, problems: list[Problem]) -> list[Path]:
    """Keep the files that look like readable scans; record the others (and a second scan whose name
    differs only in its suffix: its results would overwrite the first one's)."""
    usable: list[Path] = []
    stems: dict[str, Path] = {}
    for path in paths:
        problem = _probe(path)
        if problem is None and path.stem in stems:
            problem = f"same name as {stems[path.stem].name} (results are named by the scan's name); rename one"
        if problem is None:
            stems[path.stem] = path
            usable.append(path)
        elif path.is_file():
            problems.append(Problem(path, problem, plate))
    return usable


def _probe(path: Path) -> str | None:
    """Why ``path`` cannot be a scan (reading only its header), or None when it looks fine."""
    if not path.is_file():
        return "not a file"
    if path.suffix.lower() not in io.IMAGE_SUFFIXES:
        return f"not a PNG, JPEG or TIFF image ({path.suffix or 'no suffix'}); left out"
    if path.stat().st_size == 0:
        return "file is empty (0 bytes); re-copy the scan"
    try:
        io.image_size(path)
    except InputError as exc:  # too large, or a broken header
        return str(exc).removeprefix(f"{path}: ")
    return None
