"""Read and write images, tables and JSON; pixel scale; acquisition times; atomic writes.

Images are converted once, here, to float32 in [0, 1] (``H x W`` or ``H x W x C``, RGB order); the
original bit depth is kept on the :class:`Scan` so that outputs can be written back at the same depth.
Label images and masks are read as they are (uint8 class indices). Every write goes to a temporary
file in the target folder and is renamed into place, so an interrupted run never leaves half a file;
:func:`protect` is the one guard that keeps those writes off the inputs, and :func:`folder_lock` keeps
two runs out of one output folder.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import re
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np
import tifffile
from PIL import Image

from .errors import InputError, OutputError, RootscopeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MM_PER_INCH = 25.4
#: DPI values written by software that knows no real resolution; read as "no scale in the file".
PLACEHOLDER_DPI = (72.0, 96.0)
#: Largest image (width x height, pixels) the decoders accept: 2^30, about 32768 x 32768, so 20000 x 20000
#: and whole trays at 2400 dpi (20400 x 28080) read; it replaces PIL's decompression-bomb check (89 Mpx)
#: and equals OpenCV's own PNG limit. A larger file is refused with an InputError naming its size.
MAX_PIXELS = 1 << 30
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL's bomb check, now at our limit; images are checked in _open_pil
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: outputs get the usual permissions, not mkstemp's private 0600

#: Default acquisition-time patterns tried on file names, in order. Each regex uses named groups
#: year, month, day and optionally hour, minute, second. ``plateA_2025-10-14_03h00.tif``,
#: ``scan_20251014_030000.png`` and ``plate1_2025-10-14T03-00.jpg`` all match.
DEFAULT_TIME_PATTERNS = (
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?:[_T -](?P<hour>\d{2})[h:-]?(?P<minute>\d{2})?(?:[m:-]?(?P<second>\d{2}))?)?",
    r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})[_T-](?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})?",
)


@dataclass
class Scan:
    """One image as read from disk.

    ``pixels`` is float32 in [0, 1], ``H x W`` (gray) or ``H x W x 3/4`` (RGB/RGBA); uint8 or uint16
    when read with ``read_scan(..., convert=False)``. ``bit_depth`` is
    8 or 16 (of the file). ``px_per_mm`` comes from the file's resolution tags, or None when the file has
    none (never assumed). ``time`` is the acquisition time when known.
    """

    path: Path
    pixels: np.ndarray
    bit_depth: int
    px_per_mm: float | None = None
    time: datetime | None = None

    @property
    def stem(self) -> str:
        return self.path.stem


# --------------------------------------------------------------------------------------- reading
def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found. Check the path (and the working folder).")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file.")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes). Re-export or re-copy the scan.")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(
            f"{path}: unsupported format '{path.suffix}'. Use PNG, JPEG or TIFF "
            f"({', '.join(IMAGE_SUFFIXES)})."
        )


def _corrupt(path: Path, detail: object) -> InputError:
    return InputError(
        f"{path}: cannot be read as an image ({detail}). The file is truncated, corrupt or not an "
        "image: re-export or re-copy it, or move it out of the input folder."
    )


def _check_size(path: Path, width: int, height: int) -> None:
    """Refuse images over :data:`MAX_PIXELS` before they are decoded."""
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{path}: {width} x {height} px ({width * height / 1e6:.0f} Mpx) is over rootscope's limit of "
            f"{MAX_PIXELS / 1e6:.0f} Mpx (rootscope.io.MAX_PIXELS); crop the scan into parts or scan at a lower dpi."
        )


@contextlib.contextmanager
def _open_pil(path: Path) -> Iterator[Image.Image]:
    """``Image.open`` (header only) checked against :data:`MAX_PIXELS` rather than PIL's bomb warning."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked here instead
            im = Image.open(path)
    except Image.DecompressionBombError as exc:  # over twice PIL's limit, which is ours (below)
        raise InputError(f"{path}: over rootscope's limit of {MAX_PIXELS / 1e6:.0f} Mpx ({exc}); crop the scan "
                         "into parts or scan at a lower dpi.") from None
    with im:
        _check_size(path, *im.size)
        yield im


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image from its header, without decoding it.

    Raises InputError naming the file when it is over :data:`MAX_PIXELS` or its header is unreadable.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                size = tif.pages[0].imagewidth, tif.pages[0].imagelength
        else:
            with _open_pil(path) as im:
                size = im.size
    except InputError:
        raise
    except Exception as exc:  # decoders raise many kinds for broken headers
        raise _corrupt(path, exc) from exc
    _check_size(path, *size)
    return size


