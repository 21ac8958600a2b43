"""A listening page: one static, self-contained HTML file with tables, audio players and
spectrograms (like the paper's demo page), for ``priorsep benchmark --html`` and
``priorsep separate --html``.

Everything is inside the file: audio as FLAC ``data:`` URIs (16-bit), spectrograms as PNG
``data:`` URIs (the ``plot`` extra), no script, no font, no network.

A *section* is one mixture and what is heard from it: a heading and its rows. A *row* is a
label and its clips. A *clip* is ``(label, samples [T])`` or ``(label, samples [T],
metrics)``, where ``metrics`` maps a name (e.g. a key of :func:`priorsep.metrics.evaluate`)
to a number printed beside the clip.

Spectrograms have a time axis (s), a logarithmic frequency axis (kHz) and a dB colour bar.
All clips of a section share one colour scale: from the page's floor to the section's
loudest cell. The floor is the page's loudest cell minus :data:`RANGE_DB`, lowered where a
clip's loudest cell would be less than :data:`SHOWN_DB` above it (but never more than
:data:`MAX_RANGE_DB` below the loudest cell), so a quiet estimate keeps its shape in the
colours of the scale instead of vanishing into the floor colour.

>>> import numpy as np
>>> html = page("demo", [("set", [("mixture 0", [("mixture", np.zeros(1600, np.float32))])])],
...             rate=16000, spectrograms=False)
>>> html.count("<audio"), "http" in html.replace("http-equiv", "")
(1, False)
>>> html = page("demo", [("set", [("estimates", [("a", np.ones(1600), {"si_sdr": 12.345})])])],
...             rate=16000, spectrograms=False)
>>> "SI-SDR 12.3 dB" in html
True
"""

from __future__ import annotations

import base64
import html as _html
import io
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["GENERATOR", "page", "write_page", "markdown_to_html", "page_floor", "RANGE_DB", "SHOWN_DB",
           "MAX_RANGE_DB"]

#: the tag in every page's head by which ``--html`` knows a page it may replace
GENERATOR = "<meta name='generator' content='priorsep'>"

Clip = tuple  # (label, samples [T]) or (label, samples [T], {metric: value})
Row = tuple[str, Sequence[Clip]]
Section = tuple[str, Sequence[Row]]

#: Depth of the colour scale below the page's loudest cell, in dB.
RANGE_DB = 80.0
#: Least part of a clip's own range kept above the floor, in dB.
SHOWN_DB = 30.0
#: Deepest the floor may go below the page's loudest cell, in dB.
MAX_RANGE_DB = 120.0
#: Colour map of the spectrograms: its lowest colour (the floor) is not black.
CMAP = "viridis"
#: Size of a spectrogram PNG in pixels (width, height), and its resolution.
IMAGE_PX = (680, 210)
DPI = 100
#: Names and units of :func:`priorsep.metrics.evaluate`'s keys; other keys print as given.
METRIC_LABELS = {"si_sdr": ("SI-SDR", " dB"), "sdr": ("SDR", " dB"), "sir": ("SIR", " dB"),
                 "spectral_snr": ("spectral SNR", " dB"), "envelope_distance": ("envelope distance", "")}
_ZERO_DB = -240.0  # the level of an all-zero cell (a magnitude of 1e-12)
_ROWS = 240  # frequency rows of a spectrogram, log-spaced
_MAX_COLS = 1500  # time columns at most (longer clips are max-pooled)

STYLE = """body{font-family:sans-serif;margin:0 auto;padding:1em 1.5em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
h2{border-top:2px solid #bbb;padding-top:.5em;margin:1.6em 0 .2em}h3{margin:.8em 0 .3em;font-size:16px}
.scale{color:#555;font-size:13px;margin:.2em 0 .6em}
.clips{display:grid;grid-template-columns:repeat(auto-fill,minmax(620px,1fr));gap:12px}
.clip{border:1px solid #ddd;border-radius:4px;padding:6px;font-size:14px;min-width:600px}
.cap{display:flex;justify-content:space-between;gap:1em}.metrics{font-variant-numeric:tabular-nums}
.clip img{width:100%;min-width:600px;display:block;margin:4px 0}audio{width:100%;height:32px;display:block}"""


