"""``out/report.html``: one self-contained page (pictures embedded) that summarises an experiment run.

Sections: the run (plates, scans, failures), plots over time (hours since each plate's first scan)
of primary root length and lateral count per plant and plate, and projected area per class and
plate; then per plate the overlay thumbnails (aligned scan, roots coloured by order, branching points,
tips) and the per-plant traits of its last scan. Plant numbers are per scan: plants are not yet
followed from scan to scan, so a line joins the plants that carry the same number.
"""

from __future__ import annotations

import base64
import html
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__, io

#: Per-plant traits shown in the plate tables.
PLANT_COLUMNS = ["plant", "primary_length_mm", "total_length_mm", "lateral_count", "lateral_density_per_cm",
                 "mean_lateral_length_mm", "depth_mm", "width_mm", "network_area_mm2", "warning"]
#: Thumbnails per plate (evenly spaced over its scans, always the first and the last).
THUMBNAILS = 4

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;color:#222;
     padding:0 1em;line-height:1.4}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
.meta{color:#666} .bad{color:#b00020}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right} th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0} figure img{width:280px;border:1px solid #ccc} figcaption{font-size:.8em;color:#555}
img.plot{max-width:100%}
"""


def write_report(out: str | os.PathLike, *, title: str = "rootscope report", summary: str = "",
                 plates: list[str] | None = None, thumbnails: dict[str, list[Path]] | None = None,
                 path: str | os.PathLike | None = None) -> Path:
    """Write ``out/report.html`` (or ``path``) from the tables in ``out`` (traits.csv, classes.csv,
    failures.csv).

    ``plates`` orders the plate sections (default: as in traits.csv); ``thumbnails`` maps a plate to
    its overlay pictures in scan order (default: ``out/<plate>/overlays/*.png``).
    """
    out = Path(out)
    traits = _read(out / "traits.csv")
    classes = _read(out / "classes.csv")
    failures = _read(out / "failures.csv")
    plates = plates if plates is not None else (list(dict.fromkeys(traits.plate)) if len(traits) else [])
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>rootscope {__version__}, {datetime.now():%Y-%m-%d %H:%M}. "
             f"{html.escape(summary)}</p>",
             _overview(traits, failures)]
    if len(traits):
        parts.append("<h2>Over time</h2><p class='meta'>Hours since each plate's first scan. Plant numbers are "
                     "per scan (plants are not yet followed from scan to scan): a thin line joins the plants "
                     "with the same number.</p>")
        parts.append(_img(_trait_plot(traits), "plot", "primary root length and lateral count over time"))
    if len(classes):
        parts.append(_img(_class_plot(classes), "plot", "projected area per class over time"))
    for plate in plates:
        own = thumbnails.get(plate) if thumbnails else sorted((out / plate / "overlays").glob("*.png"))
        parts.append(_plate_section(plate, traits[traits.plate == plate] if len(traits) else traits, own or []))
    if len(failures):
        parts.append("<h2 class='bad'>Failures</h2>" + failures.to_html(index=False, escape=True, border=0))
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")
    return io.write_text(path if path is not None else out / "report.html", page)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True) if path.exists() else pd.DataFrame()


def _overview(traits: pd.DataFrame, failures: pd.DataFrame) -> str:
    if not len(traits):
        return "<p class='bad'>No scan was measured.</p>"
    scans = traits.groupby("plate").scan.nunique()
    plants = traits[traits.plant > 0].groupby(["plate", "scan"]).plant.nunique().groupby("plate").max()
    table = pd.DataFrame({"scans measured": scans, "plants (most in one scan)": plants}).fillna(0).astype(int)
    bad = f"<p class='bad'>{len(failures)} failures (listed at the end and in failures.csv).</p>" if len(failures) else ""
    return f"<h2>Plates</h2>{table.to_html(border=0)}{bad}"


def _plate_section(plate: str, traits: pd.DataFrame, thumbnails: list[Path]) -> str:
    parts = [f"<h2>Plate {html.escape(plate)}</h2>"]
    if thumbnails:
        picks = sorted(set(np.linspace(0, len(thumbnails) - 1, min(THUMBNAILS, len(thumbnails))).round().astype(int)))
        hours = dict(zip(traits.scan.map(lambda s: Path(s).stem), traits.hours)) if len(traits) else {}
        figures = []
        for k in picks:
            path = thumbnails[k]
            when = hours.get(path.stem)
            caption = f"{path.stem}" + (f" — {when:.1f} h" if when is not None and not pd.isna(when) else "")
            figures.append(f"<figure>{_img(_jpeg(path), '', path.stem)}<figcaption>{html.escape(caption)}"
                           "</figcaption></figure>")
        parts.append(f"<div class='thumbs'>{''.join(figures)}</div>")
    if len(traits):
        last = traits[traits.hours == traits.hours.max()] if traits.hours.notna().any() else traits
        scan = last.scan.iloc[-1]
        table = last[last.scan == scan][[c for c in PLANT_COLUMNS if c in last.columns]]
        parts.append(f"<p>Per plant, last scan ({html.escape(str(scan))}); lengths in mm:</p>")
        parts.append(table.to_html(index=False, border=0, float_format=lambda v: f"{v:.2f}", na_rep=""))
    return "".join(parts)


def _jpeg(path: Path, quality: int = 80) -> bytes:
    import cv2

    image = io.read_scan(path).pixels
    bgr = cv2.cvtColor(io.from_float(image[..., :3]), cv2.COLOR_RGB2BGR) if image.ndim == 3 else io.from_float(image)
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def _img(data: bytes, css: str, alt: str) -> str:
    kind = "png" if data[:4] == b"\x89PNG" else "jpeg"
    return (f"<img class='{css}' alt='{html.escape(alt)}' "
            f"src='data:image/{kind};base64,{base64.b64encode(data).decode()}'>")


def _figure_png(fig: Any) -> bytes:
    from io import BytesIO

    import matplotlib.pyplot as plt

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _trait_plot(traits: pd.DataFrame) -> bytes:
    """Primary root length and lateral count against hours: thin line per plant, thick per plate mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    plants = traits[traits.plant > 0]
    colours = plt.get_cmap("tab10")
    for k, (plate, own) in enumerate(plants.groupby("plate", sort=False)):
        colour = colours(k % 10)
        for ax, column in zip(axes, ("primary_length_mm", "lateral_count")):
            for _, plant in own.groupby("plant"):
                ax.plot(plant.hours, plant[column], color=colour, alpha=0.35, lw=1, marker=".")
            mean = own.groupby("hours")[column].mean()
            ax.plot(mean.index, mean.values, color=colour, lw=2.5, label=str(plate) if k < 20 else None)
    for ax, label in zip(axes, ("primary root length (mm)", "lateral roots per plant")):
        ax.set_xlabel("hours since the plate's first scan")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(title="plate (mean)", fontsize=8)
    fig.suptitle("per plant (thin) and plate mean (thick)")
    return _figure_png(fig)


def _class_plot(classes: pd.DataFrame) -> bytes:
    """Projected area (mm^2) of each class against hours, one line per plate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(classes.name))
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, name in zip(axes[0], names):
        own = classes[classes.name == name]
        for k, (plate, series) in enumerate(own.groupby("plate", sort=False)):
            series = series.sort_values("hours")
            ax.plot(series.hours, series.area_mm2, color=colours(k % 10), marker=".", label=str(plate) if k < 20 else None)
        ax.set_title(f"{name}: projected area")
        ax.set_xlabel("hours since the plate's first scan")
        ax.set_ylabel("mm²")
        ax.grid(alpha=0.3)
    axes[0][0].legend(title="plate", fontsize=8)
    return _figure_png(fig)
