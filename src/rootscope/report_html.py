"""``out/report.html``: one self-contained page (pictures embedded) that summarises an experiment run.

Sections: the run (plates, scans, plants, failures), plots over time (hours since each plate's first
scan) of primary root length, lateral count and root area per plant (followed from scan to scan by
:mod:`rootscope.track`: ``tracks/plants.csv``) and plate, projected area per class and plate, and
where laterals emerged along the primary and when; then per plate the overlay thumbnails (aligned
scan, roots coloured by order, branching points, tips), the per-plant traits of its last scan and
the growth rates and lateral emergence times of its plants (``tracks/growth.csv``,
``tracks/laterals.csv``). Without tracks (tables of an older run), a line joins the plants that
carry the same number in each scan.
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
#: Growth table of each plate: column of ``tracks/growth.csv`` -> heading.
GROWTH_COLUMNS = {"plant": "plant", "scans": "scans", "primary_last_mm": "primary, last scan (mm)",
                  "primary_rate_mm_h": "primary growth (mm/h)", "primary_rate_ci": "95 % interval (mm/h)",
                  "total_rate_mm_h": "total growth (mm/h)", "laterals": "laterals seen",
                  "first_lateral_h": "first lateral (h)", "emerged": "laterals emerged by scan: hours (count)"}
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
    failures.csv, and tracks/plants.csv, growth.csv and laterals.csv when there).

    ``plates`` orders the plate sections (default: as in traits.csv); ``thumbnails`` maps a plate to
    its overlay pictures in scan order (default: ``out/<plate>/overlays/*.png``).
    """
    out = Path(out)
    traits = _read(out / "traits.csv")
    classes = _read(out / "classes.csv")
    failures = _read(out / "failures.csv")
    plants, growth, laterals = (_read(out / "tracks" / f"{name}.csv") for name in ("plants", "growth", "laterals"))
    plates = plates if plates is not None else (list(dict.fromkeys(traits.plate)) if len(traits) else [])
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>rootscope {__version__}, {datetime.now():%Y-%m-%d %H:%M}. "
             f"{html.escape(summary)}</p>",
             _overview(traits, plants, failures)]
    if len(plants):
        parts.append("<h2>Over time</h2><p class='meta'>Hours since each plate's first scan. Plants are followed "
                     "from scan to scan (numbered 1, 2, ... left to right on each plate): a thin line per plant, "
                     "a thick line per plate mean. Root area is the root mask's area nearest each plant.</p>")
        curves = plants.rename(columns={"time_h": "hours"})
        parts.append(_img(_trait_plot(curves), "plot", "primary root length, lateral count and root area per plant"))
    elif len(traits) and (traits.plant > 0).any():
        parts.append("<h2>Over time</h2><p class='meta'>Hours since each plate's first scan. Plants were not "
                     "followed from scan to scan (no tracks/plants.csv): a thin line joins the plants with the "
                     "same number in each scan.</p>")
        parts.append(_img(_trait_plot(traits), "plot", "primary root length and lateral count over time"))
    if len(classes):
        parts.append(_img(_class_plot(classes), "plot", "projected area per class over time"))
    if len(laterals) and (laterals.order == 2).any():
        parts.append("<p class='meta'>Where and when laterals of the primary root emerged: one dot per lateral, "
                     "at its insertion along the primary (mm from the base) and its emergence time, the first "
                     "scan it was seen in; the lateral's own growth, extrapolated back, places it in the "
                     "interval before (open circle).</p>")
        parts.append(_img(_emergence_plot(laterals), "plot", "lateral emergence time against insertion"))
    for plate in plates:
        own = thumbnails.get(plate) if thumbnails else sorted((out / plate / "overlays").glob("*.png"))
        parts.append(_plate_section(plate, _of(traits, plate), own or [], _of(growth, plate), _of(laterals, plate)))
    if len(failures):
        parts.append("<h2 class='bad'>Failures</h2>" + failures.to_html(index=False, escape=True, border=0))
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")
    return io.write_text(path if path is not None else out / "report.html", page)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True) if path.exists() else pd.DataFrame()


def _of(table: pd.DataFrame, plate: str) -> pd.DataFrame:
    """The rows of one plate (an empty table as it is)."""
    return table[table.plate == plate] if len(table) else table


def _overview(traits: pd.DataFrame, tracked: pd.DataFrame, failures: pd.DataFrame) -> str:
    if not len(traits):
        return "<p class='bad'>No scan was measured.</p>"
    scans = traits.groupby("plate").scan.nunique()
    plants = traits[traits.plant > 0].groupby(["plate", "scan"]).plant.nunique().groupby("plate").max()
    table = pd.DataFrame({"scans measured": scans, "plants (most in one scan)": plants})
    if len(tracked):
        table["plants followed over time"] = tracked.groupby("plate").plant.nunique()
    table = table.fillna(0).astype(int)
    bad = f"<p class='bad'>{len(failures)} failures (listed at the end and in failures.csv).</p>" if len(failures) else ""
    return f"<h2>Plates</h2>{table.to_html(border=0)}{bad}"


