"""How well a prior represents a class: latent projection of held-out clips.

A prior can only separate what it can generate. The report searches the prior's latent
space for each held-out clip alone (K = 1, with the separator's objective and starting
point: by default the ``best`` preset's magnitude fit from the prior's encoder; with
``preset="paper"`` the losses of docs/method.md §3, where the source-dissimilarity term
vanishes) and scores the fit against the clip it should reproduce, by spectral SNR
(docs/method.md §4) and SI-SDR. A prior that represents its class fits clips of that class
clearly better than clips of another class.

The fit is the separator's ``generated`` output: under the magnitude objective a
waveform prior's output times its fitted gain, or a magnitude prior's fitted magnitude
with the clip's own phase (so its SI-SDR is not comparable with a waveform prior's; its
spectral SNR is).

Two references put the figures in scale: ``start``, the same scores for the search's
starting point before any step, and ``other clip``, the scores of another random clip
of the same set used as the estimate (what "fitting" a clip by knowing only its class
would give). docs/method.md §6 reports priors that did not beat the latter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .fsutil import StagedDir
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
            seed: int = 0, progress: bool = False, objective: str | None = None,
            device: str | None = None) -> Projection:
    """Fit each clip with the prior alone and score the fits.

    Args:
        prior: the prior to judge.
        clips: ``[N, L]`` clips at the prior's rate and length (``L`` = ``prior.length``).
        preset: the separator's settings (:data:`~priorsep.separate.PRESETS`).
        steps: search steps per clip (default: the preset's).
        restarts: searches per clip, the best kept by loss.
        objective: what the search fits (default: the preset's).
        device: where the search runs (default: the clips' device).
    """
    clips = torch.as_tensor(clips, dtype=torch.float32)
    if clips.dim() != 2 or clips.shape[0] < 2 or clips.shape[1] != prior.length:
        raise ValueError(f"clips must be [N >= 2, {prior.length}] for this prior; got {tuple(clips.shape)}")
    clips = peak_normalise(clips)
    config = replace(PRESETS[preset], restarts=restarts, seed=seed)
    if steps is not None:
        config = replace(config, steps=steps)
    if objective is not None:
        config = replace(config, objective=objective)
    result = Separator([prior], config, progress=progress, min_priors=1, device=device).separate(clips)
    start = Separator([prior], config, steps=0, restarts=1, min_priors=1, device=device).separate(clips).generated[:, 0]
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
                 n: int = 32, restarts: int = 1, seed: int = 0, progress: bool = False, objective: str | None = None,
                 device: str | None = None) -> dict[str, Projection]:
    """Project ``n`` seeded clips of each named set onto the prior.

    Args:
        sets: ``{label: clips [N, L]}``, e.g. ``{"digits (own)": ..., "drums": ...}``.
    Returns:
        ``{label: Projection}`` in the order given.
    """
    return {label: project(prior, pick(clips, n, seed), preset=preset, steps=steps, restarts=restarts, seed=seed,
                           objective=objective, device=device, progress=progress) for label, clips in sets.items()}


def report_table(projections: Mapping[str, Projection]) -> str:
    """Markdown table: one row per set and row kind, median spectral SNR and SI-SDR (dB)."""
    lines = ["| clips | n | estimate | spectral SNR (dB) | SI-SDR (dB) |", "|---|---:|---|---:|---:|"]
    for label, proj in projections.items():
        for row, med in proj.medians().items():
            cells = " | ".join("n/a" if np.isnan(med[k]) else f"{med[k]:.2f}" for k in SCORES)
            lines.append(f"| {label} | {proj.clips.shape[0]} | {row} | {cells} |")
    return "\n".join(lines)


def margins(projections: Mapping[str, Projection]) -> dict[str, dict[str, float]]:
    """Own class minus each other set: the first set's median projection scores minus
    each later set's, ``{label: {score: dB}}``. A prior that knows its class has clearly
    positive margins."""
    medians = {label: proj.medians()["projection"] for label, proj in projections.items()}
    own = next(iter(medians.values()))
    return {label: {k: own[k] - m[k] for k in own} for label, m in list(medians.items())[1:]}


def write_report(out: str | os.PathLike | StagedDir, prior: Prior, projections: Mapping[str, Projection],
                 folders: Sequence[str], settings: dict, *, seed: int = 0, extra: dict | None = None) -> str:
    """Write a prior report to the folder ``out`` (or the :class:`~priorsep.fsutil.StagedDir`
    made for it beforehand; staged, whole or not at all):
    ``report.md`` (the table), ``report.json`` (medians, per-clip scores, margins,
    settings), ``samples.png`` (8 prior samples from seeded latents) and
    ``projections.png`` (two clips per set and their projections).

    Args:
        projections: :func:`prior_report`'s result; the first set is the prior's own class.
        folders: where each set's clips came from, in the same order.
        settings: the report's settings, recorded as given.
        extra: more top-level fields for ``report.json``.
    Returns:
        the markdown table.
    """
    from .fsutil import write_text
    from .plots import spectrogram_grid
    from .separate.outputs import to_json

    table = report_table(projections)
    gaps = margins(projections)
    with (out if isinstance(out, StagedDir) else StagedDir(out)) as stage:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            samples = prior.generate(torch.rand(8, prior.latent_dim, generator=gen) * 2 - 1).float()
        spectrogram_grid([(f"sample {i}", x) for i, x in enumerate(samples)], prior.sample_rate,
                         stage / "samples.png", title=f"{prior.name}: prior samples")
        panels = []
        for label, proj in projections.items():
            for j in range(min(2, proj.clips.shape[0])):
                panels += [(f"{label[:24]} clip {j}", proj.clips[j]), (f"projection {j}", proj.generated[j])]
        spectrogram_grid(panels, prior.sample_rate, stage / "projections.png", cols=4,
                         title=f"{prior.name}: held-out clips and their projections ({settings.get('preset')} preset)")
        report = {
            **(extra or {}),
            "prior_name": prior.name,
            "prior_metadata": getattr(prior, "metadata", {}),
            "settings": settings,
            "sets": {label: {"folder": folder, "clips": int(proj.clips.shape[0]), "median": proj.medians(),
                             "seconds": round(proj.seconds, 2),
                             "per_clip": {row: {k: v.tolist() for k, v in sc.items()}
                                          for row, sc in proj.scores.items()}}
                     for (label, proj), folder in zip(projections.items(), folders)},
            "own_minus_other": gaps,
        }
        write_text(stage / "report.json", to_json(report) + "\n")
        write_text(stage / "report.md", table + "\n")
    return table
