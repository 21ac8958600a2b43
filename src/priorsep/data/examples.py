"""Bundled example mixtures: ``priorsep/examples/<name>/`` holds ``mixture.wav``, one WAV
per source named by its class, and ``example.json`` (where it came from)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from ..audio import read_audio
from ..errors import DataError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_names() -> list[str]:
    """The bundled examples."""
    return sorted(p.parent.name for p in EXAMPLES.glob("*/example.json"))


def load_example(name: str = "digits_drums") -> tuple[list[str], Tensor, Tensor, int]:
    """A bundled example: its classes, the mixture ``[T]``, the true sources ``[K, T]``
    (which sum to the mixture) and the sample rate."""
    folder = EXAMPLES / name
    if not (folder / "example.json").is_file():
        raise DataError(f"no bundled example {name!r}; bundled: {', '.join(example_names())}")
    info = json.loads((folder / "example.json").read_text())
    classes = [s["class"] for s in info["sources"]]
    mixture = read_audio(folder / "mixture.wav")
    sources = [read_audio(folder / f"{c}.wav", allow_silent=True) for c in classes]
    return (classes, torch.from_numpy(mixture.samples), torch.stack([torch.from_numpy(s.samples) for s in sources]),
            mixture.sample_rate)
