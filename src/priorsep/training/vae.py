"""Training a spectrogram VAE prior (:class:`~priorsep.priors.specvae.SpecVAE`) by reconstruction.

The loss per clip is the negative evidence lower bound (Kingma & Welling 2014) with a
Gaussian likelihood of fixed width ``sigma`` on ``log(1 + |X|)``:
``sum_cells (x - x_hat)^2 / (2 sigma^2) + KL(q(z | x) || N(0, I))``, divided by the number
of cells so that Adam's step does not depend on the spectrogram size. A narrow ``sigma``
favours reconstruction over a tidy latent space, which is what separation needs: the
search starts from the encoder, not from prior samples.

Augmentation: each clip is shifted in time by a seeded random whole number of frames
(zero-filled, ``log(1 + 0) = 0`` is silence), so the prior sees onsets at positions its
training set never had (docs/method.md §6: a clip-level prior does not handle shifts it never
saw).

The run folder, checkpoints, resume and export are :class:`~priorsep.training.loop.TrainingLoop`'s.
The family trains in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..constants import SAMPLE_RATE
from ..data.folder import ClipSet
from ..errors import ConfigError
from ..priors.specvae import SpecVAE, log_magnitude
from .augment import shifted
from .loop import TrainingLoop

__all__ = ["VAE_RECIPES", "VAERecipe", "VAETrainer"]


@dataclass(frozen=True)
class VAERecipe:
    """Reconstruction-training settings."""

    name: str = "vae"
    batch: int = 32
    lr: float = 1e-3
    sigma: float = 0.3  # likelihood width on log(1 + |X|)
    shift: int = 6  # largest time shift, in frames of hop 256 (96 ms at 16 kHz)


VAE_RECIPES = {"vae": VAERecipe()}


class VAETrainer(TrainingLoop):
    """Train a :class:`SpecVAE` on a :class:`ClipSet`.

    Args:
        clips: training clips ``[N, 16384]``.
        run_dir: folder for checkpoints, samples and the loss log.
        channels, latent_dim: the model's size.
        recipe: ``"vae"`` or a :class:`VAERecipe` (``None``: the default one).
        batch: overrides the recipe's batch size.
        seed: seeds the weights, the batches, the shifts and the reparameterisation noise.

    Attributes ``model`` (the :class:`SpecVAE`), ``opt`` (its Adam optimiser) and
    ``features`` (every clip's log-magnitudes ``[N, 513, 65]``).
    """

    family = "specvae"
    recipes = VAE_RECIPES
    log_columns = ("loss", "recon", "kl")
    log_every = 10
    log_format = ".5f"
    data_parallel = False

    def __init__(self, clips: ClipSet, run_dir: str | os.PathLike, *, channels: int = 160, latent_dim: int = 64,
                 recipe: str | VAERecipe | None = None, batch: int | None = None, seed: int = 0,
                 device: str = "cpu", bf16: bool = False, name: str = "prior"):
        self.channels, self.latent_dim = channels, latent_dim
        super().__init__(clips, run_dir, recipe=recipe or "vae", batch=batch, seed=seed, device=device, bf16=bf16,
                         name=name)

    def build(self) -> None:
        self.model = SpecVAE(self.channels, self.latent_dim, SAMPLE_RATE, self.name).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.recipe.lr)
        with torch.no_grad():  # the features of every clip, once: [N, 513, 65]
            self.features = torch.cat([log_magnitude(c) for c in self.clips.clips.split(256)])

    def state_modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    @property
    def d(self) -> int:
        return self.model.channels

    # --- one iteration ---------------------------------------------------------------

    def _batch(self) -> Tensor:
        """A batch of shifted log-magnitudes ``[batch, 513, 65]``."""
        r = self.recipe
        idx = torch.randint(0, self.features.shape[0], (r.batch,), generator=self.gen)
        shifts = torch.randint(-r.shift, r.shift + 1, (r.batch,), generator=self.gen).tolist()
        return shifted(self.features[idx], shifts).to(self.device)

    def loss_terms(self, x: Tensor, noise: Tensor) -> dict[str, Tensor]:
        """``{"recon", "kl", "loss"}`` per clip ``[B]`` for log-magnitudes ``x [B, 513, 65]``
        and reparameterisation noise ``[B, latent_dim]``."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            mean, logvar = self.model.posterior(x)
            z = mean.float() + noise * (0.5 * logvar.float()).exp()
            x_hat = self.model.decode(z).float()
        cells = x[0].numel()
        recon = (x_hat - x).square().sum(dim=(1, 2)) / (2 * self.recipe.sigma ** 2)
        kl = 0.5 * (mean.float().square() + logvar.float().exp() - 1 - logvar.float()).sum(dim=1)
        return {"recon": recon / cells, "kl": kl / cells, "loss": (recon + kl) / cells}

    def update(self) -> dict[str, float]:
        """One Adam step on the batch mean of the loss; the batch means of ``loss``, ``recon``, ``kl``."""
        self.model.train()
        x = self._batch()
        noise = torch.randn(x.shape[0], self.model.latent_dim, generator=self.gen).to(self.device)
        terms = self.loss_terms(x, noise)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].mean().backward()
        self.opt.step()
        return {k: v.mean().item() for k, v in terms.items()}

    # --- checkpoints and outputs -----------------------------------------------------

    def checkpoint_json(self) -> dict[str, Any]:
        return {"arch": self.model.arch_config()}

    def check_resumable(self, meta: dict, path: Path) -> None:
        if meta.get("arch") != self.model.arch_config():
            raise ConfigError(f"{path}: checkpoint is specvae {meta.get('arch')}; "
                              f"this run is specvae {self.model.arch_config()}")

    def build_prior(self) -> SpecVAE:
        prior = SpecVAE(self.model.channels, self.model.latent_dim, SAMPLE_RATE, self.name)
        prior.load_state_dict(self.model.state_dict())
        return prior

    def samples(self, n: int) -> tuple[Tensor, list[tuple[str, Tensor]]]:
        """``n`` prior samples ``[n, 16384]`` (Griffin-Lim, latents seeded with ``seed + 1``); the
        figure's panels: the first training clips, their reconstructions, then the samples."""
        self.model.eval()
        z = torch.randn(n, self.model.latent_dim, generator=torch.Generator().manual_seed(self.seed + 1))
        with torch.no_grad():
            clips = self.clips.clips[:n]
            recon = self.model.generate(self.model.encode(clips.to(self.device))).cpu()
            samples = self.model.generate(z.to(self.device)).cpu()
        panels = [(f"clip {i}", c) for i, c in enumerate(clips[:4])] + \
                 [(f"reconstruction {i}", c) for i, c in enumerate(recon[:4])] + \
                 [(f"sample {i}", c) for i, c in enumerate(samples[:8])]
        return samples, panels
