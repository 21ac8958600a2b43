"""Clips of one source class from a user's folder, in any layout.

Every file below the folder that soundfile can read is taken (WAV, FLAC, OGG, AIFF, ...;
other files are skipped with a warning), downmixed to mono, resampled to the prior's
rate with soxr, and cut into clips of the prior's length: a short file becomes one
zero-padded clip, a long recording becomes consecutive windows. Near-silent clips are
skipped. Files are visited in sorted order, so the result is deterministic.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import Tensor

from ..audio import AudioError
from ..constants import CLIP_LENGTH, SAMPLE_RATE


@dataclass
class ClipSet:
    """Clips ``[N, length]`` (float32) and where they came from."""

    clips: Tensor
    folder: str
    files: int
    skipped_unreadable: int
    skipped_silent: int
    content_hash: str

    def describe(self) -> dict:
        return {
            "folder": self.folder,
            "clips": int(self.clips.shape[0]),
            "files": self.files,
            "skipped_unreadable": self.skipped_unreadable,
            "skipped_silent": self.skipped_silent,
            "content_hash": self.content_hash,
        }


def load_folder(
    folder: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    length: int = CLIP_LENGTH,
    silence_db: float = -40.0,
    max_clips: int | None = None,
) -> ClipSet:
    """All clips of a folder; see the module docstring.

    Args:
        silence_db: a clip whose peak is below this (dBFS) is skipped as near-silent.
        max_clips: stop after this many clips.
    Raises:
        AudioError: missing folder, no readable audio, or nothing but silence.
    """
    root = Path(folder)
    if not root.is_dir():
        raise AudioError(f"{root}: no such folder")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise AudioError(f"{root}: the folder is empty")
    threshold = 10 ** (silence_db / 20)
    clips: list[np.ndarray] = []
    digest = hashlib.sha256()
    files = unreadable = silent = 0
    for path in paths:
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError):
            unreadable += 1
            warnings.warn(f"skipping {path}: not an audio file soundfile can read", stacklevel=2)
            continue
        if data.shape[0] == 0:
            continue
        files += 1
        x = data.mean(axis=1)
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if rate != sample_rate:
            x = soxr.resample(x, rate, sample_rate).astype(np.float32)
        n = max(1, -(-x.shape[0] // length)) if x.shape[0] > length else 1
        x = np.pad(x, (0, n * length - x.shape[0]))
        for clip in x.reshape(n, length):
            if np.abs(clip).max() < threshold:
                silent += 1
                continue
            clips.append(clip)
            digest.update(clip.tobytes())
            if max_clips is not None and len(clips) >= max_clips:
                break
        if max_clips is not None and len(clips) >= max_clips:
            break
    if files == 0:
        raise AudioError(f"{root}: no audio files ({unreadable} files soundfile cannot read)")
    if not clips:
        raise AudioError(f"{root}: every clip is near-silent (peak below {silence_db:g} dBFS); nothing to train on")
    return ClipSet(torch.from_numpy(np.stack(clips)), str(root), files, unreadable, silent, digest.hexdigest()[:16])