def _plate_section(plate: str, traits: pd.DataFrame, thumbnails: list[Path], growth: pd.DataFrame,
                   laterals: pd.DataFrame) -> str:
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
        table = last[last.scan == scan][[c for c in PLANT_COLUMNS if c in last.columns]].sort_values("plant")
        parts.append(f"<p>Per plant, last scan ({html.escape(str(scan))}); lengths in mm:</p>")
        parts.append(table.to_html(index=False, border=0, float_format=lambda v: f"{v:.2f}", na_rep=""))
    if len(growth):
        parts.append("<p>Growth per plant over all its scans (robust Theil-Sen slope) and lateral emergence "
                     "(second order; hours since the plate's first scan):</p>")
        parts.append(_growth_table(growth, laterals).to_html(index=False, border=0, na_rep=""))
    return "".join(parts)


def _growth_table(growth: pd.DataFrame, laterals: pd.DataFrame) -> pd.DataFrame:
    """One row per plant (as text): rates with their interval, and how many laterals emerged at each scan."""
    text = (lambda values, fmt: [fmt.format(v) if pd.notna(v) else "" for v in values])
    table = growth.sort_values("plant").assign(
        primary_last_mm=lambda t: text(t.primary_last_mm, "{:.1f}"),
        primary_rate_mm_h=lambda t: text(t.primary_rate_mm_h, "{:.3f}"),
        total_rate_mm_h=lambda t: text(t.total_rate_mm_h, "{:.3f}"),
        first_lateral_h=lambda t: text(t.first_lateral_h, "{:.1f}"),
        primary_rate_ci=lambda t: [f"{lo:.3f} – {hi:.3f}" if pd.notna(lo) else ""
                                   for lo, hi in zip(t.primary_rate_low, t.primary_rate_high)])
    emerged: dict[int, str] = {}
    if len(laterals):
        first = laterals[laterals.order == 2].drop_duplicates(["plant", "lateral"])
        for plant, own in first.groupby("plant"):
            counts = own.emergence_h.round(1).value_counts().sort_index()
            emerged[plant] = ", ".join(f"{h:g} ({n})" for h, n in counts.items())
    table["emerged"] = table.plant.map(emerged).fillna("")
    return table[list(GROWTH_COLUMNS)].rename(columns=GROWTH_COLUMNS)


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


#: Per-plant curves over time: column -> axis label.
CURVES = {"primary_length_mm": "primary root length (mm)", "lateral_count": "lateral roots per plant",
          "network_area_mm2": "root area per plant (mm²)"}


def _trait_plot(traits: pd.DataFrame) -> bytes:
    """Primary root length, lateral count and (when measured) root area against hours: thin line per
    plant, thick per plate mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plants = traits[traits.plant > 0]
    curves = {c: label for c, label in CURVES.items() if c in plants and plants[c].notna().any()}
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.6), squeeze=False)
    axes = axes[0]
    colours = plt.get_cmap("tab10")
    for k, (plate, own) in enumerate(plants.groupby("plate", sort=False)):
        colour = colours(k % 10)
        for ax, column in zip(axes, curves):
            for _, plant in own.groupby("plant"):
                ax.plot(plant.hours, plant[column], color=colour, alpha=0.35, lw=1, marker=".")
            mean = own.groupby("hours")[column].mean()
            ax.plot(mean.index, mean.values, color=colour, lw=2.5, label=str(plate) if k < 20 else None)
    for ax, label in zip(axes, curves.values()):
        ax.set_xlabel("hours since the plate's first scan")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(title="plate (mean)", fontsize=8)
    fig.suptitle("per plant (thin) and plate mean (thick)")
    return _figure_png(fig)


def _emergence_plot(laterals: pd.DataFrame) -> bytes:
    """Insertion along the primary (mm, down) against emergence time (h) of each lateral of the
    primary, one colour per plate: first seen (dot) and extrapolated back (open circle)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = laterals[laterals.order == 2].drop_duplicates(["plate", "plant", "lateral"])
    fig, ax = plt.subplots(figsize=(8, 4))
    colours = plt.get_cmap("tab10")
    for k, (plate, own) in enumerate(first.groupby("plate", sort=False)):
        colour = colours(k % 10)
        ax.scatter(own.emergence_h, own.emergence_insertion_mm, s=14, color=colour,
                   label=str(plate) if k < 20 else None)
        if "emergence_est_h" in own:
            ax.scatter(own.emergence_est_h, own.emergence_insertion_mm, s=14, facecolors="none", edgecolors=colour,
                       alpha=0.6)
    ax.invert_yaxis()
    ax.set_xlabel("emergence (hours since the plate's first scan)")
    ax.set_ylabel("insertion along the primary (mm)")
    ax.grid(alpha=0.3)
    ax.legend(title="plate", fontsize=8)
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
