"""A listening page: one static, self-contained HTML file with tables, audio players and
spectrograms (like the paper's demo page), for ``priorsep benchmark --html`` and
``priorsep separate --html``.

Everything is inside the file: audio as FLAC ``data:`` URIs (16-bit), spectrograms as PNG
``data:`` URIs (the ``plot`` extra), no script, no font, no network. A *row* is a label
and its clips, each clip a label and samples ``[T]``; a section is a heading and its rows.

>>> import numpy as np
>>> html = page("demo", [("set", [("mixture 0", [("mixture", np.zeros(1600, np.float32))])])],
...             rate=16000, spectrograms=False)
>>> html.count("<audio"), "http" in html.replace("http-equiv", "")
(1, False)
"""

from __future__ import annotations

import base64
import html as _html
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["page", "write_page", "markdown_to_html"]

Clip = tuple[str, np.ndarray]
Row = tuple[str, Sequence[Clip]]
Section = tuple[str, Sequence[Row]]

STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.row{display:flex;flex-wrap:wrap;gap:10px;margin:.4em 0 1em}
.clip{border:1px solid #ddd;padding:4px;width:250px;font-size:12px}.clip img{width:240px;height:96px;display:block}
audio{width:240px;height:32px}h3{margin-top:1.2em}"""


def _flac_uri(samples: np.ndarray, rate: int) -> str:
    import soundfile as sf

    x = np.asarray(samples, dtype=np.float64)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 1.0:  # 16-bit FLAC cannot hold more than full scale: the player gets it normalised
        x = x / peak
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="FLAC", subtype="PCM_16")
    return "data:audio/flac;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _spectrogram_uri(samples: np.ndarray, rate: int) -> str:
    from ._extras import require

    require("matplotlib", "plot", "the listening page's spectrograms")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scipy.signal

    _, _, spec = scipy.signal.stft(np.asarray(samples, np.float64), rate, nperseg=512, noverlap=384)
    db = 20 * np.log10(np.abs(spec) + 1e-6)
    fig = plt.figure(figsize=(4.0, 1.6), dpi=60)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max())
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


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
    """The page as a string: ``title``, the markdown ``tables`` (e.g. a results table),
    then per section its rows of players (and spectrograms)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{_html.escape(title)}</h1>"]
    if tables:
        parts.append(markdown_to_html(tables))
    for heading, rows in sections:
        parts.append(f"<h2>{_html.escape(heading)}</h2>")
        for label, clips in rows:
            parts.append(f"<h3>{_html.escape(label)}</h3><div class='row'>")
            for name, samples in clips:
                img = f"<img alt='spectrogram of {_html.escape(name)}' src='{_spectrogram_uri(samples, rate)}'>" \
                    if spectrograms else ""
                parts.append(f"<div class='clip'><b>{_html.escape(name)}</b>{img}"
                             f"<audio controls preload='metadata' src='{_flac_uri(samples, rate)}'></audio></div>")
            parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_page(path: str | os.PathLike, title: str, sections: Sequence[Section], *, rate: int, tables: str = "",
               spectrograms: bool = True) -> Path:
    """Write :func:`page` to ``path`` atomically; returns the path."""
    from .fsutil import write_text

    return write_text(path, page(title, sections, rate=rate, tables=tables, spectrograms=spectrograms))
