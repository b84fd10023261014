"""Resumable stages: run a unit of work only when its inputs, settings or rootscope changed.

A :class:`Stage` is a function plus its declared input files, output files and settings. The function
reads only its inputs and writes only its outputs (to temporary paths it is given); :func:`run_stage`
moves the outputs into place once the function has returned and then writes a JSON manifest that
records what was consumed:

- each input's size, modification time (ns) and SHA-1 of its content,
- each output's size, modification time and SHA-1 (a deleted or edited output is redone),
- the SHA-1 of the settings (canonical JSON) and the rootscope version.

A stage is up to date when its manifest matches. Checking is cheap: a file whose size and
modification time equal the manifest's is taken as unchanged without reading it; only when the
stat differs is the content hashed (a copied or touched file with the same bytes is still up to
date, and the manifest is refreshed). ``benchmarks/bench_batch.py`` measures these costs.

Interruption is safe at any point: the manifest is removed before a stage runs and written last, and
outputs appear under their final names only complete (``os.replace``). Temporary files left by a killed
process are not removed here, where another process may be writing them: the pipeline removes them
(:func:`rootscope.io.remove_temporaries`) while it holds the experiment's lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, io
from .errors import InputError, RootscopeError

StageFunc = Callable[[Mapping[str, Path], Mapping[str, Path]], None]


@dataclass(frozen=True)
class Stage:
    """One unit of resumable work.

    ``func(inputs, outputs)`` gets the input paths and one temporary path per output (same suffix
    as the final one, in the same folder) and must write every output. ``settings`` is anything
    JSON-able or a pydantic model: the part of the config that changes the result. ``manifest``
    defaults to ``<folder of first output>/.manifests/<name>.<first output name>.json``.
    """

    name: str
    func: StageFunc
    inputs: Mapping[str, Path]
    outputs: Mapping[str, Path]
    settings: Any = None
    manifest: Path | None = None

    def manifest_path(self) -> Path:
        if self.manifest is not None:
            return Path(self.manifest)
        if not self.outputs:
            raise RootscopeError(f"stage {self.name!r} declares no outputs; it cannot be resumed.")
        first = Path(next(iter(self.outputs.values())))
        return first.parent / ".manifests" / f"{self.name}.{first.name}.json"


@dataclass
class Outcome:
    """What :func:`run_stage` did: ``ran`` is False when the stage was up to date; ``reason`` says why
    it ran ("no manifest", "input 'image' changed", ...); ``seconds`` of work."""

    name: str
    ran: bool
    reason: str | None = None
    seconds: float = 0.0
    outputs: dict[str, Path] = field(default_factory=dict)


# ------------------------------------------------------------------------------ fingerprints
def file_sha1(path: str | os.PathLike) -> str:
    """SHA-1 of a file's content (hex)."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """``{"size", "mtime_ns", "sha1"}`` of a file (raises InputError naming it when missing)."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: input file not found; it was moved or deleted during the run.") from None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha1": file_sha1(path)}


def same_file(path: Path, recorded: Mapping[str, Any]) -> bool:
    """True when ``path`` holds the content ``recorded`` (stat first, content hash only if it differs)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    if stat.st_size != recorded.get("size"):
        return False
    if stat.st_mtime_ns == recorded.get("mtime_ns"):
        return True
    return file_sha1(path) == recorded.get("sha1")


def settings_hash(settings: Any) -> str:
    """SHA-1 of settings as canonical JSON (pydantic models are dumped first)."""
    if hasattr(settings, "model_dump"):
        settings = settings.model_dump(mode="json")
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------ checks
def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def _read_manifest(stage: Stage) -> dict[str, Any] | None:
    path = stage.manifest_path()
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None  # a damaged manifest only means: run again


def why_stale(stage: Stage) -> str | None:
    """Why ``stage`` must run, or None when its outputs are up to date."""
    manifest = _read_manifest(stage)
    if manifest is None:
        return "no manifest"
    if manifest.get("rootscope") != __version__:
        return f"rootscope version changed ({manifest.get('rootscope')} -> {__version__})"
    if manifest.get("settings_sha1") != settings_hash(stage.settings):
        return "settings changed"
    base = stage.manifest_path().parent
    for kind, files in (("input", stage.inputs), ("output", stage.outputs)):
        recorded = manifest.get(f"{kind}s", {})
        if set(recorded) != set(files):
            return f"{kind}s differ from the last run"
        for key, path in files.items():
            entry = recorded[key]
            if entry.get("path") != _rel(path, base):
                return f"{kind} '{key}' is another file"
            if not same_file(Path(path), entry):
                return f"{kind} '{key}' {'missing' if not Path(path).exists() else 'changed'}"
    return None


def is_up_to_date(stage: Stage) -> bool:
    """True when ``stage``'s outputs exist and were made from its current inputs and settings."""
    return why_stale(stage) is None


# -------------------------------------------------------------------------------------- run
def run_stage(stage: Stage, *, force: bool = False) -> Outcome:
    """Run ``stage`` unless it is up to date (or ``force``); outputs and manifest are written atomically.

    An exception inside the stage leaves the previous outputs absent or untouched-but-stale (the
    manifest is gone, so the next run redoes the stage) and no temporary files.
    """
    reason = "forced" if force else why_stale(stage)
    if reason is None:
        _refresh(stage)
        return Outcome(stage.name, ran=False, outputs=dict(stage.outputs))
    manifest_path = stage.manifest_path()
    manifest_path.unlink(missing_ok=True)
    inputs = {key: fingerprint(path) for key, path in stage.inputs.items()}
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        temps = {key: stack.enter_context(io.atomic_path(path)) for key, path in stage.outputs.items()}
        stage.func(dict(stage.inputs), temps)
        unwritten = [key for key, tmp in temps.items() if tmp.stat().st_size == 0]
        if unwritten:
            raise RootscopeError(f"stage {stage.name!r} did not write its output(s) {unwritten}.")
    seconds = time.perf_counter() - start
    _write_manifest(stage, inputs, seconds)
    return Outcome(stage.name, ran=True, reason=reason, seconds=seconds, outputs=dict(stage.outputs))


def _write_manifest(stage: Stage, inputs: dict[str, dict[str, Any]], seconds: float) -> None:
    path = stage.manifest_path()
    base = path.parent
    record = {
        "stage": stage.name,
        "rootscope": __version__,
        "settings_sha1": settings_hash(stage.settings),
        "inputs": {key: {"path": _rel(p, base), **inputs[key]} for key, p in stage.inputs.items()},
        "outputs": {key: {"path": _rel(p, base), **fingerprint(p)} for key, p in stage.outputs.items()},
        "seconds": round(seconds, 4),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    io.write_json(path, record)


def _refresh(stage: Stage) -> None:
    """Record new modification times of files whose content was found unchanged (keeps checks cheap)."""
    manifest = _read_manifest(stage)
    assert manifest is not None
    changed = False
    for kind, files in (("inputs", stage.inputs), ("outputs", stage.outputs)):
        for key, path in files.items():
            entry = manifest[kind][key]
            mtime = Path(path).stat().st_mtime_ns
            if entry["mtime_ns"] != mtime:
                entry["mtime_ns"] = mtime
                changed = True
    if changed:
        io.write_json(stage.manifest_path(), manifest)

