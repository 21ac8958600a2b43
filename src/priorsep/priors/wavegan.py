"""WaveGAN generator / discriminator and a generator-backed source prior.

Architecture after Donahue, McAuley, Puckette, "Adversarial Audio Synthesis",
ICLR 2019 (arXiv:1802.04208), as specified in METHOD.md section 2:

* Generator: dense ``latent_dim -> 16*16d``, reshape to ``[16d, 16]``, ReLU, then five
  ``ConvTranspose1d`` (kernel 25, stride 4) taking channels ``16d->8d->4d->2d->d->1`` and
  lengths ``16->64->256->1024->4096->16384``; ReLU between, tanh at the end, no batch norm.
  19,065,345 parameters at ``d = 64``.
  With ``upsample="nearest"`` each transposed convolution becomes nearest-neighbour x4
  upsampling followed by a ``Conv1d`` (kernel 25, "same" padding): the same shapes and
  parameter count, without the checkerboard artefacts of strided transposed convolution
  (Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016).
* Discriminator: five ``Conv1d`` (kernel 25, stride 4, "same" padding) with channels
  ``1->d->2d->4d->8d->16d``, LeakyReLU(0.2) after each, phase shuffle (radius 2) after the
  first four, then flatten ``16*16d -> 1``. 17,427,969 parameters at ``d = 64``.

Weights use PyTorch's default initialisation for ``nn.Linear`` / ``nn.Conv1d`` /
``nn.ConvTranspose1d`` (Kaiming-uniform with ``a = sqrt(5)``); no custom init is applied.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..constants import CLIP_LENGTH, SAMPLE_RATE
from .base import register_family

__all__ = ["WaveGANGenerator", "PhaseShuffle", "WaveGANDiscriminator", "WaveGANPrior"]

_KERNEL = 25
_STRIDE = 4
_PAD = 11  # kernel 25, stride 4: padding 11 gives exact x4 / /4 lengths
UPSAMPLING = ("transpose", "nearest")


class WaveGANGenerator(nn.Module):
    """WaveGAN generator: ``z [B, latent_dim] -> waveform [B, 1, 16384]`` in ``[-1, 1]``."""

    length: int = CLIP_LENGTH

    def __init__(self, d: int = 64, latent_dim: int = 100, upsample: str = "transpose") -> None:
        super().__init__()
        if d < 1 or latent_dim < 1:
            raise ValueError(f"d and latent_dim must be positive, got d={d}, latent_dim={latent_dim}")
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
        self.d, self.upsample = d, upsample
        self.latent_dim = latent_dim
        self.length = CLIP_LENGTH
        self.fc = nn.Linear(latent_dim, 16 * 16 * d)
        chans = [16 * d, 8 * d, 4 * d, 2 * d, d, 1]
        if upsample == "transpose":
            self.deconvs = nn.ModuleList(
                nn.ConvTranspose1d(cin, cout, _KERNEL, stride=_STRIDE, padding=_PAD, output_padding=1)
                for cin, cout in zip(chans[:-1], chans[1:])
            )
        else:
            self.deconvs = nn.ModuleList(
                nn.Sequential(nn.Upsample(scale_factor=_STRIDE, mode="nearest"),
                              nn.Conv1d(cin, cout, _KERNEL, padding=_KERNEL // 2))
                for cin, cout in zip(chans[:-1], chans[1:])
            )

    def forward(self, z: Tensor) -> Tensor:
        """``z [B, latent_dim] -> [B, 1, 16384]``; raises ``ValueError`` on a bad shape."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected z of shape [B, {self.latent_dim}], got {tuple(z.shape)}")
        x = F.relu(self.fc(z).view(z.shape[0], 16 * self.d, 16))  # [B, 16d, 16]
        last = len(self.deconvs) - 1
        for i, deconv in enumerate(self.deconvs):
            x = deconv(x)  # length x4
            x = torch.tanh(x) if i == last else F.relu(x)
        return x


