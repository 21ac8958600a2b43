"""Figures: spectrogram grids of mixtures, true sources and estimates.

Needs matplotlib (``pip install 'priorsep[plot]'``); importing this module does not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import spectral
from ._extras import require
from .fsutil import atomic_write


def _db_spectrogram(x: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Log-magnitude (dB) spectrogram ``[bins, frames]`` of a mono signal ``[T]``."""
    spec = spectral.analysis(torch.as_tensor(np.asarray(x, dtype=np.float32)), n_fft, hop).abs()
    return 20 * np.log10(spec.numpy() + 1e-5)


def spectrogram_grid(
    panels: Sequence[tuple[str, np.ndarray | None]],
    sample_rate: int,
    path: str | os.PathLike,
    cols: int | None = None,
    title: str | None = None,
    dpi: int = 90,
) -> Path:
    """One spectrogram per ``(title, signal [T])`` panel, on a shared 80 dB colour scale.

    Args:
        panels: titles and mono signals; a ``None`` signal leaves its place empty.
        cols: panels per row (default: as many as fit a row of four).
        path: PNG to write.
        dpi: resolution (a large grid stays small on disk at 50-60).
    """
    matplotlib = require("matplotlib", "plot", "spectrogram figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [None if x is None else _db_spectrogram(np.asarray(torch.as_tensor(x).detach().cpu())) for _, x in panels]
    top = max(float(s.max()) for s in specs if s is not None)
    cols = cols or min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, constrained_layout=True)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    image = None
    for ax, (name, _), spec in zip(axes.flat, panels, specs):
        if spec is None:
            ax.axis("off")
            continue
        seconds = spec.shape[1] * 128 / sample_rate
        image = ax.imshow(
            spec, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
            extent=(0, seconds, 0, sample_rate / 2000),
        )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=axes, shrink=0.8, label="dB")
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    try:
        with atomic_write(path) as tmp:
            # the format from the destination's name (matplotlib's default, png, without one),
            # not from the temporary file's
            fig.savefig(tmp, dpi=dpi, format=path.suffix[1:].lower() or "png")
    finally:
        plt.close(fig)
    return path
