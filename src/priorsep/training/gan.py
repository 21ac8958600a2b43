"""Training a WaveGAN prior (:mod:`priorsep.priors.wavegan`) on isolated clips of one source class.

Two recipes:

- ``paper``: docs/method.md §2 / Donahue et al. 2019: WGAN-GP (gradient penalty 10 on random
  interpolates), Adam lr 1e-4, betas (0.5, 0.9), 5 critic updates per generator update,
  batch 64.
- ``fast``: a cheaper GAN objective for CPUs: the non-saturating loss with one critic
  update per generator update and a lazy R1 penalty on real clips (every 4 steps,
  scaled by 4; Mescheder et al. 2018, lazy as in Karras et al. 2020), batch 16.

The run folder, checkpoints, resume and export are :class:`~priorsep.training.loop.TrainingLoop`'s.

Data-parallel training (``torchrun``): when ``torch.distributed`` is initialised, every
process draws the same global batch (indices, latents and interpolation weights come from
one seeded generator shared by all ranks) and takes its own slice of it; after each
backward pass the gradients are averaged over the processes with one all-reduce. The
update is therefore the single-process update on the global batch, penalties included:
the WGAN-GP and R1 penalties are per-example terms of a batch mean, so averaging the
per-rank gradients of per-rank means gives the gradient of the global mean. (PyTorch's
``DistributedDataParallel`` wrapper is not used because it does not support the
``torch.autograd.grad`` call that both penalties need.) The phase shuffle's shifts come
from each process's own global-RNG stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.folder import ClipSet
from ..errors import ConfigError
from ..priors.wavegan import WaveGANDiscriminator, WaveGANGenerator, WaveGANPrior
from . import distributed
from .loop import TrainingLoop

__all__ = ["LOSSES", "RECIPES", "GANRecipe", "WaveGANTrainer"]

#: the GAN objectives: WGAN-GP, non-saturating + R1, hinge + R1
LOSSES = ("wgan-gp", "ns-r1", "hinge-r1")


@dataclass(frozen=True)
class GANRecipe:
    """A GAN training recipe."""

    name: str
    loss: str  # one of LOSSES
    batch: int
    critic_steps: int
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    gp_weight: float = 10.0  # wgan-gp
    r1_gamma: float = 1.0  # ns-r1, hinge-r1
    r1_every: int = 4  # ns-r1, hinge-r1: lazy regularisation interval



RECIPES = {
    "paper": GANRecipe("paper", "wgan-gp", batch=64, critic_steps=5),
    "fast": GANRecipe("fast", "ns-r1", batch=16, critic_steps=1),
}


def _grad_norm_sq(scores: Tensor, inputs: Tensor) -> Tensor:
    """``|d sum(scores) / d inputs|^2`` per example ``[B]``, differentiable (for the penalties)."""
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return grad.reshape(grad.shape[0], -1).square().sum(dim=1)


class WaveGANTrainer(TrainingLoop):
    """Train a WaveGAN generator/critic pair on a :class:`ClipSet`.

    Args:
        clips: training clips ``[N, 16384]``.
        run_dir: folder for checkpoints, samples and the loss log.
        d: model size (paper: 64).
        recipe: a name in :data:`RECIPES` or a :class:`GANRecipe`.
        batch: overrides the recipe's batch size (the global batch under ``torch.distributed``).
        seed: seeds the weights, the batches, the latents and the phase shuffle.
        bf16: run the networks under bfloat16 autocast (the penalties stay float32).
        phase_shuffle: the critic's phase-shuffle radius (paper: 2).
        upsample: the generator's upsampling, ``"transpose"`` (paper) or ``"nearest"``.

    Attributes ``G``, ``D`` (the networks) and ``opt_g``, ``opt_d`` (their Adam optimisers).
    """

    family = "wavegan"
    recipes = RECIPES
    log_columns = ("d_loss", "g_loss", "penalty", "wasserstein")

    def __init__(self, clips: ClipSet, run_dir: str | os.PathLike, *, d: int = 64, recipe: str | GANRecipe = "fast",
                 batch: int | None = None, seed: int = 0, device: str = "cpu", bf16: bool = False,
                 name: str = "prior", phase_shuffle: int = 2, upsample: str = "transpose"):
        self.d, self.phase_shuffle, self.upsample = d, phase_shuffle, upsample
        super().__init__(clips, run_dir, recipe=recipe, batch=batch, seed=seed, device=device, bf16=bf16, name=name)

    def build(self) -> None:
        if self.recipe.loss not in LOSSES:
            raise ConfigError(f"recipe {self.recipe.name!r}: unknown GAN loss {self.recipe.loss!r} "
                              f"(one of {', '.join(LOSSES)})")
        self.G = WaveGANGenerator(self.d, upsample=self.upsample).to(self.device)
        self.D = WaveGANDiscriminator(self.d, phase_shuffle=self.phase_shuffle).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.recipe.lr, betas=self.recipe.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.recipe.lr, betas=self.recipe.betas)

    def state_modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    # --- one iteration ---------------------------------------------------------------

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _mine(self, x: Tensor) -> Tensor:
        """This process's slice of a global batch ``[batch, ...]`` (on the CPU, where it is drawn)."""
        return x[self.rank * self.local:(self.rank + 1) * self.local]

    def _real(self) -> Tensor:
        """This process's real clips ``[local, 1, 16384]``."""
        idx = torch.randint(0, self.clips.clips.shape[0], (self.recipe.batch,), generator=self.gen)
        return self.clips.clips[self._mine(idx)].to(self.device)[:, None]

    def _z(self) -> Tensor:
        """This process's latents ``[local, 100]``, uniform in [-1, 1]."""
        return self._mine(torch.rand(self.recipe.batch, self.G.latent_dim, generator=self.gen) * 2 - 1).to(self.device)

    def _critic_step(self) -> dict[str, float]:
        r = self.recipe
        real = self._real()
        with torch.no_grad(), self._autocast():
            fake = self.G(self._z())
        fake = fake.float()
        self.opt_d.zero_grad(set_to_none=True)
        out: dict[str, float] = {}
        if r.loss == "wgan-gp":
            with self._autocast():
                d_real, d_fake = self.D(real).float(), self.D(fake).float()
            eps = self._mine(torch.rand(r.batch, 1, 1, generator=self.gen)).to(self.device)
            mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
            penalty = (_grad_norm_sq(self.D(mix), mix).sqrt() - 1).square().mean()
            wdist = d_real.mean() - d_fake.mean()
            loss = -wdist + r.gp_weight * penalty
            out.update(wasserstein=wdist.item(), penalty=penalty.item())
        else:  # ns-r1, hinge-r1
            lazy = self.step % r.r1_every == 0
            real = real.requires_grad_(lazy)
            with self._autocast():
                d_real, d_fake = self.D(real).float(), self.D(fake).float()
            if r.loss == "ns-r1":
                loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            else:
                loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            if lazy:
                penalty = _grad_norm_sq(d_real, real).mean()
                loss = loss + r.r1_gamma / 2 * penalty * r.r1_every
                out.update(penalty=penalty.item())
        loss.backward()
        distributed.average_gradients(self.D, self.world)
        self.opt_d.step()
        out["d_loss"] = loss.item()
        return out

    def _generator_step(self) -> float:
        self.opt_g.zero_grad(set_to_none=True)
        for p in self.D.parameters():
            p.requires_grad_(False)
        with self._autocast():
            scores = self.D(self.G(self._z())).float()
        loss = F.softplus(-scores).mean() if self.recipe.loss == "ns-r1" else -scores.mean()
        loss.backward()
        for p in self.D.parameters():
            p.requires_grad_(True)
        distributed.average_gradients(self.G, self.world)
        self.opt_g.step()
        return loss.item()

    def update(self) -> dict[str, float]:
        """One generator update after ``critic_steps`` critic updates; the last critic
        update's ``d_loss`` (and ``penalty``, ``wasserstein``) and ``g_loss``, averaged over the processes."""
        self.G.train()
        self.D.train()
        for _ in range(self.recipe.critic_steps):
            stats = self._critic_step()
        stats["g_loss"] = self._generator_step()
        return distributed.mean_over_ranks(stats, self.world, self.device)

    # --- checkpoints and outputs -----------------------------------------------------

    def checkpoint_json(self) -> dict[str, Any]:
        return {"d": self.d, "upsample": self.upsample}

    def check_resumable(self, meta: dict, path: Path) -> None:
        recipe = meta.get("recipe", {})
        upsample = meta.get("upsample")
        if (meta.get("d"), recipe.get("loss"), upsample) != (self.d, self.recipe.loss, self.upsample):
            raise ConfigError(f"{path}: checkpoint is d={meta.get('d')}, {recipe.get('name')}, {upsample}; "
                              f"this run is d={self.d}, {self.recipe.name}, {self.upsample}")

    def build_prior(self) -> WaveGANPrior:
        prior = WaveGANPrior(d=self.d, name=self.name, upsample=self.upsample)
        prior.generator.load_state_dict(self.G.state_dict())
        return prior

    def samples(self, n: int) -> tuple[Tensor, list[tuple[str, Tensor]]]:
        """``n`` generated clips ``[n, 16384]`` from fixed latents (seeded with ``seed + 1``)."""
        z = torch.rand(n, self.G.latent_dim, generator=torch.Generator().manual_seed(self.seed + 1)) * 2 - 1
        self.G.eval()
        with torch.no_grad():
            x = self.G(z.to(self.device))[:, 0].float().cpu()
        return x, [(f"sample {i}", c) for i, c in enumerate(x)]

