"""Audio I/O and validation at the boundary.

Reading goes through soundfile, resampling through soxr. Every check a user's file can
fail raises :class:`AudioError` with one line that says what is wrong and what to do.
Writing goes to a temporary file that is renamed into place, so a failure never leaves
a half-written WAV.
"""

from __future__ import annotations

import os
import struct
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
    done to it on reading (channel chosen, resampled), or is empty; ``input_rate`` is the
    file's own rate (estimates are written back at it)."""

    samples: np.ndarray
    sample_rate: int
    note: str = ""
    input_rate: int = 0

    def __post_init__(self) -> None:
        self.input_rate = self.input_rate or self.sample_rate


def validate_samples(x: np.ndarray, what: str = "input", allow_silent: bool = False) -> None:
    """Refuse empty input, NaN/inf samples and (unless allowed) silence, or a constant
    (DC-only) signal, which holds nothing to separate either."""
    if x.size == 0:
        raise AudioError(f"{what} is empty (0 samples)")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise AudioError(f"{what} contains {bad} NaN or infinite samples; fix or re-export the file")
    if allow_silent:
        return
    if float(np.abs(x).max()) < SILENCE_PEAK:
        raise AudioError(f"{what} is silent (peak below {SILENCE_PEAK:g}); there is nothing to separate")
    if float(np.ptp(x)) < 2 * SILENCE_PEAK:
        raise AudioError(f"{what} is a constant {float(x[0]):.3g} (a DC offset, no sound); there is nothing to "
                         "separate")


#: bits of the integer sample formats soundfile reports (their quantisation step is 2 ** (1 - bits))
INTEGER_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


def clipping_note(x: np.ndarray, run: int = 3, bits: int | None = None) -> str:
    """A note when ``x [T]`` looks clipped: samples held at its peak (within 0.0001 %) for
    ``run`` or more in a row, or ``""``. Samples above full scale alone are no fault
    (float files hold them); flat tops at the peak are what clipping leaves.

    For an integer file of ``bits`` bits a smooth peak also holds the top level for a few
    samples (coarsely quantised, 8-bit above all), so there the top levels (the two
    extremes) must also hold more than 4 times the samples of the three levels below them,
    as a flat top does.

    >>> t = np.sin(np.linspace(0, 20, 1000)).astype(np.float32)
    >>> clipping_note(t), clipping_note(np.clip(1.5 * t, -1, 1))[:40]
    ('', 'looks clipped: 7 runs of samples held at')
    >>> q = np.round(127 * np.sin(np.linspace(0, 8, 4000))) / 128  # 8-bit, not clipped
    >>> clipping_note(q)[:14], clipping_note(q, bits=8), clipping_note(np.clip(1.5 * q, -.5, .5), bits=8)[:14]
    ('looks clipped:', '', 'looks clipped:')
    """
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0.0:
        return ""
    step = 2.0 ** (1 - bits) if bits else 0.0
    # an integer format's two extremes differ by a step (-1 and 1 - step): both are its top
    flat = np.abs(x) >= min(peak * (1 - 1e-6), peak - 1.01 * step)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat.astype(np.int8), [0]])))
    lengths = edges[1::2] - edges[0::2]
    runs = int((lengths >= run).sum())
    if not runs:
        return ""
    if bits:
        below = (np.abs(x) >= peak - 4.5 * step) & ~flat
        if flat.sum() <= 4 * below.sum():
            return ""
    return (f"looks clipped: {runs} runs of samples held at its peak {peak:.3g} ({100 * flat.mean():.2f} % of "
            "samples); the flat tops will be attributed to the sources")