def header_px_per_mm(path: str | os.PathLike) -> float | None:
    """The px/mm of an image's resolution tag, read from its header without decoding the pixels.

    None when the file has no real resolution tag (see :func:`_scale_from_dpi`); raises InputError
    naming the file when it is missing, unreadable or over :data:`MAX_PIXELS`.
    """
    path = Path(path)
    _check_readable(path)
    image_size(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                return _tiff_px_per_mm(tif.pages[0])
        with _open_pil(path) as im:
            dpi = im.info.get("dpi")
    except InputError:
        raise
    except Exception as exc:  # decoders raise many kinds for broken headers
        raise _corrupt(path, exc) from exc
    return _scale_from_dpi(float(dpi[0])) if dpi and dpi[0] else None


def _read_raw(path: Path) -> tuple[np.ndarray, float | None]:
    """Decode a file into its native dtype (RGB order) and its px/mm when tagged.

    Raises InputError for files over :data:`MAX_PIXELS`. Uncompressed TIFFs come back as a read-only
    memory map of the file; other files are decoded once (colour order swapped in place).
    """
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return _read_tiff(path)
    px_per_mm = None
    try:
        with _open_pil(path) as im:
            dpi = im.info.get("dpi")
            if suffix in (".jpg", ".jpeg"):
                im.load()  # PIL raises on a truncated JPEG; OpenCV would fill it with grey
                array = np.asarray(im)
                if im.mode not in ("L", "RGB", "RGBA"):
                    array = np.asarray(im.convert("RGB"))
            else:
                array = None
    except (OSError, SyntaxError, ValueError) as exc:
        raise _corrupt(path, exc) from exc
    if array is None:  # PNG: OpenCV keeps 16-bit colour, which PIL does not
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise _corrupt(path, "the PNG decoder failed")
        if array.ndim == 3:
            code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
            cv2.cvtColor(array, code, dst=array)  # in place: no second full-size copy
    if dpi and dpi[0]:
        px_per_mm = _scale_from_dpi(float(dpi[0]))
    return array, px_per_mm


def _scale_from_dpi(dpi: float) -> float | None:
    """px/mm from a DPI tag, or None for placeholders that are not a real scan resolution.

    1, 72 and 96 dpi are what image software writes when it knows nothing (JFIF and screen
    defaults); taking them as a scale would silently give wrong millimetres.
    """
    if dpi <= 1.0 or any(abs(dpi - d) < 0.05 for d in PLACEHOLDER_DPI):
        return None
    return dpi / MM_PER_INCH


def _read_tiff(path: Path) -> tuple[np.ndarray, float | None]:
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) > 1:
                warnings.warn(f"{path}: has {len(tif.pages)} pages; using the first.", stacklevel=3)
            page = tif.pages[0]
            _check_size(path, page.imagewidth, page.imagelength)
            # uncompressed and contiguous: a read-only map of the file, paged in as tiles are read
            array = page.asarray(out="memmap") if page.is_memmappable else page.asarray()
            px_per_mm = _tiff_px_per_mm(page)
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many kinds for broken files
        raise _corrupt(path, exc) from exc
    if not array.dtype.isnative:
        array = np.array(array, dtype=array.dtype.newbyteorder("="))  # big-endian file: one native copy
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[2] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar configuration
    return array, px_per_mm


def _tiff_px_per_mm(page: Any) -> float | None:
    tags = page.tags
    if "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    if not den or not num:
        return None
    per_unit = num / den
    unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    if unit == 2:  # inch
        return _scale_from_dpi(per_unit)
    if unit == 3:  # centimetre
        return _scale_from_dpi(per_unit * 2.54)
    return None  # no absolute unit


