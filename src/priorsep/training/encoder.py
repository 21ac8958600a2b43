"""Amortised inference trained on mixtures: a specvae prior's encoder taught to find its
own class inside a mixture.

A :class:`~priorsep.priors.specvae.SpecVAE` trained by reconstruction has an encoder that
has only ever seen clean clips of its class; given a mixture it maps to wherever the
mixture's spectrogram is closest, often far outside its class. Here the decoder is kept
frozen and the encoder is trained to map *its class's clip plus interference* to a latent
whose decoding is the *clean* clip's log-magnitude:

- each example is one clip of the own class (peak-normalised), plus 0 to
  ``max_others`` clips drawn from the interference folders (other classes' training
  clips), each shifted by a random offset and scaled to a random gain in
  ``[gain_db_min, gain_db_max]`` dB relative to the own clip, plus, with probability
  ``noise_p``, white or low-passed noise at a random level; with probability ``alone_p``
  the clip comes alone (the encoder must still encode clean clips);
- with recipe ``mixture-aug`` every clip (own and interfering) also goes, with
  probability 1/2 each, through a random EQ and a synthetic room
  (:mod:`priorsep.training.augment`); the target is then the own clip *as recorded*
  (after its EQ and room, at peak 1), which is what the mixture holds;
- the mixture is scaled to peak 1, as the separator scales every mixture before its
  search (``SearchConfig.level``);
- the loss is the mean squared error between the frozen decoder's output at the
  encoder's mean and the clean clip's ``log(1 + |X|)``, plus ``box`` times the squared
  excess of the mean over the prior's box (the search clamps there).

The result is the same prior (same decoder, same file format) with a new encoder, so the
search starts at the right source; ``--steps 0`` uses the encoder's guess alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.folder import ClipSet
from ..errors import ConfigError
from ..priors.specvae import SpecVAE, log_magnitude
from .vae import VAETrainer

__all__ = ["MIXTURE_RECIPES", "MixtureRecipe", "MixtureEncoderTrainer"]


@dataclass(frozen=True)
class MixtureRecipe:
    """Settings of mixture training for a specvae encoder."""

    name: str = "mixture"
    batch: int = 32
    lr: float = 1e-3
    max_others: int = 2  # interfering clips per example: 0 to this many
    gain_db_min: float = -12.0  # each interfering clip's gain relative to the own clip
    gain_db_max: float = 6.0
    noise_p: float = 0.2  # probability of added noise
    noise_db_min: float = -40.0  # its level relative to the own clip's peak
    noise_db_max: float = -10.0
    alone_p: float = 0.15  # probability of the clean clip alone
    box: float = 1.0  # weight of the penalty for a mean outside the prior's box
    eq_p: float = 0.0  # probability of a random EQ on each clip (own and interfering)
    reverb_p: float = 0.0  # probability of a synthetic room on each clip


#: ``mixture``: clean clips; ``mixture-aug``: each clip also through a random EQ and a
#: random room with probability 1/2 each (:mod:`priorsep.training.augment`)
MIXTURE_RECIPES = {"mixture": MixtureRecipe(),
                   "mixture-aug": MixtureRecipe(name="mixture-aug", eq_p=0.5, reverb_p=0.5)}


class MixtureEncoderTrainer(VAETrainer):
    """Fine-tune the encoder of ``init`` (a :class:`SpecVAE`) on mixtures of its class's
    ``clips`` with ``interference`` clips; the decoder stays as it is.

    Args:
        clips: the own class's training clips ``[N, 16384]``.
        run_dir: checkpoints, samples and the loss log.
        init: the prior whose encoder is trained (its decoder is frozen).
        interference: clips of other classes ``[M, 16384]`` (and their description).
        recipe: ``"mixture"``, ``"mixture-aug"`` or a :class:`MixtureRecipe`.
    Raises:
        ConfigError: ``init`` is not a specvae prior, there are no interference clips, the
            recipe is unknown, or a ``torchrun`` launch (the family trains in one process).
        DataError: clips that are not ``[N, 16384]``.
    """

    recipes = MIXTURE_RECIPES  # type: ignore[assignment]
    log_columns = ("loss", "recon", "box")

    def __init__(self, clips: ClipSet, run_dir: str | os.PathLike, *, init: SpecVAE, interference: ClipSet,
                 recipe: str | MixtureRecipe | None = None, batch: int | None = None, seed: int = 0,
                 device: str = "cpu", bf16: bool = False, name: str = "prior", **_: Any):
        if not isinstance(init, SpecVAE):
            raise ConfigError(f"mixture training needs a specvae prior to start from; got {type(init).__name__}")
        if interference.clips.shape[0] < 1:
            raise ConfigError("mixture training needs interference clips (--interference FOLDER)")
        self.init, self.interference = init, interference
        super().__init__(clips, run_dir, channels=init.channels, latent_dim=init.latent_dim,
                         recipe=recipe or "mixture", batch=batch, seed=seed, device=device, bf16=bf16, name=name)

    def build(self) -> None:
        self.model = SpecVAE.from_arch_config(self.init.arch_config(), self.init.sample_rate, self.name)
        self.model.load_state_dict(self.init.state_dict())
        self.model.to(self.device)
        decoder = [self.model.dec_in, *self.model.dec, self.model.dec_out]
        for module in decoder:
            module.requires_grad_(False)
        params = [p for m in (*self.model.enc, self.model.enc_out) for p in m.parameters()]
        self.opt = torch.optim.Adam(params, lr=self.recipe.lr)
        peaks = self.clips.clips.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8)
        self.own = self.clips.clips / peaks
        others = self.interference.clips
        self.others = others / others.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8)

    def state_modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    # --- one iteration ---------------------------------------------------------------

    def _uniform(self, n: int, low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(n, generator=self.gen)

    def _recorded(self, clips: Tensor) -> Tensor:
        """``clips [n, L]`` through the recipe's random EQ and room, back at peak 1 (as they are
        when neither is asked for: no draws are made then, so ``mixture`` runs are unchanged)."""
        r = self.recipe
        if r.eq_p <= 0 and r.reverb_p <= 0:
            return clips
        from .augment import random_eq, random_reverb

        out = random_reverb(random_eq(clips, self.gen, p=r.eq_p), self.gen, p=r.reverb_p)
        return out / out.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8)

    def mixtures(self, n: int) -> tuple[Tensor, Tensor]:
        """``n`` training examples: mixtures ``[n, L]`` (peak 1) and the clean own clips ``[n, L]``."""
        r, length = self.recipe, self.own.shape[-1]
        own = self._recorded(self.own[torch.randint(0, self.own.shape[0], (n,), generator=self.gen)])
        mix = own.clone()
        count = torch.randint(0, r.max_others + 1, (n,), generator=self.gen)
        alone = torch.rand(n, generator=self.gen) < r.alone_p
        count[alone] = 0
        for j in range(r.max_others):
            pick = self._recorded(self.others[torch.randint(0, self.others.shape[0], (n,), generator=self.gen)])
            shift = torch.randint(-length // 2, length // 2 + 1, (n,), generator=self.gen)
            gain = 10 ** (self._uniform(n, r.gain_db_min, r.gain_db_max) / 20)
            for i in range(n):
                if count[i] > j:
                    s = int(shift[i])
                    moved = torch.zeros(length)
                    if s >= 0:
                        moved[s:] = pick[i, :length - s]
                    else:
                        moved[:s] = pick[i, -s:]
                    mix[i] += gain[i] * moved
        noisy = (torch.rand(n, generator=self.gen) < r.noise_p) & ~alone
        if noisy.any():
            noise = torch.randn(n, length, generator=self.gen)
            lowpass = torch.rand(n, generator=self.gen) < 0.5  # half of it low-passed (a running mean)
            smooth = torch.nn.functional.avg_pool1d(noise[:, None], 9, 1, 4)[:, 0] * 3
            noise = torch.where(lowpass[:, None], smooth, noise)
            level = 10 ** (self._uniform(n, r.noise_db_min, r.noise_db_max) / 20)
            mix = mix + noisy[:, None] * level[:, None] * noise / noise.abs().amax(dim=-1, keepdim=True)
        mix = mix / mix.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8)  # the search's level
        return mix, own

    def loss_terms(self, mix: Tensor, clean: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
        """``{"recon", "box", "loss"}`` per example ``[B]``: the decoder's output at the
        encoder's mean against the clean clip's log-magnitude, and the box penalty."""
        target = log_magnitude(clean)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            mean, _ = self.model.posterior(log_magnitude(mix))
            x_hat = self.model.decode(mean.float()).float()
        recon = (x_hat - target).square().mean(dim=(1, 2))
        box = (mean.float().abs() - self.model.latent_bound).clamp_min(0).square().mean(dim=1)
        return {"recon": recon, "box": box, "loss": recon + self.recipe.box * box}

    def update(self) -> dict[str, float]:
        """One Adam step of the encoder on a fresh batch of mixtures."""
        self.model.train()
        mix, clean = self.mixtures(self.recipe.batch)
        terms = self.loss_terms(mix.to(self.device), clean.to(self.device))
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].mean().backward()
        self.opt.step()
        return {k: v.mean().item() for k, v in terms.items()}

    # --- checkpoints and outputs -----------------------------------------------------

    def checkpoint_json(self) -> dict[str, Any]:
        return {"arch": self.model.arch_config(), "init": getattr(self.init, "metadata", {}).get("name", self.name)}

    def export(self, out: str | os.PathLike, command: str = "") -> Path:
        from dataclasses import asdict

        from ..priors.base import save_prior

        init_meta = getattr(self.init, "metadata", {})
        return save_prior(
            self.prior(), out,
            training={"family": self.family, "recipe": asdict(self.recipe), "steps": self.step,
                      "seconds": round(self.seconds, 1), "seed": self.seed, "bf16": self.bf16, "command": command,
                      "init": {"name": init_meta.get("name"), "training": init_meta.get("training"),
                               "data": init_meta.get("data")}},
            data={**self.clips.describe(), "interference": self.interference.describe()},
        )
