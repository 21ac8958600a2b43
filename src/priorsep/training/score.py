"""Training a score prior (:class:`~priorsep.priors.score.ScorePrior`) by denoising score matching.

Vincent, "A Connection Between Score Matching and Denoising Autoencoders" (Neural
Computation 2011), in the noise-prediction form of Ho et al. (NeurIPS 2020,
arXiv:2006.11239): for a clip's image ``x`` (``log(1 + |X|)`` of the prior's STFT, by
default 512/256 and 256 x 64),
a width ``sigma`` drawn log-uniformly from ``[sigma_min, sigma_max]`` and ``eps ~ N(0, I)``,
the loss is ``mean((eps_hat(x + sigma eps, sigma) - eps)^2)``, which weights each level's
score-matching loss by ``sigma^2`` (Song & Ermon 2019).

Augmentation, per clip of a batch: a random gain of ``gain_db`` (sources in a mixture sit
below their peak-normalised training level) and a random shift of up to ``shift`` samples
(zero-filled), applied to the waveform before the STFT.

The run folder, checkpoints, resume and export are :class:`~priorsep.training.loop.TrainingLoop`'s.
The family trains in one process.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import spectral
from ..constants import SAMPLE_RATE
from ..data.folder import ClipSet
from ..errors import ConfigError
from ..priors.score import HOP, N_FFT, ScorePrior, image_size
from .augment import shifted
from .loop import TrainingLoop

__all__ = ["SCORE_RECIPES", "ScoreRecipe", "ScoreTrainer"]


@dataclass(frozen=True)
class ScoreRecipe:
    """Denoising-score-matching settings."""

    name: str = "dsm"
    batch: int = 16
    lr: float = 5e-4
    gain_db: tuple[float, float] = (-12.0, 0.0)  # random gain per clip
    shift: int = 2048  # largest shift, in samples (128 ms)
    ema: float = 0.999  # the exported weights are an exponential moving average of this decay (warmed up)


SCORE_RECIPES = {"dsm": ScoreRecipe()}


class ScoreTrainer(TrainingLoop):
    """Train a :class:`ScorePrior` on a :class:`ClipSet`.

    Args:
        clips: training clips ``[N, 16384]``.
        run_dir: folder for checkpoints, samples and the loss log.
        widths: the network's channels per resolution.
        n_fft, hop: the STFT of the prior's images (:class:`ScorePrior`).
        recipe: ``"dsm"`` or a :class:`ScoreRecipe`.
        batch: overrides the recipe's batch size.
        seed: seeds the weights, the batches, the augmentation and the noise.
        init: a score prior to go on training (fine-tuning; its widths and STFT replace
            ``widths``, ``n_fft`` and ``hop``):
            the model and its average start from its weights, the optimiser afresh. The
            export records it (``training.init``).

    Attributes ``model`` (trained), ``ema`` (its moving average, exported) and ``opt``.
    """

    family = "score"
    recipes = SCORE_RECIPES
    log_columns = ("loss",)
    log_every = 10
    log_format = ".5f"
    data_parallel = False

    def __init__(self, clips: ClipSet, run_dir: str | os.PathLike, *, widths: tuple[int, ...] = (32, 64, 96, 128),
                 n_fft: int = N_FFT, hop: int = HOP, recipe: str | ScoreRecipe | None = None,
                 batch: int | None = None, seed: int = 0, device: str = "cpu", bf16: bool = False,
                 name: str = "prior", init: ScorePrior | None = None):
        if init is not None and not isinstance(init, ScorePrior):
            raise ConfigError(f"--init for the score family needs a score prior; got {type(init).__name__}")
        self.init = init
        self.widths = tuple(init.widths if init is not None else widths)
        self.n_fft, self.hop = (init.n_fft, init.hop) if init is not None else (n_fft, hop)
        try:  # a bad size fails here, before a run folder is made
            image_size(self.n_fft, self.hop)
        except ValueError as exc:
            raise ConfigError(f"score prior: {exc}") from None
        super().__init__(clips, run_dir, recipe=recipe or "dsm", batch=batch, seed=seed, device=device, bf16=bf16,
                         name=name)
        if init is not None:
            state = {k: v.to(self.device) for k, v in init.state_dict().items()}
            self.model.load_state_dict(state)
            self.ema.load_state_dict(state)

    def _make(self) -> ScorePrior:
        return ScorePrior(self.widths, SAMPLE_RATE, self.name, self.n_fft, self.hop)

    def build(self) -> None:
        self.model = self._make().to(self.device)
        self.ema = self._make().to(self.device)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.recipe.lr)

    def state_modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "ema": self.ema}

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    # --- one iteration ---------------------------------------------------------------

    def batch_images(self) -> Tensor:
        """A batch of augmented training images ``[batch, F, N]`` (256 x 64 by default)."""
        r = self.recipe
        idx = torch.randint(0, self.clips.clips.shape[0], (r.batch,), generator=self.gen)
        x = self.clips.clips[idx]
        lo, hi = r.gain_db
        gain = 10 ** ((lo + (hi - lo) * torch.rand(r.batch, generator=self.gen)) / 20)
        shifts = torch.randint(-r.shift, r.shift + 1, (r.batch,), generator=self.gen).tolist()
        wave = (shifted(x, shifts) * gain[:, None]).to(self.device)
        return self.model.image(spectral.analysis(wave, self.n_fft, self.hop))

    def loss(self, x: Tensor, sigma: Tensor, eps: Tensor) -> Tensor:
        """Per-image loss ``[B]``: ``mean((eps_hat(x + sigma eps, sigma) - eps)^2)``."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            eps_hat = self.model.noise(x + sigma[:, None, None] * eps, sigma).float()
        return (eps_hat - eps).square().mean(dim=(1, 2))

    def update(self) -> dict[str, float]:
        self.model.train()
        x = self.batch_images()
        lo, hi = math.log(self.model.sigma_min), math.log(self.model.sigma_max)
        sigma = torch.exp(lo + (hi - lo) * torch.rand(x.shape[0], generator=self.gen)).to(self.device)
        eps = torch.randn(x.shape, generator=self.gen).to(self.device)
        loss = self.loss(x, sigma, eps).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        # the average's decay warms up, (1 + step) / (10 + step) until it reaches the recipe's:
        # a short CPU run's export must not keep the initial weights in its average
        decay = min(self.recipe.ema, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters()):
                e.lerp_(p, 1 - decay)
        return {"loss": loss.item()}

    # --- checkpoints and outputs -----------------------------------------------------

    def checkpoint_json(self) -> dict[str, Any]:
        return {"arch": self.model.arch_config()}

    def training_record(self) -> dict[str, Any]:
        if self.init is None:
            return {}
        meta = getattr(self.init, "metadata", {}) or {}
        return {"init": {"name": meta.get("name", self.init.name), "training": meta.get("training"),
                         "data": meta.get("data")}}

    def check_resumable(self, meta: dict, path: Path) -> None:
        if meta.get("arch") != self.model.arch_config():
            raise ConfigError(f"{path}: checkpoint is score {meta.get('arch')}; this run is score "
                              f"{self.model.arch_config()}")

    def build_prior(self) -> ScorePrior:
        prior = self._make()
        prior.load_state_dict(self.ema.state_dict())
        return prior

    def samples(self, n: int) -> tuple[Tensor, list[tuple[str, Tensor]]]:
        """``min(n, 4)`` samples ``[n, 16384]`` of the moving-average model (denoised from noise
        seeded with ``seed + 1``, Griffin-Lim); the figure's panels: training clips, then samples."""
        n = min(n, 4)
        self.ema.eval()
        z = torch.randn(n, self.ema.latent_dim, generator=torch.Generator().manual_seed(self.seed + 1))
        samples = self.ema.generate(z.to(self.device)).cpu()
        panels = [(f"clip {i}", c) for i, c in enumerate(self.clips.clips[:n])] + \
                 [(f"sample {i}", c) for i, c in enumerate(samples)]
        return samples, panels