def to_float(array: np.ndarray, path: Path | str = "<array>") -> tuple[np.ndarray, int]:
    """Convert an integer image to float32 in [0, 1]; returns ``(pixels, bit_depth)``.

    uint8 is divided by 255, uint16 by 65535; bool gives 0/1; float input must already lie in [0, 1].
    Other types (int32, float outside [0, 1]) are refused: say how the image was exported.
    """
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0, 8
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0, 16
    if array.dtype == bool:
        return array.astype(np.float32), 8
    if array.dtype.kind == "f":
        lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
        if lo >= 0.0 and hi <= 1.0:
            return array.astype(np.float32), 16
    raise InputError(
        f"{path}: pixel type {array.dtype} is not supported. Export the scan as 8- or 16-bit "
        "PNG or TIFF (or float in [0, 1])."
    )


def read_scan(path: str | os.PathLike, time_patterns: Sequence[str] | None = None, *,
              convert: bool = True) -> Scan:
    """Read one image file into a :class:`Scan` (float32 pixels in [0, 1], RGB order).

    ``convert=False`` keeps 8- and 16-bit pixels as the file's uint8 / uint16 (a read-only memory map
    for an uncompressed TIFF), for callers that convert tile by tile with :func:`to_float` (the pixel
    classifier and the U-Net do): a 20000 x 20000 RGB scan then takes 1.2 GB, not 4.8 GB of floats.
    Raises :class:`InputError` naming the file when it is missing, empty, of an unsupported format,
    over :data:`MAX_PIXELS`, truncated or not an image. Grey images that were stored as RGB stay RGB.
    """
    path = Path(path)
    _check_readable(path)
    array, px_per_mm = _read_raw(path)
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 2:
        raise _corrupt(path, f"unexpected shape {array.shape}")
    if not convert and array.dtype in (np.uint8, np.uint16):
        pixels, bit_depth = array, 8 * array.dtype.itemsize
    else:
        pixels, bit_depth = to_float(array, path)
    return Scan(path, pixels, bit_depth, px_per_mm, acquisition_time(path, time_patterns))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as float32 in [0, 1] (see :func:`read_scan` for errors)."""
    return read_scan(path).pixels


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a label image or mask as uint8 class indices (0 = unlabelled / background).

    RGB label files whose three channels are equal are accepted; anything else that is not a single
    channel of small integers is refused with a message that says how to export labels.
    """
    path = Path(path)
    _check_readable(path)
    array, _ = _read_raw(path)
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 2:
        raise InputError(f"{path}: label image or mask is {' x '.join(map(str, array.shape))} px; it must be "
                         "the size of its scan (at least 2 x 2 px).")
    if array.ndim == 3:
        if array.shape[2] == 4:
            array = array[..., :3]
        if not (np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2])):
            raise InputError(
                f"{path}: label image has colours; save labels as a single-channel PNG whose values "
                "are class indices (0 = unlabelled, 1..K = classes)."
            )
        array = array[..., 0]
    if array.dtype.kind not in "ub" or int(array.max(initial=0)) > 255:
        raise InputError(
            f"{path}: label values must be integers 0..255 (got {array.dtype}, max "
            f"{array.max()}). Save labels as an 8-bit single-channel PNG."
        )
    return array.astype(np.uint8)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found.")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def expand_inputs(items: Iterable[str | os.PathLike], skip: Sequence[str] = ()) -> list[Path]:
    """Turn CLI arguments (files and folders) into a list of image files; a folder means its images,
    less those whose names match a ``skip`` pattern (e.g. ``*_mask.png``: outputs of an earlier run)."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = [p for p in list_images(path) if not any(fnmatch.fnmatch(p.name, pat) for pat in skip)]
            if not found:
                raise InputError(f"{path}: folder holds no PNG, JPEG or TIFF images.")
            paths.extend(found)
        else:
            paths.append(path)
    if not paths:
        raise InputError("no input images given.")
    return paths


def mask_sidecar(mask: str | os.PathLike) -> Path:
    """The JSON beside a mask that names its classes: ``masks/a_mask.png`` -> ``masks/a_mask.json``."""
    return Path(mask).with_suffix(".json")


def read_mask_classes(mask: str | os.PathLike) -> list[str] | None:
    """Class names of a mask (value ``k`` is ``classes[k - 1]``) from its :func:`mask_sidecar`, as
    ``rootscope segment`` and ``rootscope run`` write it; None when the mask has none."""
    sidecar = mask_sidecar(mask)
    if not sidecar.is_file():
        return None
    data = read_json(sidecar)
    classes = data.get("classes") if isinstance(data, dict) else None
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise InputError(f'{sidecar}: expected {{"classes": [names of mask values 1, 2, ...]}}; segment the '
                         "images again with `rootscope segment`, or delete the file.")
    return classes


# ------------------------------------------------------------------------------ time and scale
def parse_time(name: str, patterns: Sequence[str] | None = None) -> datetime | None:
    """Acquisition time from a file name, or None when no pattern matches.

    ``patterns`` are regexes with named groups ``year, month, day[, hour, minute, second]``; the
    defaults (:data:`DEFAULT_TIME_PATTERNS`) read ``2025-10-14_03h00`` and ``20251014_030000``.
    """
    for pattern in patterns or DEFAULT_TIME_PATTERNS:
        match = re.search(pattern, name)
        if not match:
            continue
        parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        try:
            return datetime(
                parts["year"], parts["month"], parts["day"],
                parts.get("hour", 0), parts.get("minute", 0), parts.get("second", 0),
            )
        except (KeyError, ValueError):
            continue
    return None


def _metadata_time(path: Path) -> datetime | None:
    """DateTime from TIFF tags or EXIF, when the file carries one."""
    try:
        with _open_pil(path) as im:
            exif = im.getexif()
            for tag in (36867, 306):  # DateTimeOriginal, DateTime
                value = exif.get(tag) or exif.get_ifd(0x8769).get(tag)
                if value:
                    return datetime.strptime(str(value).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except (OSError, ValueError, SyntaxError, InputError):
        return None
    return None


def acquisition_time(path: str | os.PathLike, patterns: Sequence[str] | None = None) -> datetime | None:
    """Acquisition time of a scan: file-name pattern first, then TIFF/EXIF metadata, else None."""
    path = Path(path)
    return parse_time(path.stem, patterns) or (_metadata_time(path) if path.exists() else None)


def sort_by_time(paths: Iterable[str | os.PathLike], patterns: Sequence[str] | None = None) -> list[Path]:
    """Sort scans by acquisition time (files without a time go last, by name)."""
    keyed = [(acquisition_time(p, patterns), Path(p)) for p in paths]
    return [p for t, p in sorted(keyed, key=lambda kv: (kv[0] is None, kv[0] or datetime.min, kv[1].name))]


def resolve_px_per_mm(scan: Scan, given: float | None) -> float:
    """Pixel scale to use: the value given (config or CLI) wins, else the file's tags.

    Raises :class:`RootscopeError` when neither exists: a scale is never assumed silently.
    """
    if given is not None:
        if given <= 0:
            raise RootscopeError(f"px_per_mm must be positive (got {given}).")
        return float(given)
    if scan.px_per_mm:
        return scan.px_per_mm
    raise RootscopeError(
        f"{scan.path}: no pixel scale in the file. Pass --px-per-mm (e.g. 600 dpi = 23.62 px/mm) "
        "or set px_per_mm in rootscope.toml."
    )


# --------------------------------------------------------------------------------------- writing
#: The inputs of the running command, ``{identity: path}`` (see :func:`protect`).
_INPUTS: ContextVar[Mapping[object, Path]] = ContextVar("rootscope_inputs", default=MappingProxyType({}))
#: Names :func:`atomic_path` gives its temporary files (and those of a writer inside, writing atomically).
TEMP_PATTERN = ".*.tmp*"
LOCK_NAME = ".lock"


def _identities(path: Path) -> list[object]:
    """What makes two paths one file: the resolved path and, when it exists, device and inode."""
    keys: list[object] = [str(path.resolve())]
    with contextlib.suppress(OSError):
        stat = path.stat()
        keys.append((stat.st_dev, stat.st_ino))
    return keys


def _refuse_input(out: Path) -> None:
    inputs = _INPUTS.get()
    for key in _identities(out):
        if key in inputs:
            raise OutputError(f"{out}: would overwrite the input {inputs[key]} (inputs are never overwritten); "
                              "choose another output file or folder.")


@contextlib.contextmanager
def protect(inputs: Iterable[str | os.PathLike], outputs: Iterable[str | os.PathLike] = (),
            folders: Iterable[str | os.PathLike] = ()) -> Iterator[None]:
    """Inputs are never overwritten: the one guard of every command that writes.

    Raises :class:`OutputError` at once when one of ``outputs`` is one of ``inputs`` or is named twice
    (two inputs that would write one file), or an input lies
    inside one of ``folders`` (output folders whose file names rootscope chooses); until the block ends,
    every write through this module (:func:`atomic_path`) refuses to replace one of ``inputs``. Two paths
    are one file when their resolved paths, or their device and inode (a hard link), are equal. The
    block guards this process: work sent to other processes is covered by the checks made up front.
    """
    known = dict(_INPUTS.get())
    for item in inputs:
        known.update(dict.fromkeys(_identities(Path(item)), Path(item)))
    token = _INPUTS.set(known)
    try:
        for folder in folders:
            root = Path(folder).resolve()
            inside = next((p for p in known.values() if p.resolve().is_relative_to(root)), None)
            if inside is not None:
                raise OutputError(f"{inside}: an input inside the output folder {folder}, which rootscope "
                                  f"fills; move it out of {folder}.")
        seen: dict[Path, Path] = {}
        for out in map(Path, outputs):
            _refuse_input(out)
            if out.resolve() in seen:
                raise OutputError(f"{out}: two inputs would write this one output (the inputs have one stem, "
                                  "e.g. a.png and a.tif); rename one of them or give them separate runs.")
            seen[out.resolve()] = out
        yield
    finally:
        _INPUTS.reset(token)


@contextlib.contextmanager
def _writable(folder: Path) -> Iterator[None]:
    """Turn "permission denied" (or a read-only disk) while writing in ``folder`` into an OutputError."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise OutputError(f"{folder}: cannot write there ({exc.strerror or 'permission denied'}); choose an "
                          "output folder you can write to, or make this one writable (chmod u+w).") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. Raises
    :class:`OutputError` when ``path`` is a protected input (:func:`protect`) or its folder is not
    writable.
    """
    path = Path(path)
    _refuse_input(path)
    with _writable(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    try:
        yield tmp_path
        with _writable(path.parent):
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporary files (:data:`TEMP_PATTERN`) that killed writers left anywhere under ``folder``.

    Only safe while no other process writes there: hold :func:`folder_lock`. Returns how many went.
    """
    removed = 0
    for leftover in Path(folder).rglob(TEMP_PATTERN) if Path(folder).is_dir() else ():
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def _lock_holder(lock: Path) -> dict[str, Any] | None:
    """The ``pid`` and ``host`` written in a lock file; None when it is gone, {} when it is unreadable."""
    try:
        holder = json.loads(lock.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _has_ended(holder: dict[str, Any]) -> bool:
    """True when the holder was a process of this host that no longer runs."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as another user
        return False
    return False


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, notify: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the block, so that one process at a time works in ``folder``.

    The lock file appears whole and atomically: its content (the holder's pid, host and start time) is
    written to a temporary file that is then hard-linked to ``.lock``, which fails when ``.lock`` exists.
    A folder locked by a running process raises :class:`OutputError` naming the lock file and its holder;
    a lock left by a process of this host that has ended is taken over, with a message to ``notify``
    (default: a warning). Taking over is safe when several processes find the same stale lock at once:
    each first renames ``.lock`` to a name of its own and keeps it only if it still holds the stale
    content it judged (else it links it back: it was a live lock just made by another). The lock file is
    removed when the block ends, also on error.
    """
    folder = Path(folder)
    lock = folder / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": datetime.now().isoformat(timespec="seconds"),
          "token": os.urandom(8).hex()}
    with _writable(folder):
        folder.mkdir(parents=True, exist_ok=True)
        mine = folder / f".{LOCK_NAME}.{me['token']}.new"
        mine.write_text(json.dumps(me), encoding="utf-8")
        try:
            while not _link_lock(mine, lock):
                holder = _lock_holder(lock)
                if holder is None:
                    continue  # released meanwhile
                who = (f"process {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}"
                       if holder else "a process unknown: the file cannot be read")
                if not _has_ended(holder):
                    raise OutputError(f"{lock}: another rootscope run works in {folder} ({who}); wait for it to "
                                      "end. If no run is going on there, delete the lock file.") from None
                if _remove_stale(lock, holder, folder / f".{LOCK_NAME}.{me['token']}.stale"):
                    (notify or warnings.warn)(f"{lock}: taking over the lock of {who}, which has ended.")
        finally:
            mine.unlink(missing_ok=True)
    try:
        yield lock
    finally:
        if _lock_holder(lock) == me:
            lock.unlink(missing_ok=True)


