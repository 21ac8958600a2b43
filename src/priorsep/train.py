"""Training a WaveGAN prior on isolated clips of one source class.

Two recipes:

- ``paper``: METHOD.md §2 / Donahue et al. 2019: WGAN-GP (gradient penalty 10 on random
  interpolates), Adam lr 1e-4, betas (0.5, 0.9), 5 critic updates per generator update,
  batch 64.
- ``fast``: a cheaper GAN objective for CPUs: the non-saturating loss with one critic
  update per generator update and a lazy R1 penalty on real clips (every 4 steps,
  scaled by 4), batch 16.

Training runs in a run folder with resumable checkpoints (generator, critic, both
optimisers, step, RNG state) written every few minutes as safetensors + JSON (nothing
is pickled), the last few kept; each checkpoint also writes sample WAVs and a
spectrogram grid. ``Trainer.train`` resumed from a checkpoint takes exactly the steps
an uninterrupted run would have taken.

Data-parallel training (``torchrun``): when ``torch.distributed`` is initialised, every
process draws the same global batch (indices, latents and interpolation weights come from
one seeded generator shared by all ranks) and takes its own slice of it; after each
backward pass the gradients are averaged over the processes with one all-reduce. The
update is therefore the single-process update on the global batch, penalties included:
the WGAN-GP and R1 penalties are per-example terms of a batch mean, so averaging the
per-rank gradients of per-rank means gives the gradient of the global mean. (PyTorch's
``DistributedDataParallel`` wrapper is not used because it does not support the
``torch.autograd.grad`` call that both penalties need.)
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from . import checkpoints
from .audio import write_audio
from .data.folder import ClipSet
from .priors.base import save_prior
from .priors.wavegan import WaveGANDiscriminator, WaveGANGenerator, WaveGANPrior


@dataclass(frozen=True)
class Recipe:
    """A GAN training recipe."""

    name: str
    loss: str  # "wgan-gp", "ns-r1" (non-saturating) or "hinge-r1"
    batch: int
    critic_steps: int
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    gp_weight: float = 10.0  # wgan-gp
    r1_gamma: float = 1.0  # ns-r1, hinge-r1
    r1_every: int = 4  # ns-r1, hinge-r1: lazy regularisation interval


RECIPES = {
    "paper": Recipe("paper", "wgan-gp", batch=64, critic_steps=5),
    "fast": Recipe("fast", "ns-r1", batch=16, critic_steps=1),
}


def _grad_norm_sq(scores: Tensor, inputs: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return grad.reshape(grad.shape[0], -1).square().sum(dim=1)


class Trainer:
    """Train a WaveGAN generator/critic pair on a :class:`ClipSet`.

    Args:
        clips: training clips ``[N, 16384]``.
        run_dir: folder for checkpoints, samples and the loss log.
        d: model size (paper: 64).
        recipe: a name in :data:`RECIPES` or a :class:`Recipe`.
        batch: overrides the recipe's batch size.
        seed: seeds the weights, the batches and the latents.
        bf16: run the networks under bfloat16 autocast (the penalties stay float32).
        phase_shuffle: the critic's phase-shuffle radius (paper: 2).
        upsample: the generator's upsampling, ``"transpose"`` (paper) or ``"nearest"``.

    Under ``torch.distributed`` the batch is the global batch, split evenly over the
    processes; only rank 0 writes checkpoints, samples and the log.
    """

    def __init__(
        self,
        clips: ClipSet,
        run_dir: str | os.PathLike,
        *,
        d: int = 64,
        recipe: str | Recipe = "fast",
        batch: int | None = None,
        seed: int = 0,
        device: str = "cpu",
        bf16: bool = False,
        name: str = "prior",
        phase_shuffle: int = 2,
        upsample: str = "transpose",
    ):
        self.recipe = RECIPES[recipe] if isinstance(recipe, str) else recipe
        if batch is not None:
            self.recipe = replace(self.recipe, batch=batch)
        self.clips, self.run_dir, self.d, self.seed = clips, Path(run_dir), d, seed
        self.device, self.bf16, self.name = torch.device(device), bf16, name
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        if self.recipe.batch % self.world:
            raise ValueError(f"batch {self.recipe.batch} does not split evenly over {self.world} processes")
        self.local = self.recipe.batch // self.world
        torch.manual_seed(seed)
        self.upsample = upsample
        self.G = WaveGANGenerator(d, upsample=upsample).to(self.device)
        self.D = WaveGANDiscriminator(d, phase_shuffle=phase_shuffle).to(self.device)
        # the shared stream draws global batches; the global stream (phase shuffle) is per rank
        self.gen = torch.Generator().manual_seed(seed)
        if self.rank:
            torch.manual_seed(seed + 7919 * self.rank)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.recipe.lr, betas=self.recipe.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.recipe.lr, betas=self.recipe.betas)
        self.step = 0
        self.seconds = 0.0
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    # --- one iteration ---------------------------------------------------------------

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _mine(self, x: Tensor) -> Tensor:
        """This process's slice of a global batch ``[batch, ...]`` (on the CPU, where it is drawn)."""
        return x[self.rank * self.local:(self.rank + 1) * self.local]

    def _real(self) -> Tensor:
        idx = torch.randint(0, self.clips.clips.shape[0], (self.recipe.batch,), generator=self.gen)
        return self.clips.clips[self._mine(idx)].to(self.device)[:, None]

    def _z(self) -> Tensor:
        return self._mine(torch.rand(self.recipe.batch, self.G.latent_dim, generator=self.gen) * 2 - 1).to(self.device)

    def _average_gradients(self, module: torch.nn.Module) -> None:
        """Average ``module``'s gradients over the processes (one all-reduce)."""
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def _mean_over_ranks(self, stats: dict[str, float]) -> dict[str, float]:
        if self.world == 1:
            return stats
        keys = sorted(stats)
        values = torch.tensor([stats[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return {k: v / self.world for k, v in zip(keys, values.tolist())}

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
        elif r.loss in ("ns-r1", "hinge-r1"):
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
        else:
            raise ValueError(f"unknown GAN loss {r.loss!r}")
        loss.backward()
        self._average_gradients(self.D)
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
        self._average_gradients(self.G)
        self.opt_g.step()
        return loss.item()

    def train_step(self) -> dict[str, float]:
        """One generator update after ``critic_steps`` critic updates."""
        self.G.train()
        self.D.train()
        for _ in range(self.recipe.critic_steps):
            stats = self._critic_step()
        stats["g_loss"] = self._generator_step()
        self.step += 1
        return self._mean_over_ranks(stats)

    # --- the loop --------------------------------------------------------------------

    def train(
        self,
        steps: int | None = None,
        minutes: float | None = None,
        checkpoint_minutes: float = 10.0,
        keep: int = 3,
        progress: bool = True,
    ) -> None:
        """Train until ``steps`` total steps or ``minutes`` of wall time, whichever
        comes first, checkpointing every ``checkpoint_minutes`` and at the end.
        Under ``torch.distributed`` rank 0's clock decides for every process."""
        if steps is None and minutes is None:
            raise ValueError("give steps or minutes")
        self._broadcast_weights()
        lead = self.rank == 0
        start = began = time.perf_counter()  # start: of the unrecorded wall time; began: of this call
        last_ckpt = start
        log_path = self.run_dir / "log.csv"
        new_log = lead and not log_path.exists()
        with open(log_path if lead else os.devnull, "a", newline="") as log, tqdm(
            total=steps, initial=self.step, desc=f"train {self.name}", unit="it", disable=not (progress and lead)
        ) as bar:
            writer = csv.writer(log)
            if new_log:
                writer.writerow(["step", "seconds", "d_loss", "g_loss", "penalty", "wasserstein"])
            while steps is None or self.step < steps:
                if self._agree(minutes is not None and time.perf_counter() - began >= minutes * 60):
                    break
                stats = self.train_step()
                now = time.perf_counter()
                writer.writerow([self.step, round(self.seconds + now - start, 3), stats["d_loss"], stats["g_loss"],
                                 stats.get("penalty", ""), stats.get("wasserstein", "")])
                bar.update(1)
                bar.set_postfix(d=f"{stats['d_loss']:.3f}", g=f"{stats['g_loss']:.3f}")
                if self._agree(now - last_ckpt >= checkpoint_minutes * 60):
                    self.seconds += now - start
                    start = last_ckpt = now
                    log.flush()
                    self.checkpoint(keep)
        self.seconds += time.perf_counter() - start
        self.checkpoint(keep)

    # --- processes -------------------------------------------------------------------

    def _agree(self, flag: bool) -> bool:
        """Rank 0's ``flag``, on every process."""
        if self.world == 1:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(value, 0)
        return bool(value.item())

    def _broadcast_weights(self) -> None:
        if self.world > 1:
            for tensor in list(self.G.state_dict().values()) + list(self.D.state_dict().values()):
                dist.broadcast(tensor, 0)

    def _rng_states(self) -> list[Tensor]:
        """Every process's global RNG state (phase shuffle), rank order."""
        state = torch.get_rng_state()
        if self.world == 1:
            return [state]
        gathered = [torch.empty_like(state, device=self.device) for _ in range(self.world)]
        dist.all_gather(gathered, state.to(self.device))
        return [g.cpu() for g in gathered]

    # --- checkpoints -----------------------------------------------------------------

    def _tensors(self) -> dict[str, Tensor]:
        out = {f"G.{k}": v for k, v in self.G.state_dict().items()}
        out.update({f"D.{k}": v for k, v in self.D.state_dict().items()})
        for tag, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            out.update(checkpoints.optimizer_tensors(tag, opt))
        out["rng.data"] = self.gen.get_state()
        for rank, state in enumerate(self._rng_states()):
            out[f"rng.torch.{rank}"] = state
        return {k: v.detach().contiguous().cpu() for k, v in out.items()}

    def checkpoint(self, keep: int = 3) -> Path:
        """Write ``ckpt-<step>.safetensors`` (atomically), samples, and drop old ones.
        Every process must call it; rank 0 writes."""
        tensors = self._tensors()
        path = self.run_dir / f"ckpt-{self.step:08d}.safetensors"
        if self.rank:
            return path
        meta = {
            "step": self.step, "seconds": self.seconds, "d": self.d, "upsample": self.upsample, "name": self.name,
            "seed": self.seed,
            "world": self.world, "recipe": asdict(self.recipe), "data": self.clips.describe(),
            "param_groups": {tag: opt.state_dict()["param_groups"] for tag, opt in
                             (("opt_g", self.opt_g), ("opt_d", self.opt_d))},
        }
        checkpoints.write(self.run_dir, self.step, tensors, meta, keep)
        self.write_samples()
        return path

    latest = staticmethod(checkpoints.latest)

    def resume(self, path: str | os.PathLike) -> None:
        """Restore weights, optimiser states, step and RNG states from a checkpoint.
        A checkpoint written by a different number of processes resumes too, with
        freshly seeded phase-shuffle streams (the update is no longer bit-identical)."""
        meta, tensors = checkpoints.read(path)
        upsample = meta.get("upsample", "transpose")
        if meta["d"] != self.d or meta["recipe"]["loss"] != self.recipe.loss or upsample != self.upsample:
            raise ValueError(f"{path}: checkpoint is d={meta['d']}, {meta['recipe']['name']}, {upsample}; "
                             f"this run is d={self.d}, {self.recipe.name}, {self.upsample}")
        self.G.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("G.")})
        self.D.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("D.")})
        for tag, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            checkpoints.load_optimizer(tag, opt, tensors, meta["param_groups"][tag])
        self.gen.set_state(tensors["rng.data"])
        self.step, self.seconds = int(meta["step"]), float(meta["seconds"])
        mine = f"rng.torch.{self.rank}"
        if meta.get("world", 1) == self.world and mine in tensors:
            torch.set_rng_state(tensors[mine])
        else:
            torch.manual_seed(self.seed + 7919 * self.rank + self.step)

    # --- outputs ---------------------------------------------------------------------

    def write_samples(self, n: int = 8) -> None:
        """A few generated clips (fixed latents) as WAVs and a spectrogram grid."""
        from .plots import spectrogram_grid

        z = torch.rand(n, self.G.latent_dim, generator=torch.Generator().manual_seed(self.seed + 1)) * 2 - 1
        self.G.eval()
        with torch.no_grad():
            x = self.G(z.to(self.device))[:, 0].float().cpu()
        folder = self.run_dir / "samples"
        folder.mkdir(exist_ok=True)
        for i, clip in enumerate(x):
            write_audio(folder / f"sample{i}.wav", clip, 16000)
        spectrogram_grid([(f"sample {i}", c) for i, c in enumerate(x)], 16000, folder / "samples.png",
                         title=f"{self.name}, step {self.step}")

    def prior(self) -> WaveGANPrior:
        """The generator as it stands, as a prior (a copy, in eval mode)."""
        prior = WaveGANPrior(d=self.d, name=self.name, upsample=self.upsample)
        prior.generator.load_state_dict(self.G.state_dict())
        return prior.eval()

    def export(self, out: str | os.PathLike, command: str = "") -> Path:
        """Save the generator as a prior that ``load_prior`` and ``separate`` use."""
        return save_prior(
            self.prior(), out,
            training={"family": "wavegan", "recipe": asdict(self.recipe), "steps": self.step,
                      "seconds": round(self.seconds, 1), "seed": self.seed, "bf16": self.bf16,
                      "command": command},
            data=self.clips.describe(),
        )