def _flac_uri(samples: np.ndarray, rate: int) -> str:
    import soundfile as sf

    x = np.asarray(samples, dtype=np.float64)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 1.0:  # 16-bit FLAC cannot hold more than full scale: the player gets it normalised
        x = x / peak
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="FLAC", subtype="PCM_16")
    return "data:audio/flac;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _spectrogram(samples: np.ndarray, rate: int) -> tuple[np.ndarray, float, float]:
    """dB magnitudes ``[rows, frames]`` on log-spaced frequency rows (each row the loudest
    STFT bin it covers), the clip's length in seconds and the lowest frequency in Hz."""
    import scipy.signal

    x = np.asarray(samples, np.float64).reshape(-1)
    n = int(2 ** round(math.log2(0.032 * rate)))  # a 32 ms window
    seconds = x.size / rate
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    freqs, _, spec = scipy.signal.stft(x, rate, nperseg=n, noverlap=3 * n // 4)
    df = rate / n
    edges = np.geomspace(df, rate / 2, _ROWS + 1)
    starts = np.clip(np.round(edges[:-1] / df).astype(int), 1, len(freqs) - 1)
    mag = np.maximum.reduceat(np.abs(spec), starts, axis=0)
    if mag.shape[1] > _MAX_COLS:
        mag = np.maximum.reduceat(mag, np.arange(0, mag.shape[1], -(-mag.shape[1] // _MAX_COLS)), axis=1)
    return (20 * np.log10(np.maximum(mag, 1e-12))).astype(np.float32), seconds, df


def page_floor(peaks: Sequence[float]) -> float:
    """The page's dB floor, given the loudest cell of each clip on it.

    Args:
        peaks: each clip's loudest spectrogram cell in dB (an all-zero clip: -240).

    Returns:
        ``top - RANGE_DB`` (``top`` the loudest peak), lowered to ``peak - SHOWN_DB`` for
        the quietest clip within ``MAX_RANGE_DB`` of ``top``, never below ``top - MAX_RANGE_DB``.

    >>> page_floor([-10.0, -30.0]), page_floor([-10.0, -70.0]), page_floor([-10.0, -200.0])
    (-90.0, -100.0, -90.0)
    """
    heard = [p for p in peaks if p > _ZERO_DB + 1]
    top = max(heard) if heard else 0.0
    quietest = min(p for p in heard if p > top - MAX_RANGE_DB) if heard else top
    return max(min(top - RANGE_DB, quietest - SHOWN_DB), top - MAX_RANGE_DB)


def _spectrogram_uri(db: np.ndarray, seconds: float, rate: int, low: float, vmin: float, vmax: float) -> str:
    from ._extras import require

    require("matplotlib", "plot", "the listening page's spectrograms")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(IMAGE_PX[0] / DPI, IMAGE_PX[1] / DPI), dpi=DPI)
    ax = fig.add_axes((0.085, 0.2, 0.79, 0.76))
    cax = fig.add_axes((0.89, 0.2, 0.018, 0.76))
    lo, hi = math.log10(low / 1000), math.log10(rate / 2000)
    image = ax.imshow(db, origin="lower", aspect="auto", cmap=CMAP, vmin=vmin, vmax=vmax,
                      extent=(0, seconds, lo, hi), interpolation="nearest")
    ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 4, 8, 16, 24) if lo <= math.log10(t) <= hi + 1e-9]
    ax.set_yticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])
    ax.set_xlabel("time (s)", fontsize=9, labelpad=1)
    ax.set_ylabel("frequency (kHz)", fontsize=9)
    ax.tick_params(labelsize=9)
    bar = fig.colorbar(image, cax=cax)
    bar.set_label("dB", fontsize=9, labelpad=1)
    bar.ax.tick_params(labelsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _metrics_text(metrics: Mapping[str, Any] | None) -> str:
    parts = []
    for key, value in (metrics or {}).items():
        name, unit = METRIC_LABELS.get(key, (key, ""))
        shown = f"{value:.1f}{unit}" if isinstance(value, (int, float, np.number)) else str(value)
        parts.append(f"{_html.escape(name)} {_html.escape(shown)}")
    return " · ".join(parts)


def markdown_to_html(text: str) -> str:
    """Our own markdown (``#`` headings, pipe tables, paragraphs, inline code) as HTML."""
    out, table = [], []

    def inline(s: str) -> str:
        parts = _html.escape(s).split("`")
        return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            head, body = cells[0], cells[1:]
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{inline(line.strip())}</p>")
    flush()
    return "\n".join(out)


def page(title: str, sections: Sequence[Section], *, rate: int, tables: str = "", spectrograms: bool = True) -> str:
    """The page as a string.

    Args:
        title: the page's title and first heading.
        sections: ``(heading, rows)`` per mixture; see the module's docstring for rows and clips.
        rate: sample rate of every clip, in Hz.
        tables: markdown shown first (e.g. a results table).
        spectrograms: draw a spectrogram above each player (needs matplotlib).

    Returns:
        One HTML document with no reference outside itself.
    """
    sections = [(heading, [(label, [(c[0], c[1], c[2] if len(c) > 2 else None) for c in clips])
                           for label, clips in rows]) for heading, rows in sections]
    specs, tops, floor = {}, {}, 0.0
    if spectrograms:  # all of them first: the floor is the page's, the top each section's
        specs = {(s, r, c): _spectrogram(clip[1], rate) for s, (_, rows) in enumerate(sections)
                 for r, (_, clips) in enumerate(rows) for c, clip in enumerate(clips)}
        floor = page_floor([float(db.max()) for db, _, _ in specs.values()])
        for (s, _, _), (db, _, _) in specs.items():
            tops[s] = max(tops.get(s, floor + 1.0), float(db.max()))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>{GENERATOR}<title>{_html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{_html.escape(title)}</h1>"]
    if tables:
        parts.append(markdown_to_html(tables))
    for s, (heading, rows) in enumerate(sections):
        parts.append(f"<h2>{_html.escape(heading)}</h2>")
        top = tops.get(s, floor + 1.0)
        if spectrograms:
            parts.append(f"<p class='scale'>Spectrograms: one colour scale for this mixture, from {floor:.1f} dB "
                         f"(the page's floor) to {top:.1f} dB (its loudest cell).</p>")
        for r, (label, clips) in enumerate(rows):
            parts.append(f"<h3>{_html.escape(label)}</h3><div class='clips'>")
            for c, (name, samples, metrics) in enumerate(clips):
                img = ""
                if spectrograms:
                    db, seconds, low = specs[s, r, c]
                    uri = _spectrogram_uri(db, seconds, rate, low, floor, top)
                    img = f"<img alt='spectrogram of {_html.escape(name)}' src='{uri}'>"
                text = _metrics_text(metrics)
                parts.append(f"<div class='clip'><div class='cap'><b>{_html.escape(name)}</b>"
                             + (f"<span class='metrics'>{text}</span>" if text else "") + f"</div>{img}"
                             f"<audio controls preload='metadata' src='{_flac_uri(samples, rate)}'></audio></div>")
            parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_page(path: str | os.PathLike, title: str, sections: Sequence[Section], *, rate: int, tables: str = "",
               spectrograms: bool = True) -> Path:
    """Write :func:`page` to ``path`` atomically.

    Args:
        path: the HTML file to write.
        title, sections, rate, tables, spectrograms: as for :func:`page`.

    Returns:
        ``path``, as a :class:`~pathlib.Path`.
    """
    from .fsutil import write_text

    return write_text(path, page(title, sections, rate=rate, tables=tables, spectrograms=spectrograms))