def _link_lock(source: Path, lock: Path) -> bool:
    """Make ``lock`` a hard link to ``source`` (True), or False when ``lock`` exists."""
    try:
        os.link(source, lock)
    except FileExistsError:
        return False
    return True


def _remove_stale(lock: Path, holder: dict[str, Any], grave: Path) -> bool:
    """Remove ``lock`` if it still holds ``holder``'s content; True when this call removed it."""
    try:
        os.rename(lock, grave)
    except FileNotFoundError:
        return False  # another process took it away first
    if _lock_holder(grave) == holder:
        grave.unlink()
        return True
    _link_lock(grave, lock)  # a live lock, made since it was read: put it back
    grave.unlink()
    return False


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON (indented, NumPy scalars and arrays converted) atomically."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, (Path, datetime)):
            return str(obj)
        raise TypeError(f"cannot write {type(obj).__name__} to JSON")

    return write_text(path, json.dumps(data, indent=2, default=default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}). Delete it to have it rewritten.") from exc


def write_table(path: str | os.PathLike, table: Any) -> Path:
    """Write a pandas DataFrame atomically as CSV or Parquet (by suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return path


def from_float(pixels: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Float image in [0, 1] -> uint8 or uint16 (rounded, clipped)."""
    if bit_depth not in (8, 16):
        raise RootscopeError(f"bit depth must be 8 or 16 (got {bit_depth}).")
    top = 255 if bit_depth == 8 else 65535
    out = np.clip(np.rint(np.asarray(pixels, dtype=np.float32) * top), 0, top)
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)


