"""How well a prior represents a class: latent projection of held-out clips.

A prior can only separate what it can generate. The report searches the prior's latent
space for each held-out clip alone (K = 1, with the separator's objective and starting
point: by default the ``best`` preset's magnitude fit from the prior's encoder; with
``preset="paper"`` the losses of METHOD.md §3, where the source-dissimilarity term
vanishes) and scores the fit against the clip it should reproduce, by spectral SNR
(METHOD.md §4) and SI-SDR. A prior that represents its class fits clips of that class
clearly better than clips of another class.

The fit is the separator's ``generated`` output: under the magnitude objective a
waveform prior's output times its fitted gain, or a magnitude prior's fitted magnitude
with the clip's own phase (so its SI-SDR is not comparable with a waveform prior's; its
spectral SNR is).

Two references put the figures in scale: ``start``, the same scores for the search's
starting point before any step, and ``other clip``, the scores of another random clip
of the same set used as the estimate (what "fitting" a clip by knowing only its class
would give). METHOD.md §6 reports priors that did not beat the latter.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from .metrics import si_sdr, spectral_snr
from .mixing import peak_normalise
from .priors.base import Prior
from .separate import PRESETS, Separator

SCORES = ("spectral_snr", "si_sdr")


@dataclass
class Projection:
    """Projections of clips ``[N, L]`` onto one prior and their scores.

    Attributes:
        clips: the peak-normalised clips ``[N, L]``.
        generated: the prior's best fits ``[N, L]`` (peak-normalised).
        start: the prior's output at the search's start ``[N, L]``.
        scores: per clip, ``{"spectral_snr": [N], "si_sdr": [N]}`` for the fits, and the
            same under ``"start"`` and ``"other clip"`` for the two references.
        seconds: wall time of the search.
    """

    clips: Tensor
    generated: Tensor
    start: Tensor
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0

    def medians(self) -> dict[str, dict[str, float]]:
        """``{"projection"|"start"|"other clip": {score: median}}``; NaN scores (a silent
        estimate has no SI-SDR) are left out, and a row of them gives NaN."""
        return {row: {k: float(np.median(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")
                      for k, v in s.items()} for row, s in self.scores.items()}


def _score(clips: Tensor, estimates: Tensor) -> dict[str, np.ndarray]:
    pairs = list(zip(clips.numpy(), estimates.numpy()))
    return {
        "spectral_snr": np.array([spectral_snr(c, e) for c, e in pairs]),
        "si_sdr": np.array([si_sdr(c, e) for c, e in pairs]),
    }


def project(prior: Prior, clips: Tensor, *, preset: str = "best", steps: int | None = None, restarts: int = 1,
            seed: int = 0, progress: bool = False) -> Projection:
    """Fit each clip with the prior alone and score the fits.

    Args:
        prior: the prior to judge.
        clips: ``[N, L]`` clips at the prior's rate and length (``L`` = ``prior.length``).
        preset: the separator's settings (:data:`~priorsep.separate.PRESETS`).
        steps: search steps per clip (default: the preset's).
        restarts: searches per clip, the best kept by loss.
    """
    clips = torch.as_tensor(clips, dtype=torch.float32)
    if clips.dim() != 2 or clips.shape[0] < 2 or clips.shape[1] != prior.length:
        raise ValueError(f"clips must be [N >= 2, {prior.length}] for this prior; got {tuple(clips.shape)}")
    clips = peak_normalise(clips)
    config = replace(PRESETS[preset], restarts=restarts, seed=seed)
    if steps is not None:
        config = replace(config, steps=steps)
    result = Separator([prior], config, progress=progress, min_priors=1).separate(clips)
    start = Separator([prior], config, steps=0, restarts=1, min_priors=1).separate(clips).generated[:, 0]
    generated = result.generated[:, 0].detach()
    others = clips.roll(1, dims=0)  # each clip scored against its neighbour in the (shuffled) set
    out = Projection(clips, generated, start.detach(), seconds=result.seconds)
    out.scores = {"projection": _score(clips, generated), "start": _score(clips, start.detach()),
                  "other clip": _score(clips, others)}
    return out


def pick(clips: Tensor, n: int, seed: int = 0) -> Tensor:
    """A seeded random subset of ``n`` clips (all of them, shuffled, if fewer)."""
    order = torch.randperm(clips.shape[0], generator=torch.Generator().manual_seed(seed))
    return clips[order[:n]]


def prior_report(prior: Prior, sets: Mapping[str, Tensor], *, preset: str = "best", steps: int | None = None,
                 n: int = 32, restarts: int = 1, seed: int = 0, progress: bool = False) -> dict[str, Projection]:
    """Project ``n`` seeded clips of each named set onto the prior.

    Args:
        sets: ``{label: clips [N, L]}``, e.g. ``{"digits (own)": ..., "drums": ...}``.
    Returns:
        ``{label: Projection}`` in the order given.
    """
    return {label: project(prior, pick(clips, n, seed), preset=preset, steps=steps, restarts=restarts, seed=seed,
                           progress=progress) for label, clips in sets.items()}


def report_table(projections: Mapping[str, Projection]) -> str:
    """Markdown table: one row per set and row kind, median spectral SNR and SI-SDR (dB)."""
    lines = ["| clips | n | estimate | spectral SNR (dB) | SI-SDR (dB) |", "|---|---:|---|---:|---:|"]
    for label, proj in projections.items():
        for row, med in proj.medians().items():
            cells = " | ".join("n/a" if np.isnan(med[k]) else f"{med[k]:.2f}" for k in SCORES)
            lines.append(f"| {label} | {proj.clips.shape[0]} | {row} | {cells} |")
    return "\n".join(lines)