def declared_frames(path: str | os.PathLike) -> int | None:
    """The frames a RIFF/WAVE file's header declares (its data chunk's size over the frame
    size), or ``None`` for other formats and for a size left open (0 or 0xFFFFFFFF, as
    streaming writers leave it)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        frame = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"fmt ":
                fmt = f.read(size)
                frame = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                f.seek(size & 1, 1)
            elif name == b"data":
                return size // frame if frame and size not in (0, 0xFFFFFFFF) else None
            else:
                f.seek(size + (size & 1), 1)


def load_audio(
    path: str | os.PathLike,
    *,
    channel: int | None = None,
    downmix: bool = False,
    allow_silent: bool = False,
) -> Audio:
    """Read one mono signal at the file's own rate, validated (no torch needed).

    Args:
        path: any file soundfile reads (WAV, FLAC, OGG, AIFF, ...).
        channel: for multichannel files, the 0-based channel to use.
        downmix: for multichannel files, average the channels.
        allow_silent: accept an all-silent signal (e.g. an estimate being scored).
    Raises:
        AudioError: missing, unreadable or truncated file (a WAV holding fewer samples
            than its header declares), multichannel without a choice, bad channel,
            NaN/inf samples, silence or a constant (DC-only) signal.
    """
    path = check_input_path(path)
    try:
        with sf.SoundFile(str(path)) as f:
            subtype = f.subtype
            data = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{path}: not an audio file soundfile can read ({exc})") from None
    declared = declared_frames(path)
    if declared is not None and declared > data.shape[0]:
        missing = declared - data.shape[0]
        raise AudioError(f"{path}: truncated: its header declares {declared} samples, the file holds "
                         f"{data.shape[0]} ({100 * missing / declared:.0f} % missing); copy or export it again")
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
    clipped = clipping_note(x, bits=INTEGER_BITS.get(subtype))
    if clipped:
        notes.append(clipped)
    return Audio(x, int(rate), "; ".join(notes))


def to_rate(audio: Audio, sample_rate: int, *, resample: bool = True, what: str = "input",
            allow_silent: bool = False) -> Audio:
    """``audio`` at ``sample_rate``: resampled with soxr (and said so in its note), or, with
    ``resample=False``, refused in one :class:`AudioError` line. ``input_rate`` stays the
    file's."""
    if audio.sample_rate == sample_rate:
        return audio
    if not resample:
        raise AudioError(f"{what}: sample rate is {audio.sample_rate} Hz but the priors need {sample_rate} Hz "
                         "(drop --no-resample to resample it with soxr)")
    x = soxr.resample(audio.samples, audio.sample_rate, sample_rate).astype(np.float32)
    validate_samples(x, f"{what} after resampling", allow_silent)
    note = "; ".join(n for n in (audio.note, f"resampled {audio.sample_rate} Hz -> {sample_rate} Hz with soxr "
                                 "(estimates are written back at the input's rate)") if n)
    return Audio(x, int(sample_rate), note, audio.input_rate)


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    *,
    channel: int | None = None,
    downmix: bool = False,
    resample: bool = True,
    allow_silent: bool = False,
) -> Audio:
    """Read one mono signal, validated, at ``sample_rate`` if given: :func:`load_audio`,
    then :func:`to_rate`.

    Args:
        path: any file soundfile reads (WAV, FLAC, OGG, AIFF, ...).
        sample_rate: the rate wanted; another rate is resampled with soxr (and said so
            in ``note``) or, with ``resample=False``, refused.
        channel: for multichannel files, the 0-based channel to use.
        downmix: for multichannel files, average the channels.
        allow_silent: accept an all-silent signal (e.g. an estimate being scored).
    Raises:
        AudioError: as :func:`load_audio`, or a refused rate.
    """
    audio = load_audio(path, channel=channel, downmix=downmix, allow_silent=allow_silent)
    if sample_rate is None:
        return audio
    return to_rate(audio, sample_rate, resample=resample, what=str(path), allow_silent=allow_silent)


def restore_rate(samples: np.ndarray, audio: Audio) -> np.ndarray:
    """Estimates ``[..., T]`` made at ``audio.sample_rate`` back at the file's own rate
    (soxr), cut or zero-padded to the file's length; unchanged when no resampling was done.

    >>> a = Audio(np.zeros(400, np.float32), 16000, input_rate=44100)
    >>> restore_rate(np.ones((2, 400), np.float32), a).shape
    (2, 1102)
    """
    if audio.input_rate == audio.sample_rate:
        return samples
    flat = np.asarray(samples, np.float32).reshape(-1, samples.shape[-1])
    length = int(round(samples.shape[-1] * audio.input_rate / audio.sample_rate))
    back = np.stack([soxr.resample(row, audio.sample_rate, audio.input_rate) for row in flat])
    back = np.pad(back[:, :length], ((0, 0), (0, max(0, length - back.shape[1]))))
    return back.astype(np.float32).reshape(*samples.shape[:-1], length)


def write_audio(path: str | os.PathLike, samples: Any, sample_rate: int) -> Path:
    """Write a mono float WAV atomically (temporary file, then rename).

    Samples are written as 32-bit float, so estimates louder than full scale (a sum of
    peak-normalised sources reaches K) are kept, not clipped. The file holds the samples
    and nothing that changes from run to run (no timestamped PEAK chunk), so the same
    samples always give the same bytes.

    Raises:
        WriteError: the file could not be written (a full disk); nothing is left of it.
    """
    path = Path(path)
    if hasattr(samples, "detach"):  # a torch tensor, on any device
        samples = samples.detach().cpu().numpy()
    data = np.asarray(samples, dtype="<f4").reshape(-1).tobytes()
    rate = int(sample_rate)
    # RIFF/WAVE, IEEE float (format 3), mono, 32 bits, with the fact chunk non-PCM data needs
    fmt = struct.pack("<HHIIHHH", 3, 1, rate, 4 * rate, 4, 32, 0)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, len(data) // 4) \
        + b"data" + struct.pack("<I", len(data)) + data
    with atomic_write(path) as tmp:
        tmp.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return path


__all__ = ["Audio", "AudioError", "StagedDir", "check_input_path", "clipping_note", "declared_frames", "load_audio",
           "read_audio", "restore_rate", "to_rate", "validate_samples", "write_audio"]
