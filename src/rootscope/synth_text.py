"""Text on synthetic plates (labels, marker-pen handwriting) from rootscope's own stroke font.

OpenCV's ``putText`` renders its Hershey fonts differently from one release to the next (5.1 changed
the glyphs), so the synthetic plates, and every figure measured on them, moved with the OpenCV
version. Here each glyph is a few polylines on a 4 x 6 grid (x right, y down, baseline at y = 6;
lower case uses the same shapes at x-height, from y = 2), drawn with ``cv2.polylines`` in fixed point,
whose rasterisation has not changed across the releases rootscope allows. Handwriting is the same
strokes slanted and wobbled by a generator seeded from the text, so a text looks the same every time
and draws nothing from the caller's random stream.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
CAP = 6.0  # grid units from the cap line to the baseline
ADVANCE = 5.5  # grid units from one glyph's origin to the next

_UPPER = {
    "A": "0,6 2,0 4,6; 1,4 3,4",
    "B": "0,6 0,0 3,0 4,1 4,2 3,3 0,3; 3,3 4,4 4,5 3,6 0,6",
    "C": "4,1 3,0 1,0 0,1 0,5 1,6 3,6 4,5",
    "D": "0,0 0,6 3,6 4,5 4,1 3,0 0,0",
    "E": "4,0 0,0 0,6 4,6; 0,3 3,3",
    "F": "4,0 0,0 0,6; 0,3 3,3",
    "G": "4,1 3,0 1,0 0,1 0,5 1,6 3,6 4,5 4,3 2,3",
    "H": "0,0 0,6; 4,0 4,6; 0,3 4,3",
    "I": "1,0 3,0; 2,0 2,6; 1,6 3,6",
    "J": "4,0 4,5 3,6 1,6 0,5",
    "K": "0,0 0,6; 4,0 0,4; 1,3 4,6",
    "L": "0,0 0,6 4,6",
    "M": "0,6 0,0 2,3 4,0 4,6",
    "N": "0,6 0,0 4,6 4,0",
    "O": "1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0",
    "P": "0,6 0,0 3,0 4,1 4,2 3,3 0,3",
    "Q": "1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0; 2,4 4,6",
    "R": "0,6 0,0 3,0 4,1 4,2 3,3 0,3; 2,3 4,6",
    "S": "4,1 3,0 1,0 0,1 0,2 1,3 3,3 4,4 4,5 3,6 1,6 0,5",
    "T": "0,0 4,0; 2,0 2,6",
    "U": "0,0 0,5 1,6 3,6 4,5 4,0",
    "V": "0,0 2,6 4,0",
    "W": "0,0 1,6 2,3 3,6 4,0",
    "X": "0,0 4,6; 4,0 0,6",
    "Y": "0,0 2,3 4,0; 2,3 2,6",
    "Z": "0,0 4,0 0,6 4,6",
}
_OTHER = {
    "0": "1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0; 4,1 0,5",
    "1": "1,1 2,0 2,6; 1,6 3,6",
    "2": "0,1 1,0 3,0 4,1 4,2 0,6 4,6",
    "3": "0,0 4,0 2,2 3,2 4,3 4,5 3,6 1,6 0,5",
    "4": "3,6 3,0 0,4 4,4",
    "5": "4,0 0,0 0,3 3,3 4,4 4,5 3,6 0,6",
    "6": "3,0 1,0 0,1 0,5 1,6 3,6 4,5 4,4 3,3 0,3",
    "7": "0,0 4,0 1,6",
    "8": "1,3 0,2 0,1 1,0 3,0 4,1 4,2 3,3 1,3 0,4 0,5 1,6 3,6 4,5 4,4 3,3",
    "9": "4,3 1,3 0,2 0,1 1,0 3,0 4,1 4,5 3,6 1,6",
    "l": "1,0 2,0 2,6 3,6",
    "i": "2,2 2,6; 2,0.6 2,1",
    "j": "3,2 3,7 2,8 1,8; 3,0.6 3,1",
    "t": "2,0 2,5 3,6 4,6; 1,2 3,2",
    "-": "1,3.5 3,3.5",
    "_": "0,6 4,6",
    ".": "2,5.5 2,6",
    ",": "2,5.5 1.5,7",
    ":": "2,2 2,2.5; 2,5.5 2,6",
    "/": "4,0 0,6",
    "+": "2,1.5 2,5.5; 0,3.5 4,3.5",
    "#": "1.5,0.5 1,5.5; 3.5,0.5 3,5.5; 0,2 4,2; 0,4 4,4",
    "(": "3,0 2,1 2,5 3,6",
    ")": "1,0 2,1 2,5 1,6",
    " ": "",
}


def _parse(strokes: str, x_height: bool = False) -> list[np.ndarray]:
    lines = []
    for stroke in filter(None, (s.strip() for s in strokes.split(";"))):
        pts = np.array([[float(v) for v in p.split(",")] for p in stroke.split()])
        if x_height:  # the capital's shape squeezed between x-height (y = 2) and the baseline
            pts[:, 1] = 2 + pts[:, 1] * (CAP - 2) / CAP
        lines.append(pts)
    return lines


GLYPHS: dict[str, list[np.ndarray]] = {
    **{c: _parse(s) for c, s in _UPPER.items()},
    **{c.lower(): _parse(s, x_height=True) for c, s in _UPPER.items()},
    **{c: _parse(s) for c, s in _OTHER.items()},
}


def text_strokes(text: str, height: float, slant: float = 0.0, wobble: float = 0.0) -> list[np.ndarray]:
    """Polylines (x, y px, origin at the start of the baseline) of ``text`` with capitals ``height`` px.

    ``slant`` leans the strokes (x shift per unit of height above the baseline); ``wobble`` moves each
    point by a random offset of that standard deviation (grid units), seeded from the text.
    """
    unknown = sorted(set(text) - set(GLYPHS))
    if unknown:
        raise ValueError(f"no glyph for {unknown} in rootscope's stroke font; use {''.join(sorted(GLYPHS))}")
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    unit = height / CAP
    lines = []
    for i, char in enumerate(text):
        for pts in GLYPHS[char]:
            p = pts + (rng.normal(0, wobble, pts.shape) if wobble else 0.0)
            x = (p[:, 0] + i * ADVANCE + slant * (CAP - p[:, 1])) * unit
            lines.append(np.stack([x, (p[:, 1] - CAP) * unit], axis=1))
    return lines


def draw_text(canvas: np.ndarray, text: str, origin: tuple[float, float], height: float, colour: int,
              thickness: int = 1, slant: float = 0.0, wobble: float = 0.0) -> np.ndarray:
    """Draw ``text`` anti-aliased into ``canvas`` (in place) with its baseline starting at ``origin`` (x, y px)."""
    lines = [np.rint((pts + origin) * _ONE).astype(np.int32) for pts in text_strokes(text, height, slant, wobble)]
    if lines:
            cv2.polylines(canvas, lines, False, colour, max(1, int(thickness)), cv2.LINE_AA, _SHIFT)
    return canvas