class PhaseShuffle(nn.Module):
    """Per-example random time shift in ``[-radius, radius]`` with reflect padding.

    Input/output ``[B, C, T]``. Example ``b`` with shift ``s_b`` becomes
    ``y[b, :, t] = x[b, :, reflect(t - s_b)]`` where ``reflect`` mirrors indices about
    ``0`` and ``T-1`` (edge sample not repeated, like ``F.pad(mode="reflect")``).
    Shifts are drawn from the global torch RNG. Identity in eval mode or for radius 0.
    """

    def __init__(self, radius: int = 2) -> None:
        super().__init__()
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        self.radius = radius

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.radius == 0:
            return x
        b, c, t = x.shape
        if self.radius >= t:
            raise ValueError(f"phase-shuffle radius {self.radius} needs length > radius, got {t}")
        shifts = torch.randint(-self.radius, self.radius + 1, (b,), device=x.device)
        idx = torch.arange(t, device=x.device).unsqueeze(0) - shifts.unsqueeze(1)  # [B, T]
        idx = idx.abs()  # reflect about 0
        idx = torch.where(idx > t - 1, 2 * (t - 1) - idx, idx)  # reflect about T-1
        return torch.gather(x, 2, idx.unsqueeze(1).expand(b, c, t))


class WaveGANDiscriminator(nn.Module):
    """WaveGAN critic: ``x [B, 1, 16384]`` or ``[B, 16384]`` -> score ``[B]``."""

    def __init__(self, d: int = 64, phase_shuffle: int = 2) -> None:
        super().__init__()
        self.d = d
        chans = [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
        self.convs = nn.ModuleList(
            nn.Conv1d(cin, cout, _KERNEL, stride=_STRIDE, padding=_PAD)
            for cin, cout in zip(chans[:-1], chans[1:])
        )
        self.shuffle = PhaseShuffle(phase_shuffle)
        self.fc = nn.Linear(16 * 16 * d, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] != CLIP_LENGTH:
            raise ValueError(f"expected x of shape [B, 1, {CLIP_LENGTH}] or [B, {CLIP_LENGTH}], got {tuple(x.shape)}")
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.2)  # length / 4
            if i != last:
                x = self.shuffle(x)
        return self.fc(x.flatten(1)).squeeze(1)  # [B, 16*16d] -> [B]


@register_family("wavegan")
class WaveGANPrior(nn.Module):
    """A trained WaveGAN generator used as a source prior: ``generate(z) -> [B, 16384]``.

    Its latents are uniform on ``[-1, 1]^latent_dim`` in training, so the search's box is
    the same (METHOD.md §3).
    """

    latent_bound = 1.0

    def __init__(self, d: int = 64, latent_dim: int = 100, sample_rate: int = SAMPLE_RATE,
                 name: str = "wavegan", upsample: str = "transpose") -> None:
        super().__init__()
        self.d, self.upsample = d, upsample
        self.name = name
        self.latent_dim = latent_dim
        self.sample_rate = sample_rate
        self.length = CLIP_LENGTH
        self.generator = WaveGANGenerator(d=d, latent_dim=latent_dim, upsample=upsample)

    def generate(self, z: Tensor) -> Tensor:
        """``z [B, latent_dim] -> waveform [B, 16384]`` (generator output, channel squeezed)."""
        return self.generator(z).squeeze(1)

    def forward(self, z: Tensor) -> Tensor:
        return self.generate(z)

    def arch_config(self) -> dict[str, Any]:
        config = {"family": "wavegan", "d": self.d, "latent_dim": self.latent_dim}
        if self.upsample != "transpose":  # files written before the option read as "transpose"
            config["upsample"] = self.upsample
        return config

    @classmethod
    def from_arch_config(cls, cfg: dict[str, Any], sample_rate: int, name: str) -> "WaveGANPrior":
        family = cfg.get("family", "wavegan")
        if family != "wavegan":
            raise ValueError(f"arch config family must be 'wavegan', got {family!r}")
        return cls(d=int(cfg["d"]), latent_dim=int(cfg["latent_dim"]),
                   sample_rate=sample_rate, name=name, upsample=str(cfg.get("upsample", "transpose")))
