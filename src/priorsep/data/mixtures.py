"""Seeded mixture sets: a manifest names each mixture's source clips and gains, from which
the mixtures and their true sources are rebuilt exactly.

A dataset folder holds ``<root>/<class>/<split>/**/*.flac`` (what ``priorsep data build``
writes, or any folder of 16 kHz mono clips laid out the same way). A mixture draws one
clip per class, uniformly and independently, from a seeded generator, and sums the
scaled clips:

- ``paper`` gains (METHOD.md §3): every source peak-normalised, unit weights;
- ``random`` gains: every source peak-normalised, then scaled by a gain drawn uniformly
  in ``[-RANDOM_DB, 0]`` dB, so the classes' levels differ from mixture to mixture.

The manifest stores each source's final linear gain (applied to the clip as read), so a
mixture is rebuilt without redrawing anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from ..audio import AudioError
from ..fsutil import write_text

GAINS = ("paper", "random")
RANDOM_DB = 12.0
SUFFIXES = (".flac", ".wav")
FORMAT = "priorsep-mixtures/1"


@dataclass
class MixtureSet:
    """Mixtures ``[N, T]``, their true sources ``[N, K, T]`` and where they came from."""

    mixtures: Tensor
    sources: Tensor
    classes: list[str]
    ids: list[str]
    manifest: dict


def list_clips(root: str | os.PathLike, cls: str, split: str) -> list[str]:
    """The clips of ``root/cls/split`` as sorted paths relative to ``root``."""
    folder = Path(root) / cls / split
    if not folder.is_dir():
        raise AudioError(f"{folder}: no such folder (expected <data>/<class>/<split>/ with audio clips)")
    found = sorted(p.relative_to(root).as_posix() for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not found:
        raise AudioError(f"{folder}: no .flac or .wav clips")
    return found


def _read(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[1] != 1:
        raise AudioError(f"{path}: {data.shape[1]} channels; mixture sets use mono clips")
    return data[:, 0]


def make_mixture_set(
    root: str | os.PathLike,
    classes: Sequence[str],
    *,
    split: str = "test",
    n: int = 100,
    seed: int = 0,
    gains: str = "paper",
) -> dict:
    """Draw ``n`` mixtures of one clip per class; returns the manifest (JSON-ready).

    Raises:
        AudioError: a missing class folder, no clips, or a silent clip drawn.
        ValueError: fewer than two classes, repeated classes, ``n < 1`` or unknown gains.
    """
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"a mixture needs two or more different classes; got {list(classes)}")
    if gains not in GAINS:
        raise ValueError(f"gains must be one of {GAINS}; got {gains!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    root = Path(root)
    pools = {c: list_clips(root, c, split) for c in classes}
    rng = np.random.default_rng([seed, len(classes), 0 if gains == "paper" else 1])
    peaks: dict[str, float] = {}  # a clip drawn again is not read again
    mixtures = []
    for i in range(n):
        entry = {"id": f"{'+'.join(classes)}-{gains}-{seed}-{i:04d}", "sources": []}
        for cls in classes:
            clip = pools[cls][int(rng.integers(len(pools[cls])))]
            db = 0.0 if gains == "paper" else float(rng.uniform(-RANDOM_DB, 0.0))
            if clip not in peaks:
                peaks[clip] = float(np.abs(_read(root / clip)).max())
            peak = peaks[clip]
            if peak == 0.0:
                raise AudioError(f"{root / clip}: silent clip; rebuild the dataset")
            entry["sources"].append({"class": cls, "clip": clip, "db": db, "gain": 10 ** (db / 20) / peak})
        mixtures.append(entry)
    return {"format": FORMAT, "classes": list(classes), "split": split, "n": n, "seed": seed,
            "gains": gains, "random_db": RANDOM_DB if gains == "random" else None, "mixtures": mixtures}


def write_manifest(manifest: dict, path: str | os.PathLike) -> Path:
    """Write a manifest atomically (JSON, ASCII only); returns its path."""
    return write_text(path, json.dumps(manifest, indent=1) + "\n")


def load_mixture_set(manifest: str | os.PathLike | dict, root: str | os.PathLike | None = None,
                     limit: int | None = None) -> MixtureSet:
    """Rebuild a mixture set as tensors.

    Args:
        manifest: a manifest file or dict from :func:`make_mixture_set`.
        root: the dataset folder the clip paths are relative to (default: the manifest's
            ``root`` entry, resolved against the manifest file's folder).
        limit: rebuild only the first ``limit`` mixtures.
    Returns:
        a :class:`MixtureSet`: sources ``[N, K, T]`` (each clip times its gain) and
        mixtures ``[N, T]``, their sum.
    """
    base = None
    if not isinstance(manifest, dict):
        base = Path(manifest).resolve().parent
        manifest = json.loads(Path(manifest).read_text())
    if manifest.get("format") != FORMAT:
        raise AudioError(f"not a priorsep mixture manifest (format {manifest.get('format')!r})")
    if root is None:
        root = Path(manifest.get("root", "."))
        if base is not None and not root.is_absolute():
            root = base / root
    root = Path(root)
    entries = manifest["mixtures"][:limit]
    rows = [[_read(root / s["clip"]) * np.float32(s["gain"]) for s in e["sources"]] for e in entries]
    lengths = {x.shape[0] for row in rows for x in row}
    if len(lengths) != 1:
        raise AudioError(f"{root}: the clips of a mixture set must have one length; found {sorted(lengths)}")
    sources = torch.from_numpy(np.stack([np.stack(row) for row in rows]))
    return MixtureSet(sources.sum(dim=1), sources, list(manifest["classes"]), [e["id"] for e in entries], manifest)
