"""A score (diffusion) prior on log-magnitude spectrograms, sized for a CPU.

A noise-conditional score network (Song & Ermon, "Generative Modeling by Estimating
Gradients of the Data Distribution", NeurIPS 2019, arXiv:1907.05600) learns the gradient of
the log density of one class's ``log(1 + |X|)`` spectrograms blurred by Gaussian noise of
width ``sigma``. Separation samples the sources' posterior given the mixture
(:mod:`priorsep.separate.posterior`'s projection sampler; the score-prior separation of
Jayaram & Thickstun, "Source Separation with Deep Generative Priors", ICML 2020,
arXiv:2002.07942, is where the idea comes from). Unlike a generator G(z),
such a prior assigns every spectrogram a (blurred) density, so another class's sound is
improbable under it rather than merely reachable.

Representation: a centred periodic-Hann STFT (:func:`priorsep.spectral.analysis`) of
``n_fft`` points and hop ``hop``, by default 512 / 256 (257 bins x 65 frames of a
16384-sample clip), ``log(1 + |X|)``, cropped to the lowest ``n_fft / 2`` bins and the first
``16384 / hop`` frames: ``x [B, F, N]``, by default ``[B, 256, 64]``. :func:`to_image` and
:func:`from_image` convert; a prior's ``image(spec)`` crops to its own size. A finer STFT
(``n_fft=1024``: 16 Hz bins, ``[B, 512, 64]``) costs about twice the compute per step.

Network: a small U-Net on 2x2 patches of the image (channels ``widths`` at F/2 x N/2 and
three halvings, 128x32 down to 16x4 by default; one residual block of two 3x3 convolutions
with GroupNorm and SiLU per level and direction, skips concatenated), conditioned on
``log sigma`` through random Fourier features and an MLP whose output is added to every
block. It predicts the noise ``eps`` of ``x_sigma = x + sigma * eps``; the score is
``-eps_hat / sigma``.

As a prior it has the :class:`~priorsep.priors.base.Prior` fields (so it is saved, loaded,
listed and carded like every prior) and ``generate(z)``, which samples (denoising and renoising
down the noise schedule) from the noise ``z`` (``latent_dim`` = F x N cells) and returns a waveform by
Griffin-Lim, for listening only. The latent search does not use score priors (it refuses
them); the posterior sampler does.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import spectral
from ..constants import CLIP_LENGTH, SAMPLE_RATE
from .base import register_family

__all__ = ["ScorePrior", "from_image", "image_size", "sigma_schedule", "to_image"]

#: the default STFT; a prior records its own (``n_fft``, ``hop``)
N_FFT = 512
HOP = 256
BINS, FRAMES = 256, 64  # the default image: 257 x 65 cropped
#: the noise widths training draws from (log-uniformly) and sampling anneals over
SIGMA_MIN, SIGMA_MAX = 0.02, 4.0


def image_size(n_fft: int, hop: int) -> tuple[int, int]:
    """The image ``(F, N)`` of a clip's STFT of ``n_fft`` / ``hop``, or a ValueError if the
    U-Net cannot take it (its 2x2 patches and three halvings need multiples of 16).

    >>> image_size(512, 256), image_size(1024, 128)
    ((256, 64), (512, 128))
    """
    if not 0 < hop <= n_fft or (n_fft // 2) % 16 or n_fft % 2 or CLIP_LENGTH % hop or (CLIP_LENGTH // hop) % 16:
        raise ValueError(f"n_fft {n_fft} / hop {hop}: the image's bins (n_fft / 2) and frames "
                         f"({CLIP_LENGTH} / hop) must be whole multiples of 16, and hop at most n_fft")
    return n_fft // 2, CLIP_LENGTH // hop


def to_image(spec: Tensor, bins: int = BINS, frames: int = FRAMES) -> Tensor:
    """Complex or magnitude STFT ``[..., bins + 1, frames + 1]`` (by default ``[..., 257, 65]``,
    512/256) -> ``log(1 + |X|)`` ``[..., bins, frames]``."""
    if spec.shape[-2:] != (bins + 1, frames + 1):
        raise ValueError(f"expected an STFT [..., {bins + 1}, {frames + 1}]; got {tuple(spec.shape)}")
    return torch.log1p(spec.abs()[..., :bins, :frames])


def from_image(img: Tensor) -> Tensor:
    """``log(1 + |X|)`` ``[..., F, N]`` -> linear magnitudes ``[..., F + 1, N + 1]`` (the cropped
    top bin and last frame repeat their neighbours)."""
    if img.dim() < 2 or min(img.shape[-2:]) < 2:
        raise ValueError(f"expected images [..., F, N] of at least 2 x 2; got {tuple(img.shape)}")
    bins, frames = img.shape[-2:]
    mag = torch.expm1(img.clamp_min(0.0))
    padded = F.pad(mag.reshape(-1, 1, bins, frames), (0, 1, 0, 1), mode="replicate")
    return padded.view(*img.shape[:-2], bins + 1, frames + 1)


def sigma_schedule(levels: int, sigma_max: float = SIGMA_MAX, sigma_min: float = SIGMA_MIN) -> Tensor:
    """``levels`` noise widths, geometric from ``sigma_max`` down to ``sigma_min``.

    >>> [round(s, 3) for s in sigma_schedule(3, 4.0, 0.04).tolist()]
    [4.0, 0.4, 0.04]
    """
    return torch.logspace(math.log10(sigma_max), math.log10(sigma_min), levels)


class _Block(nn.Module):
    """Residual block: (GroupNorm, SiLU, 3x3 conv) twice, the noise embedding added between."""

    def __init__(self, c_in: int, c_out: int, emb: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb, c_out)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(e)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


@register_family("score")
class ScorePrior(nn.Module):
    """Noise-conditional score network on ``log(1 + |X|)`` images ``[B, F, N]`` (module docstring).

    Args:
        widths: channels at each of the four resolutions.
        sample_rate: the clips' rate (only recorded).
        name: the source class.
        n_fft, hop: the STFT of its images (``F = n_fft / 2`` bins, ``N = 16384 / hop``
            frames; both must be multiples of 16, the U-Net's patches and three halvings).

    >>> prior = ScorePrior(widths=(8, 8, 8, 8), n_fft=1024)
    >>> prior.bins, prior.frames, prior.latent_dim, tuple(prior.noise(torch.zeros(1, 512, 64), 1.0).shape)
    (512, 64, 32768, (1, 512, 64))
    """

    domain = "score"
    latent_bound = None
    sigma_min, sigma_max = SIGMA_MIN, SIGMA_MAX

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), sample_rate: int = SAMPLE_RATE,
                 name: str = "score", n_fft: int = N_FFT, hop: int = HOP) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths must be four positive channel counts; got {widths}")
        self.widths, self.sample_rate, self.name = widths, sample_rate, name
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.bins, self.frames = image_size(self.n_fft, self.hop)
        self.length, self.latent_dim = CLIP_LENGTH, self.bins * self.frames
        emb = 4 * widths[0]
        self.register_buffer("fourier", torch.randn(emb // 2, generator=torch.Generator().manual_seed(0)))
        self.emb = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(4, widths[0], 3, padding=1)  # on 2x2 patches: F/2 x N/2
        self.down = nn.ModuleList(_Block(widths[max(i - 1, 0)], w, emb) for i, w in enumerate(widths))
        self.mid = _Block(widths[-1], widths[-1], emb)
        self.up = nn.ModuleList(_Block(2 * w, widths[max(i - 1, 0)], emb) for i, w in reversed(list(enumerate(widths))))
        self.out = nn.Conv2d(widths[0], 4, 3, padding=1)

    def _embedding(self, sigma: Tensor) -> Tensor:
        angle = torch.log(sigma)[:, None] * self.fourier[None] * 2 * math.pi
        return self.emb(torch.cat([angle.sin(), angle.cos()], dim=1))

    def image(self, spec: Tensor) -> Tensor:
        """This prior's image of an STFT of its ``n_fft`` / ``hop``: ``[..., F + 1, N + 1]`` ->
        ``log(1 + |X|)`` ``[..., F, N]``."""
        return to_image(spec, self.bins, self.frames)

    def noise(self, x: Tensor, sigma: Tensor) -> Tensor:
        """Predicted noise ``eps_hat`` of noisy images ``x [B, F, N]`` at widths ``sigma [B]``."""
        if x.dim() != 3 or x.shape[1:] != (self.bins, self.frames):
            raise ValueError(f"expected log-magnitude images [B, {self.bins}, {self.frames}]; got {tuple(x.shape)}")
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        e = self._embedding(sigma)
        # the input scaled to about unit variance at every noise level (as in EDM's c_in)
        h = self.inp(F.pixel_unshuffle((x / torch.sqrt(1.0 + sigma**2)[:, None, None])[:, None], 2))
        skips = []
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else F.avg_pool2d(h, 2), e)
            skips.append(h)
        h = self.mid(h, e)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), e)
            if skips:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
        return F.pixel_shuffle(self.out(h), 2)[:, 0]

    def sample_images(self, z: Tensor, levels: int = 60) -> Tensor:
        """Sampling from the noise ``z [B, F * N]`` -> images ``[B, F, N]``: at each width
        of a geometric schedule the image is denoised (Tweedie's formula) and renoised with
        fresh noise at the next width, the unconstrained form of
        :mod:`priorsep.separate.posterior`'s projection sampler."""
        x = z.view(-1, self.bins, self.frames) * self.sigma_max
        gen = torch.Generator(device=z.device).manual_seed(0)  # the same z gives the same sample
        sigmas = sigma_schedule(levels, self.sigma_max, self.sigma_min).to(z)
        for i, sigma in enumerate(sigmas):
            x0 = x - sigma * self.noise(x, sigma)
            if i + 1 < len(sigmas):
                x = x0 + sigmas[i + 1] * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        return x0

    @torch.no_grad()
    def generate(self, z: Tensor, iterations: int = 32) -> Tensor:
        """Noise ``z [B, F * N]`` -> waveforms ``[B, 16384]`` (Griffin-Lim of a sampled
        spectrogram; for listening and model cards)."""
        return spectral.griffin_lim(from_image(self.sample_images(z)), self.n_fft, self.hop, CLIP_LENGTH, iterations)

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        return self.noise(x, sigma)

    def arch_config(self) -> dict[str, Any]:
        return {"family": "score", "widths": list(self.widths), "n_fft": self.n_fft, "hop": self.hop,
                "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX}

    @classmethod
    def from_arch_config(cls, cfg: dict[str, Any], sample_rate: int, name: str) -> "ScorePrior":
        if cfg.get("family") != "score":
            raise ValueError(f"arch config family must be 'score', got {cfg.get('family')!r}")
        return cls(widths=tuple(cfg["widths"]), sample_rate=sample_rate, name=name,
                   n_fft=cfg.get("n_fft", N_FFT), hop=cfg.get("hop", HOP))
