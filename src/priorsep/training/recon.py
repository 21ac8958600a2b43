"""The paper's WaveGAN generator trained as a *decoder* by reconstruction.

A WaveGAN learns its class only with far more GAN training than a CPU gives (the bundled
``*-wavegan`` priors do not know their class; docs/method.md §6). Reconstruction covers
the training clips by construction: here the generator (the paper's architecture,
:class:`~priorsep.priors.wavegan.WaveGANGenerator`, unchanged) is the decoder of an
autoencoder whose encoder maps a clip's ``log(1 + |X|)`` (the specvae front end) to a
latent in the paper's box, ``tanh(.)`` in ``(-1, 1)^100``. The loss is auraloss's
multi-resolution STFT loss (Yamamoto et al., "Parallel WaveGAN", ICASSP 2020,
arXiv:1910.11480; spectral convergence plus log-magnitude L1 at FFT sizes 512, 1024,
2048) between the generator's output and the clip. Each latent gets uniform noise of
``±z_noise`` (clamped to the box) so that the decoder is smooth around its codes, which
the paper's projected-gradient search needs.

The exported prior is a plain ``wavegan`` prior (the generator only; the encoder stays in
the run's checkpoints), so the ``paper`` preset searches it as the paper does: z = 0,
1000 steps, its four losses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._extras import require
from ..data.folder import ClipSet
from ..errors import ConfigError
from ..priors.specvae import BINS, log_magnitude
from ..priors.wavegan import WaveGANGenerator, WaveGANPrior
from .loop import TrainingLoop

__all__ = ["RECON_RECIPES", "ReconRecipe", "WaveEncoder", "WaveGANReconTrainer"]


@dataclass(frozen=True)
class ReconRecipe:
    """Reconstruction-training settings for a WaveGAN generator."""

    name: str = "recon"
    batch: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    z_noise: float = 0.05  # uniform noise on each latent during training


RECON_RECIPES = {"recon": ReconRecipe()}


class WaveEncoder(nn.Module):
    """``log(1 + |X|)`` ``[B, 513, 65]`` -> latents ``[B, latent_dim]`` in ``(-1, 1)``:
    the specvae encoder's layout (513 bins as channels, two stride-2 convolutions over the
    65 frames), then ``tanh``.

    Args:
        latent_dim: the generator's latent size (the paper's 100).
        channels: the width of every hidden layer.
    """

    def __init__(self, latent_dim: int = 100, channels: int = 128) -> None:
        super().__init__()
        c = channels
        self.convs = nn.ModuleList([nn.Conv1d(BINS, c, 3, padding=1), nn.Conv1d(c, c, 4, stride=2, padding=1),
                                    nn.Conv1d(c, c, 4, stride=2, padding=1)])
        self.out = nn.Linear(16 * c, latent_dim)

    def forward(self, logmag: Tensor) -> Tensor:
        h = logmag
        for conv in self.convs:
            h = F.gelu(conv(h))
        return torch.tanh(self.out(h.flatten(1)))


class WaveGANReconTrainer(TrainingLoop):
    """Train a WaveGAN generator of width ``d`` as the decoder of an autoencoder on ``clips``.

    Args:
        clips: training clips ``[N, 16384]``.
        run_dir: checkpoints, samples and the loss log.
        d: the generator's width (the paper's 64; the bundled WaveGANs' 16).
        recipe: ``"recon"`` or a :class:`ReconRecipe`.
        upsample: ``"transpose"`` (the paper's) or ``"nearest"``.
    Raises:
        ConfigError: an unknown recipe name, or a ``torchrun`` launch (the family trains
            in one process).
        DataError: clips that are not ``[N, 16384]``.
    """

    family = "wavegan"
    recipes = RECON_RECIPES  # type: ignore[assignment]
    log_columns = ("loss",)
    log_every = 10
    log_format = ".5f"
    data_parallel = False

    def __init__(self, clips: ClipSet, run_dir: str | os.PathLike, *, d: int = 64, recipe: str | ReconRecipe = "recon",
                 batch: int | None = None, seed: int = 0, device: str = "cpu", bf16: bool = False,
                 name: str = "prior", upsample: str = "transpose", **_: Any):
        self.d, self.upsample = d, upsample
        super().__init__(clips, run_dir, recipe=recipe, batch=batch, seed=seed, device=device, bf16=bf16, name=name)

    def build(self) -> None:
        loss = require("auraloss.freq", "train", "training a WaveGAN by reconstruction")
        self.G = WaveGANGenerator(self.d, upsample=self.upsample).to(self.device)
        self.E = WaveEncoder(self.G.latent_dim).to(self.device)
        self.stft_loss = loss.MultiResolutionSTFTLoss(fft_sizes=[512, 1024, 2048], hop_sizes=[128, 256, 512],
                                                      win_lengths=[512, 1024, 2048]).to(self.device)
        params = [*self.G.parameters(), *self.E.parameters()]
        self.opt = torch.optim.Adam(params, lr=self.recipe.lr, betas=self.recipe.betas)

    def state_modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "E": self.E}

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def loss_terms(self, x: Tensor, noise: Tensor) -> dict[str, Tensor]:
        """``{"loss"}`` for clips ``x [B, 16384]`` and latent noise ``[B, latent_dim]`` in
        ``[-1, 1]`` (scaled by the recipe's ``z_noise``): the multi-resolution STFT loss of
        the reconstruction (a batch mean)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            z = (self.E(log_magnitude(x)).float() + self.recipe.z_noise * noise).clamp(-1, 1)
            x_hat = self.G(z)[:, 0].float()
        return {"loss": self.stft_loss(x_hat[:, None], x[:, None])}

    def update(self) -> dict[str, float]:
        self.G.train()
        self.E.train()
        idx = torch.randint(0, self.clips.clips.shape[0], (self.recipe.batch,), generator=self.gen)
        x = self.clips.clips[idx].to(self.device)
        noise = (torch.rand(x.shape[0], self.G.latent_dim, generator=self.gen) * 2 - 1).to(self.device)
        terms = self.loss_terms(x, noise)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.opt.step()
        return {k: v.item() for k, v in terms.items()}

    def checkpoint_json(self) -> dict[str, Any]:
        return {"d": self.d, "upsample": self.upsample}

    def check_resumable(self, meta: dict, path: Path) -> None:
        if (meta.get("d"), meta.get("upsample")) != (self.d, self.upsample) or \
                meta.get("recipe", {}).get("name") != self.recipe.name:
            raise ConfigError(f"{path}: checkpoint is d={meta.get('d')}, {meta.get('upsample')}, "
                              f"{meta.get('recipe', {}).get('name')}; this run is d={self.d}, {self.upsample}, "
                              f"{self.recipe.name}")

    def build_prior(self) -> WaveGANPrior:
        prior = WaveGANPrior(d=self.d, name=self.name, upsample=self.upsample)
        prior.generator.load_state_dict(self.G.state_dict())
        return prior

    def samples(self, n: int) -> tuple[Tensor, list[tuple[str, Tensor]]]:
        """Reconstructions of the first training clips, then generations from seeded
        uniform latents; the figure shows clips, reconstructions and generations."""
        self.G.eval()
        self.E.eval()
        z = torch.rand(n, self.G.latent_dim, generator=torch.Generator().manual_seed(self.seed + 1)) * 2 - 1
        with torch.no_grad():
            clips = self.clips.clips[:4].to(self.device)
            recon = self.G(self.E(log_magnitude(clips)))[:, 0].float().cpu()
            x = self.G(z.to(self.device))[:, 0].float().cpu()
        panels = [(f"clip {i}", c) for i, c in enumerate(clips.cpu())] + \
                 [(f"reconstruction {i}", c) for i, c in enumerate(recon)] + \
                 [(f"sample {i}", c) for i, c in enumerate(x)]
        return x, panels
