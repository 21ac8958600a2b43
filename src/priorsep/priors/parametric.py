"""Two tiny parametric priors that need no training: ``tone`` and ``burst``.

They serve the tests and the demo: their sources are known exactly, so a separation of
their mixtures can be scored against the truth, and their latent spaces are small
enough that the latent search of METHOD.md §3 finds them in a few hundred steps.
Both map z in [-1, 1]^D smoothly to a waveform ``[B, length]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..constants import CLIP_LENGTH, SAMPLE_RATE
from .base import register_family


def _unit(z: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1]."""
    return (z.clamp(-1, 1) + 1) / 2


def _log_range(u: Tensor, lo: float, hi: float) -> Tensor:
    """[0, 1] -> [lo, hi], geometrically."""
    return lo * (hi / lo) ** u


class _Parametric(nn.Module):
    name: str
    latent_dim: int
    latent_bound = 1.0

    def __init__(self, sample_rate: int = SAMPLE_RATE, length: int = CLIP_LENGTH):
        super().__init__()
        self.sample_rate = sample_rate
        self.length = length
        self.register_buffer("t", torch.arange(length, dtype=torch.float32) / sample_rate, persistent=False)

    def _check(self, z: Tensor) -> None:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"{self.name} prior expects z [B, {self.latent_dim}]; got {tuple(z.shape)}")

    def options(self) -> dict:
        """Constructor arguments beyond rate and length (saved in the prior file)."""
        return {}

    def arch_config(self) -> dict:
        return {"family": type(self).name, "length": self.length, **self.options()}

    @classmethod
    def from_arch_config(cls, cfg: dict, sample_rate: int, name: str) -> "_Parametric":
        extra = {k: v for k, v in cfg.items() if k not in ("family", "length")}
        prior = cls(sample_rate=sample_rate, length=int(cfg["length"]), **extra)
        prior.name = name
        return prior


@register_family("tone")
class TonePrior(_Parametric):
    """A decaying harmonic note: a few sinusoids at multiples of one fundamental.

    z = [fundamental (one, 150 Hz to 600 Hz, log scale), harmonic amplitudes
    (``harmonics``, 0.1 to 1), decay time (one, 0.15 s to 3 s)]; fixed phases.
    Harmonic partials keep the search's landscape benign: independent free
    frequencies would give the spectral losses a local minimum at every partial.

    ``generate(z [B, harmonics + 2]) -> [B, length]``.
    """

    name = "tone"

    def __init__(self, harmonics: int = 4, sample_rate: int = SAMPLE_RATE, length: int = CLIP_LENGTH):
        super().__init__(sample_rate, length)
        self.harmonics = harmonics
        self.latent_dim = harmonics + 2
        self.register_buffer("order", torch.arange(1, harmonics + 1, dtype=torch.float32), persistent=False)
        self.register_buffer("phase", torch.linspace(0, math.pi, harmonics), persistent=False)

    def options(self) -> dict:
        return {"harmonics": self.harmonics}

    def generate(self, z: Tensor) -> Tensor:
        self._check(z)
        h = self.harmonics
        f0 = _log_range(_unit(z[:, :1]), 150.0, 600.0)  # [B, 1]
        amp = 0.1 + 0.9 * _unit(z[:, 1 : 1 + h])  # [B, h]
        decay = _log_range(_unit(z[:, 1 + h :]), 0.15, 3.0)  # [B, 1]
        arg = 2 * math.pi * (f0 * self.order)[:, :, None] * self.t + self.phase[:, None]  # [B, h, T]
        note = (amp[:, :, None] * torch.sin(arg)).sum(dim=1)
        return note * torch.exp(-self.t / decay)


@register_family("burst")
class BurstPrior(_Parametric):
    """A burst of band-pass-filtered noise with an exponentially decaying envelope.

    z = [centre frequency (200 Hz to 5 kHz), bandwidth (0.3 to 2 octaves, Gaussian in
    log-frequency), decay time (20 ms to 400 ms)]. The noise is one fixed, seeded buffer,
    so ``generate`` is deterministic. The burst starts at sample 0 with a 2 ms attack,
    like a start-aligned drum one-shot.

    ``generate(z [B, 3]) -> [B, length]``.
    """

    name = "burst"
    latent_dim = 3

    def __init__(self, sample_rate: int = SAMPLE_RATE, length: int = CLIP_LENGTH, noise_seed: int = 1234):
        super().__init__(sample_rate, length)
        self.noise_seed = noise_seed
        gen = torch.Generator().manual_seed(noise_seed)
        noise = torch.randn(length, generator=gen)
        self.register_buffer("noise_spec", torch.fft.rfft(noise), persistent=False)
        freqs = torch.fft.rfftfreq(length, 1 / sample_rate)
        self.register_buffer("log_f", torch.log2(freqs.clamp_min(1.0)), persistent=False)
        self.register_buffer("attack", (self.t / 0.002).clamp(max=1.0), persistent=False)

    def options(self) -> dict:
        return {"noise_seed": self.noise_seed}

    def generate(self, z: Tensor) -> Tensor:
        self._check(z)
        centre = torch.log2(_log_range(_unit(z[:, :1]), 200.0, 5000.0))  # [B, 1], octaves
        width = 0.3 + 1.7 * _unit(z[:, 1:2])  # [B, 1], octaves
        decay = _log_range(_unit(z[:, 2:3]), 0.02, 0.4)  # [B, 1], seconds
        gain = torch.exp(-0.5 * ((self.log_f - centre) / width) ** 2)  # [B, F]
        noise = torch.fft.irfft(self.noise_spec * gain, n=self.length)
        return noise * self.attack * torch.exp(-self.t / decay)


BUILTIN = {"tone": TonePrior, "burst": BurstPrior}
