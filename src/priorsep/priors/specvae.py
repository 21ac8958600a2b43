"""A clip-level VAE on log-magnitude spectrograms: a magnitude prior with an encoder.

Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (arXiv:1312.6114),
applied to whole clips: the input is ``log(1 + |X|)`` of a 16384-sample clip under a
centred STFT (periodic Hann 1024, hop 256: 513 bins x 65 frames), treated as a
513-channel sequence over time. docs/method.md §6 measured this family beating a GAN prior
on our CPU: it is trained by reconstruction, so its decoder covers its training clips by
construction, and its encoder gives the search a starting point.

* Encoder: ``Conv1d(513 -> C, 3)``, two ``Conv1d(C -> C, 4, stride 2)`` (65 -> 32 -> 16
  frames), GELU between, flatten, ``Linear(16 C -> 2 D)``: the mean and log-variance of
  ``q(z | x)``.
* Decoder: ``Linear(D -> 17 C)``, twice (nearest x2 upsampling, ``Conv1d(C -> C, 5)``,
  GELU) to 68 frames, cropped to 65, ``Conv1d(C -> 513, 3)``, softplus: ``log(1 + |X|)``.

As a prior it has ``magnitude(z) -> [B, 513, 65]`` (linear magnitudes, ``expm1`` of the
decoder) and ``encode(x [B, T]) -> z [B, D]`` (the posterior mean); ``generate(z)`` makes
a waveform from the magnitude by Griffin-Lim, for listening only: the separator works on
the magnitudes. Latents are standard-normal a priori; the search boxes them to
``latent_bound``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import spectral
from ..constants import CLIP_LENGTH, SAMPLE_RATE
from .base import register_family

__all__ = ["SpecVAE", "log_magnitude"]

N_FFT = 1024
HOP = 256
BINS = N_FFT // 2 + 1  # 513
FRAMES = CLIP_LENGTH // HOP + 1  # 65


def log_magnitude(x: Tensor, n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """``log(1 + |STFT(x)|)``, the VAE's input, under the centred STFT.

    Args:
        x: waveforms ``[B, T]``.
        n_fft, hop: the STFT's (default 1024 / 256, the prior's).
    Returns:
        ``[B, n_fft // 2 + 1, frames]``: ``[B, 513, 65]`` for 16384-sample clips.
    """
    return torch.log1p(spectral.analysis(x, n_fft, hop).abs())


@register_family("specvae")
class SpecVAE(nn.Module):
    """Clip-level VAE prior on log-magnitude spectrograms (module docstring).

    Args:
        channels: C, the width of every hidden layer.
        latent_dim: D.
        sample_rate: the clips' rate (only recorded; the STFT is in samples).
        name: the source class.
    Raises:
        ValueError: ``channels`` or ``latent_dim`` below 1; the methods, an input of
            another shape than they state.
    """

    domain = "magnitude"
    #: the search's box: posterior means of held-out clips of the own class stay inside it;
    #: other classes' clips and mixtures can be encoded far outside, where the decoder's
    #: output explodes (measured: benchmarks/DESIGN.md, "The specvae latent box")
    latent_bound = 6.0
    #: largest log(1 + |X|) the decoder may output (peak-normalised clips stay below 6.3)
    max_log_magnitude = 12.0
    n_fft = N_FFT
    hop = HOP

    def __init__(self, channels: int = 160, latent_dim: int = 64, sample_rate: int = SAMPLE_RATE,
                 name: str = "specvae") -> None:
        super().__init__()
        if channels < 1 or latent_dim < 1:
            raise ValueError(f"channels and latent_dim must be positive; got {channels}, {latent_dim}")
        self.channels, self.latent_dim = channels, latent_dim
        self.sample_rate, self.name, self.length = sample_rate, name, CLIP_LENGTH
        c = channels
        self.enc = nn.ModuleList([
            nn.Conv1d(BINS, c, 3, padding=1),
            nn.Conv1d(c, c, 4, stride=2, padding=1),  # 65 -> 32
            nn.Conv1d(c, c, 4, stride=2, padding=1),  # 32 -> 16
        ])
        self.enc_out = nn.Linear(16 * c, 2 * latent_dim)
        self.dec_in = nn.Linear(latent_dim, 17 * c)
        self.dec = nn.ModuleList([nn.Conv1d(c, c, 5, padding=2), nn.Conv1d(c, c, 5, padding=2)])
        self.dec_out = nn.Conv1d(c, BINS, 3, padding=1)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``, ignoring the ``density.*`` tensors of files saved
        with a latent density (the search term and ``fit-density`` that wrote them are gone)."""
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("density.")}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # --- the VAE --------------------------------------------------------------------

    def posterior(self, logmag: Tensor) -> tuple[Tensor, Tensor]:
        """``log(1 + |X|)`` ``[B, 513, 65]`` -> mean and log-variance ``[B, D]`` each."""
        if logmag.dim() != 3 or logmag.shape[1:] != (BINS, FRAMES):
            raise ValueError(f"expected log-magnitudes [B, {BINS}, {FRAMES}]; got {tuple(logmag.shape)}")
        h = logmag
        for conv in self.enc:
            h = F.gelu(conv(h))
        mean, logvar = self.enc_out(h.flatten(1)).chunk(2, dim=-1)
        return mean, logvar.clamp(-12.0, 6.0)

    def decode(self, z: Tensor) -> Tensor:
        """``z [B, D]`` -> ``log(1 + |X|)`` ``[B, 513, 65]``."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected z of shape [B, {self.latent_dim}]; got {tuple(z.shape)}")
        h = F.gelu(self.dec_in(z)).view(z.shape[0], self.channels, 17)
        for conv in self.dec:
            h = F.gelu(conv(F.interpolate(h, scale_factor=2, mode="nearest")))
        return F.softplus(self.dec_out(h[..., :FRAMES]))

    # --- the prior interface -----------------------------------------------------------

    def encode(self, x: Tensor) -> Tensor:
        """Waveforms ``[B, 16384]`` -> posterior means ``[B, D]`` (the search's start)."""
        if x.dim() != 2 or x.shape[1] != CLIP_LENGTH:
            raise ValueError(f"expected waveforms [B, {CLIP_LENGTH}]; got {tuple(x.shape)}")
        return self.posterior(log_magnitude(x.float()))[0]

    def magnitude(self, z: Tensor) -> Tensor:
        """``z [B, D]`` -> linear STFT magnitudes ``[B, 513, 65]`` (``analysis`` layout)."""
        return torch.expm1(self.decode(z).clamp_max(self.max_log_magnitude))

    def generate(self, z: Tensor, iterations: int = 32) -> Tensor:
        """``z [B, D]`` -> waveforms ``[B, 16384]`` by Griffin-Lim from :meth:`magnitude`
        (seeded zero-phase start; for listening and plots, not for separation)."""
        return spectral.griffin_lim(self.magnitude(z), N_FFT, HOP, CLIP_LENGTH, iterations)

    def forward(self, z: Tensor) -> Tensor:
        return self.magnitude(z)

    def arch_config(self) -> dict[str, Any]:
        return {"family": "specvae", "channels": self.channels, "latent_dim": self.latent_dim,
                "n_fft": N_FFT, "hop": HOP}

    @classmethod
    def from_arch_config(cls, cfg: dict[str, Any], sample_rate: int, name: str) -> "SpecVAE":
        if cfg.get("family") != "specvae":
            raise ValueError(f"arch config family must be 'specvae', got {cfg.get('family')!r}")
        if (cfg.get("n_fft"), cfg.get("hop")) != (N_FFT, HOP):
            raise ValueError(f"this version reads STFT {N_FFT}/{HOP} only; got {cfg.get('n_fft')}/{cfg.get('hop')}")
        return cls(channels=int(cfg["channels"]), latent_dim=int(cfg["latent_dim"]),
                   sample_rate=sample_rate, name=name)
