"""Audio I/O and validation at the boundary.

Reading goes through soundfile, resampling through soxr. Every check a user's file can
fail raises :class:`AudioError` with one line that says what is wrong and what to do.
Writing goes to a temporary file that is renamed into place, so a failure never leaves
a half-written WAV.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError
from .fsutil import StagedDir, atomic_write, check_input_path

SILENCE_PEAK = 1e-5  # below this peak (about -100 dBFS) a clip counts as silent


@dataclass
class Audio:
    """A mono signal ``samples [T]`` (float32) at ``sample_rate``; ``note`` says what was
    done to it on reading (channel chosen, resampled), or is empty."""

    samples: np.ndarray
    sample_rate: int
    note: str = ""


def validate_samples(x: np.ndarray, what: str = "input", allow_silent: bool = False) -> None:
    """Refuse empty input, NaN/inf samples and (unless allowed) silence."""
    if x.size == 0:
        raise AudioError(f"{what} is empty (0 samples)")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise AudioError(f"{what} contains {bad} NaN or infinite samples; fix or re-export the file")
    if not allow_silent and float(np.abs(x).max()) < SILENCE_PEAK:
        raise AudioError(f"{what} is silent (peak below {SILENCE_PEAK:g}); there is nothing to separate")


def clipping_note(x: np.ndarray, run: int = 3) -> str:
    """A note when ``x [T]`` looks clipped: samples held at its peak (within 0.0001 %) for
    ``run`` or more in a row, or ``""``. Samples above full scale alone are no fault
    (float files hold them); flat tops at the peak are what clipping leaves.

    >>> t = np.sin(np.linspace(0, 20, 1000)).astype(np.float32)
    >>> clipping_note(t), clipping_note(np.clip(1.5 * t, -1, 1))[:40]
    ('', 'looks clipped: 7 runs of samples held at')
    """
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0.0:
        return ""
    flat = np.abs(x) >= peak * (1 - 1e-6)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat.astype(np.int8), [0]])))
    lengths = edges[1::2] - edges[0::2]
    runs = int((lengths >= run).sum())
    if not runs:
        return ""
    return (f"looks clipped: {runs} runs of samples held at its peak {peak:.3g} ({100 * flat.mean():.2f} % of "
            "samples); the flat tops will be attributed to the sources")


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    *,
    channel: int | None = None,
    downmix: bool = False,
    resample: bool = True,
    allow_silent: bool = False,
) -> Audio:
    """Read one mono signal, validated, at ``sample_rate`` if given.

    Args:
        path: any file soundfile reads (WAV, FLAC, OGG, AIFF, ...).
        sample_rate: the rate wanted; another rate is resampled with soxr (and said so
            in ``note``) or, with ``resample=False``, refused.
        channel: for multichannel files, the 0-based channel to use.
        downmix: for multichannel files, average the channels.
        allow_silent: accept an all-silent signal (e.g. an estimate being scored).
    Raises:
        AudioError: missing or unreadable file, multichannel without a choice, bad
            channel, NaN/inf samples, silence, or a refused rate.
    """
    path = check_input_path(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{path}: not an audio file soundfile can read ({exc})") from None
    notes = []
    n_ch = data.shape[1]
    if n_ch > 1:
        if channel is not None:
            if not 0 <= channel < n_ch:
                raise AudioError(f"{path}: has {n_ch} channels; --channel must be 0 to {n_ch - 1}, got {channel}")
            data = data[:, channel : channel + 1]
            notes.append(f"used channel {channel} of {n_ch}")
        elif downmix:
            data = data.mean(axis=1, keepdims=True)
            notes.append(f"downmixed {n_ch} channels")
        else:
            raise AudioError(
                f"{path}: has {n_ch} channels; separation needs mono: choose one with --channel N "
                f"(0 to {n_ch - 1}) or average them with --downmix"
            )
    x = np.ascontiguousarray(data[:, 0])
    validate_samples(x, str(path), allow_silent)
    clipped = clipping_note(x)
    if clipped:
        notes.append(clipped)
    if sample_rate is not None and rate != sample_rate:
        if not resample:
            raise AudioError(
                f"{path}: sample rate is {rate} Hz but the priors need {sample_rate} Hz "
                "(drop --no-resample to resample it with soxr)"
            )
        x = soxr.resample(x, rate, sample_rate).astype(np.float32)
        notes.append(f"resampled {rate} Hz -> {sample_rate} Hz with soxr")
        rate = sample_rate
        validate_samples(x, f"{path} after resampling", allow_silent)
    return Audio(x, int(rate), "; ".join(notes))


def write_audio(path: str | os.PathLike, samples: Any, sample_rate: int) -> Path:
    """Write a mono float WAV atomically (temporary file, then rename).

    Samples are written as 32-bit float, so estimates louder than full scale (a sum of
    peak-normalised sources reaches K) are kept, not clipped.
    """
    path = Path(path)
    if hasattr(samples, "detach"):  # a torch tensor, on any device
        samples = samples.detach().cpu().numpy()
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    with atomic_write(path) as tmp:
        sf.write(str(tmp), x, sample_rate, subtype="FLOAT", format="WAV")
    return path


__all__ = ["Audio", "AudioError", "StagedDir", "check_input_path", "clipping_note", "read_audio", "validate_samples",
           "write_audio"]
