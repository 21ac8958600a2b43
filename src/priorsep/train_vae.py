"""Training a spectrogram VAE prior (:class:`~priorsep.priors.specvae.SpecVAE`) by reconstruction.

The loss per clip is the negative evidence lower bound with a Gaussian likelihood of
fixed width ``sigma`` on ``log(1 + |X|)``:
``sum_cells (x - x_hat)^2 / (2 sigma^2) + KL(q(z | x) || N(0, I))``, divided by the number
of cells so that Adam's step does not depend on the spectrogram size. A narrow ``sigma``
favours reconstruction over a tidy latent space, which is what separation needs: the
search starts from the encoder, not from prior samples.

Augmentation: each clip is shifted in time by a seeded random whole number of frames
(zero-filled, ``log(1 + 0) = 0`` is silence), so the prior sees onsets at positions its
training set never had (METHOD.md §6: a clip-level prior does not handle shifts it never
saw).

The run folder, resumable checkpoints (weights, optimiser, step, RNG; safetensors + JSON)
and samples work as in :mod:`priorsep.train`.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from . import checkpoints
from .audio import write_audio
from .data.folder import ClipSet
from .priors.base import save_prior
from .priors.specvae import SpecVAE, log_magnitude

SAMPLE_RATE = 16000  # load_folder's rate


@dataclass(frozen=True)
class VAERecipe:
    """Reconstruction-training settings."""

    name: str = "vae"
    batch: int = 32
    lr: float = 1e-3
    sigma: float = 0.3  # likelihood width on log(1 + |X|)
    shift: int = 6  # largest time shift, in frames of hop 256 (96 ms at 16 kHz)


class VAETrainer:
    """Train a :class:`SpecVAE` on a :class:`ClipSet`.

    Args:
        clips: training clips ``[N, 16384]``.
        run_dir: folder for checkpoints, samples and the loss log.
        channels, latent_dim: the model's size.
        batch: overrides the recipe's batch size.
        seed: seeds the weights, the batches, the shifts and the reparameterisation noise.
    """

    def __init__(self, clips: ClipSet, run_dir: str | os.PathLike, *, channels: int = 160, latent_dim: int = 64,
                 recipe: VAERecipe | None = None, batch: int | None = None, seed: int = 0, device: str = "cpu",
                 bf16: bool = False, name: str = "prior"):
        self.recipe = recipe or VAERecipe()
        if batch is not None:
            self.recipe = VAERecipe(**{**asdict(self.recipe), "batch": batch})
        self.clips, self.run_dir, self.seed, self.name = clips, Path(run_dir), seed, name
        self.device, self.bf16 = torch.device(device), bf16
        torch.manual_seed(seed)
        self.model = SpecVAE(channels, latent_dim, SAMPLE_RATE, name).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.recipe.lr)
        self.gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # the features of every clip, once: [N, 513, 65]
            self.features = torch.cat([log_magnitude(c) for c in clips.clips.split(256)])
        self.step, self.seconds = 0, 0.0
        self.run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def d(self) -> int:
        return self.model.channels

    def _batch(self) -> Tensor:
        r = self.recipe
        idx = torch.randint(0, self.features.shape[0], (r.batch,), generator=self.gen)
        x = self.features[idx]
        shifts = torch.randint(-r.shift, r.shift + 1, (r.batch,), generator=self.gen).tolist()
        out = torch.zeros_like(x)
        for i, s in enumerate(shifts):
            if s >= 0:
                out[i, :, s:] = x[i, :, :x.shape[-1] - s]
            else:
                out[i, :, :s] = x[i, :, -s:]
        return out.to(self.device)

    def loss_terms(self, x: Tensor, noise: Tensor) -> dict[str, Tensor]:
        """``{"recon", "kl", "loss"}`` per clip ``[B]`` for log-magnitudes ``x [B, 513, 65]``."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            mean, logvar = self.model.posterior(x)
            z = mean.float() + noise * (0.5 * logvar.float()).exp()
            x_hat = self.model.decode(z).float()
        cells = x[0].numel()
        recon = (x_hat - x).square().sum(dim=(1, 2)) / (2 * self.recipe.sigma ** 2)
        kl = 0.5 * (mean.float().square() + logvar.float().exp() - 1 - logvar.float()).sum(dim=1)
        return {"recon": recon / cells, "kl": kl / cells, "loss": (recon + kl) / cells}

    def train_step(self) -> dict[str, float]:
        self.model.train()
        x = self._batch()
        noise = torch.randn(x.shape[0], self.model.latent_dim, generator=self.gen).to(self.device)
        terms = self.loss_terms(x, noise)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].mean().backward()
        self.opt.step()
        self.step += 1
        return {k: v.mean().item() for k, v in terms.items()}

    def train(self, steps: int | None = None, minutes: float | None = None, checkpoint_minutes: float = 10.0,
              keep: int = 3, progress: bool = True) -> None:
        """Train until ``steps`` total steps or ``minutes`` of wall time, whichever first,
        checkpointing every ``checkpoint_minutes`` and at the end."""
        if steps is None and minutes is None:
            raise ValueError("give steps or minutes")
        start = began = last = time.perf_counter()
        log_path = self.run_dir / "log.csv"
        new_log = not log_path.exists()
        with open(log_path, "a", newline="") as log, tqdm(total=steps, initial=self.step, desc=f"train {self.name}",
                                                           unit="it", disable=not progress) as bar:
            writer = csv.writer(log)
            if new_log:
                writer.writerow(["step", "seconds", "loss", "recon", "kl"])
            while steps is None or self.step < steps:
                if minutes is not None and time.perf_counter() - began >= minutes * 60:
                    break
                stats = self.train_step()
                now = time.perf_counter()
                if self.step % 10 == 0:
                    writer.writerow([self.step, round(self.seconds + now - start, 3),
                                     *(f"{stats[k]:.5f}" for k in ("loss", "recon", "kl"))])
                    bar.set_postfix(recon=f"{stats['recon']:.4f}", kl=f"{stats['kl']:.4f}")
                bar.update(1)
                if now - last >= checkpoint_minutes * 60:
                    self.seconds += now - start
                    start = last = now
                    log.flush()
                    self.checkpoint(keep)
        self.seconds += time.perf_counter() - start
        self.checkpoint(keep)

    # --- checkpoints -----------------------------------------------------------------

    def checkpoint(self, keep: int = 3) -> Path:
        """Write ``ckpt-<step>.safetensors`` atomically, samples, and drop old checkpoints."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(checkpoints.optimizer_tensors("opt", self.opt))
        tensors["rng.data"] = self.gen.get_state()
        meta = {"step": self.step, "seconds": self.seconds, "name": self.name, "seed": self.seed,
                "family": "specvae", "arch": self.model.arch_config(), "recipe": asdict(self.recipe),
                "data": self.clips.describe(), "param_groups": self.opt.state_dict()["param_groups"]}
        path = checkpoints.write(self.run_dir, self.step, tensors, meta, keep)
        self.write_samples()
        return path

    latest = staticmethod(checkpoints.latest)

    def resume(self, path: str | os.PathLike) -> None:
        """Restore weights, optimiser state, step and RNG state from a checkpoint."""
        meta, tensors = checkpoints.read(path)
        if meta.get("family") != "specvae" or meta.get("arch") != self.model.arch_config():
            raise ValueError(f"{path}: checkpoint is {meta.get('family')} {meta.get('arch')}; "
                             f"this run is specvae {self.model.arch_config()}")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        checkpoints.load_optimizer("opt", self.opt, tensors, meta["param_groups"])
        self.gen.set_state(tensors["rng.data"])
        self.step, self.seconds = int(meta["step"]), float(meta["seconds"])

    # --- outputs ---------------------------------------------------------------------

    def write_samples(self, n: int = 8) -> None:
        """Reconstructions of the first training clips and prior samples, as WAVs and one
        spectrogram grid (top row: clips; then their reconstructions; then samples)."""
        from .plots import spectrogram_grid

        self.model.eval()
        z = torch.randn(n, self.model.latent_dim, generator=torch.Generator().manual_seed(self.seed + 1))
        with torch.no_grad():
            clips = self.clips.clips[:n]
            recon = self.model.generate(self.model.encode(clips.to(self.device))).cpu()
            samples = self.model.generate(z.to(self.device)).cpu()
        folder = self.run_dir / "samples"
        folder.mkdir(exist_ok=True)
        for i, clip in enumerate(samples):
            write_audio(folder / f"sample{i}.wav", clip, SAMPLE_RATE)
        panels = [(f"clip {i}", c) for i, c in enumerate(clips[:4])] + \
                 [(f"reconstruction {i}", c) for i, c in enumerate(recon[:4])] + \
                 [(f"sample {i}", c) for i, c in enumerate(samples[:8])]
        spectrogram_grid(panels, SAMPLE_RATE, folder / "samples.png",
                         title=f"{self.name}, step {self.step}")

    def prior(self) -> SpecVAE:
        """The model as it stands, as a prior (a copy, in eval mode)."""
        prior = SpecVAE(self.model.channels, self.model.latent_dim, SAMPLE_RATE, self.name)
        prior.load_state_dict(self.model.state_dict())
        return prior.eval()

    def export(self, out: str | os.PathLike, command: str = "") -> Path:
        """Save the model as a prior that ``load_prior`` and ``separate`` use."""
        return save_prior(
            self.prior(), out,
            training={"family": "specvae", "recipe": asdict(self.recipe), "steps": self.step,
                      "seconds": round(self.seconds, 1), "seed": self.seed, "bf16": self.bf16,
                      "command": command},
            data=self.clips.describe(),
        )