def write_image(
    path: str | os.PathLike,
    image: np.ndarray,
    bit_depth: int | None = None,
    px_per_mm: float | None = None,
    jpeg_quality: int = 95,
) -> Path:
    """Write an image atomically (PNG, JPEG or TIFF by suffix; RGB order in ``image``).

    Float images in [0, 1] are scaled to ``bit_depth`` (default 8); integer images (masks, labels)
    are written as they are. JPEG holds 8 bits only: float images are written at 8 bits and uint16
    images are scaled to 8 bits (value / 257, rounded). ``px_per_mm`` is stored as the resolution
    (DPI; whole dots per inch in JPEG) when given.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    array = np.asarray(image)
    jpeg = suffix in (".jpg", ".jpeg")
    if array.dtype.kind == "f":
        array = from_float(array, 8 if jpeg else bit_depth or 8)
    elif array.dtype == bool:
        array = array.astype(np.uint8)
    elif jpeg and array.dtype == np.uint16:
        array = np.rint(array / 257.0).astype(np.uint8)
    if suffix in (".tif", ".tiff"):
        kwargs: dict[str, Any] = {}
        if px_per_mm:
            kwargs = {"resolution": (px_per_mm * 10.0, px_per_mm * 10.0), "resolutionunit": "CENTIMETER"}
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, array, photometric="rgb" if array.ndim == 3 else "minisblack", **kwargs)
        return path
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise RootscopeError(f"{path}: cannot write '{suffix}'; use .png, .jpg or .tif.")
    bgr = array
    if array.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR
        bgr = cv2.cvtColor(array, code)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix != ".png" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(suffix, bgr, params)
    if not ok:
        raise RootscopeError(f"{path}: OpenCV could not encode the image ({array.dtype}, {array.shape}).")
    data = buf.tobytes()
    if px_per_mm and suffix == ".png":
        data = _png_with_dpi(data, px_per_mm)
    elif px_per_mm and jpeg:
        data = _jpeg_with_dpi(data, px_per_mm)
    return write_bytes(path, data)


def _jpeg_with_dpi(jpeg: bytes, px_per_mm: float) -> bytes:
    """Set the JFIF density (whole dots per inch) of a JPEG whose first segment is JFIF APP0."""
    import struct

    if jpeg[2:4] != b"\xff\xe0" or jpeg[6:11] != b"JFIF\x00":
        return jpeg
    dpi = min(65535, max(1, int(round(px_per_mm * MM_PER_INCH))))
    return jpeg[:13] + struct.pack(">BHH", 1, dpi, dpi) + jpeg[18:]


def _png_with_dpi(png: bytes, px_per_mm: float) -> bytes:
    """Insert a pHYs chunk (pixels per metre) after IHDR."""
    import struct
    import zlib

    ppm = int(round(px_per_mm * 1000.0))
    body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]
