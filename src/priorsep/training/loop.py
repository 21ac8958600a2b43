"""The training loop every prior family shares.

:class:`TrainingLoop` owns what does not depend on the model: the step and minute budget,
the CSV loss log, the progress bar, checkpoints (every ``checkpoint_minutes`` and at the
end, the last ``keep`` kept), :meth:`~TrainingLoop.resume`, sample outputs and
:meth:`~TrainingLoop.export`. A family subclasses it and implements :meth:`build` (models
and optimisers), :meth:`update` (one optimisation step), :meth:`check_resumable`,
:meth:`checkpoint_json`, :meth:`build_prior` and :meth:`samples`.

Randomness. A trainer never touches its caller's global torch RNG: the models are built
inside :func:`torch.random.fork_rng` with the trainer's seed, and the trainer keeps its
own global-RNG state (used by the WaveGAN critic's phase shuffle), set around every
training call and saved back afterwards. That state starts where seeding the global RNG
with ``seed`` and building the models leaves it (``seed + 7919 * rank`` on the other
ranks of a data-parallel run) and is saved per rank in each checkpoint. Batches, latents
and noise come from ``self.gen``, a generator seeded with ``seed`` that every rank shares.
The same seed therefore gives the same numbers whatever the caller did before.

Run folder: ``log.csv`` (``step, seconds`` and the family's columns), ``ckpt-<step>.safetensors``
(see :mod:`priorsep.training.checkpoints`), ``samples/sample<i>.wav`` and, when matplotlib
is installed, ``samples/samples.png``.
"""

from __future__ import annotations

import abc
import contextlib
import csv
import importlib.util
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..audio import write_audio
from ..constants import CLIP_LENGTH, SAMPLE_RATE
from ..data.folder import ClipSet
from ..errors import ConfigError, DataError
from ..priors.base import save_prior
from . import checkpoints, distributed

__all__ = ["TrainingLoop", "can_plot"]

#: the seed offset of rank r's global RNG stream: ``seed + 7919 * r``
RANK_SEED_STRIDE = 7919


def can_plot() -> bool:
    """Whether matplotlib is installed (the samples' spectrogram figure needs it)."""
    return importlib.util.find_spec("matplotlib") is not None


class TrainingLoop(abc.ABC):
    """Train one prior on a :class:`ClipSet` in a run folder.

    Args:
        clips: training clips ``[N, 16384]`` at 16 kHz.
        run_dir: folder for checkpoints, samples and the loss log.
        recipe: a name in the class's :attr:`recipes` or a recipe object (a frozen dataclass
            with at least ``name`` and ``batch``).
        batch: overrides the recipe's batch size (under ``torch.distributed``: the global batch).
        seed: seeds the weights, the batches and every random draw of training.
        device: where the models train.
        bf16: run the networks under bfloat16 autocast.
        name: the prior's name.

    Under ``torch.distributed`` (families with :attr:`data_parallel`) the batch is split
    evenly over the processes; only rank 0 writes checkpoints, samples and the log.
    """

    #: the prior family, as recorded in checkpoints and exported priors
    family: ClassVar[str]
    #: the named recipes
    recipes: ClassVar[dict[str, Any]]
    #: the loss columns of ``log.csv`` after ``step, seconds``: keys of :meth:`update`'s result
    log_columns: ClassVar[tuple[str, ...]]
    #: a log row (and progress-bar update of the losses) every this many steps
    log_every: ClassVar[int] = 1
    #: the format of a logged loss (``None``: the full float)
    log_format: ClassVar[str | None] = None
    #: whether the family trains under ``torch.distributed``
    data_parallel: ClassVar[bool] = True

    def __init__(self, clips: ClipSet, run_dir: str | os.PathLike, *, recipe: Any, batch: int | None = None,
                 seed: int = 0, device: str = "cpu", bf16: bool = False, name: str = "prior"):
        if isinstance(recipe, str):
            if recipe not in self.recipes:
                choices = " or ".join(self.recipes)
                raise ConfigError(f"recipe {recipe!r}: the {self.family} family trains with {choices}")
            recipe = self.recipes[recipe]
        self.recipe = recipe if batch is None else replace(recipe, batch=batch)
        if clips.clips.dim() != 2 or clips.clips.shape[1] != CLIP_LENGTH:
            raise DataError(f"training clips must be [N, {CLIP_LENGTH}]; got {tuple(clips.clips.shape)}")
        self.clips, self.run_dir, self.seed, self.name = clips, Path(run_dir), seed, name
        self.device, self.bf16 = torch.device(device), bf16
        self.rank, self.world = distributed.rank_and_world()
        if self.world > 1 and not self.data_parallel:
            raise ConfigError(f"the {self.family} family trains in one process; run it without torchrun")
        if self.recipe.batch % self.world:
            raise ConfigError(f"batch {self.recipe.batch} does not split evenly over {self.world} processes")
        self.local = self.recipe.batch // self.world  # this process's share of a batch
        self._rng_live = False
        with self._fork_rng():
            self._seed(seed)
            self.build()
            if self.rank:
                self._seed(seed + RANK_SEED_STRIDE * self.rank)
            self._rng = self._rng_state()
        self.gen = torch.Generator().manual_seed(seed)  # the stream every rank shares
        self.step, self.seconds = 0, 0.0
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    # --- what a family implements ----------------------------------------------------

    @abc.abstractmethod
    def build(self) -> None:
        """Create the models and optimisers (the initial weights draw from the seeded global RNG)."""

    @abc.abstractmethod
    def state_modules(self) -> dict[str, nn.Module]:
        """The modules a checkpoint holds, by tag (the tensors' key prefix)."""

    @abc.abstractmethod
    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers a checkpoint holds, by tag."""

    @abc.abstractmethod
    def update(self) -> dict[str, float]:
        """One optimisation step at ``self.step`` (not yet incremented); the losses by name."""

    @abc.abstractmethod
    def checkpoint_json(self) -> dict[str, Any]:
        """The family's facts for a checkpoint's JSON document (its architecture)."""

    @abc.abstractmethod
    def check_resumable(self, meta: dict, path: Path) -> None:
        """Raise :class:`ConfigError` if checkpoint ``meta`` (of this family) is of another model."""

    @abc.abstractmethod
    def build_prior(self) -> nn.Module:
        """A new prior holding a copy of the current weights."""

    @abc.abstractmethod
    def samples(self, n: int) -> tuple[Tensor, list[tuple[str, Tensor]]]:
        """``n`` clips ``[n, 16384]`` to listen to, and the ``(title, clip)`` panels of the samples figure."""

    # --- the trainer's own RNG -------------------------------------------------------

    def _cuda(self) -> list[torch.device]:
        return [self.device] if self.device.type == "cuda" else []

    def _fork_rng(self):
        return torch.random.fork_rng(devices=self._cuda())

    def _seed(self, seed: int) -> None:
        """Seed the global RNG of the CPU and of this trainer's device (as ``torch.manual_seed`` does)."""
        torch.default_generator.manual_seed(seed)
        for device in self._cuda():
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)

    def _rng_state(self) -> list[Tensor]:
        return [torch.get_rng_state()] + [torch.cuda.get_rng_state(d) for d in self._cuda()]

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Run the block on the trainer's global-RNG state, then give the caller's back."""
        if self._rng_live:  # already inside
            yield
            return
        with self._fork_rng():
            torch.set_rng_state(self._rng[0])
            for device, state in zip(self._cuda(), self._rng[1:]):
                torch.cuda.set_rng_state(state, device)
            self._rng_live = True
            try:
                yield
            finally:
                self._rng_live = False
                self._rng = self._rng_state()

    # --- the loop --------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """One :meth:`update` on the trainer's RNG; increments ``step``; the losses by name."""
        with self._own_rng():
            stats = self.update()
        self.step += 1
        return stats

    def _cell(self, value: float | None) -> float | str:
        if value is None:
            return ""
        return value if self.log_format is None else format(value, self.log_format)

    def train(self, steps: int | None = None, minutes: float | None = None, checkpoint_minutes: float = 10.0,
              keep: int = 3, progress: bool = True) -> None:
        """Train until ``steps`` total steps or ``minutes`` of wall time (of this call),
        whichever comes first, checkpointing every ``checkpoint_minutes`` and at the end
        and keeping the last ``keep`` checkpoints. Under ``torch.distributed`` rank 0's
        clock decides for every process."""
        if steps is None and minutes is None:
            raise ConfigError("give steps or minutes")
        with self._own_rng():
            distributed.broadcast([t for m in self.state_modules().values() for t in m.state_dict().values()],
                                  self.world)
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
                    writer.writerow(["step", "seconds", *self.log_columns])
                while steps is None or self.step < steps:
                    over = minutes is not None and time.perf_counter() - began >= minutes * 60
                    if distributed.agree(over, self.world, self.device):
                        break
                    stats = self.train_step()
                    now = time.perf_counter()
                    if self.step % self.log_every == 0:
                        writer.writerow([self.step, round(self.seconds + now - start, 3),
                                         *(self._cell(stats.get(k)) for k in self.log_columns)])
                        log.flush()  # a row every log_every steps: `tail -f log.csv` follows the run
                        bar.set_postfix({k: f"{stats[k]:.4g}" for k in self.log_columns if k in stats})
                    bar.update(1)
                    if distributed.agree(now - last_ckpt >= checkpoint_minutes * 60, self.world, self.device):
                        self.seconds += now - start
                        start = last_ckpt = now
                        self.checkpoint(keep)
            self.seconds += time.perf_counter() - start
            self.checkpoint(keep)

    # --- checkpoints -----------------------------------------------------------------

    def checkpoint(self, keep: int = 3) -> Path:
        """Write ``ckpt-<step>.safetensors`` (atomically) and samples, and drop all but the
        last ``keep`` checkpoints. Every process must call it; rank 0 writes."""
        with self._own_rng():
            tensors: dict[str, Tensor] = {}
            for tag, module in self.state_modules().items():
                tensors.update({f"{tag}.{k}": v for k, v in module.state_dict().items()})
            for tag, opt in self.state_optimizers().items():
                tensors.update(checkpoints.optimizer_tensors(tag, opt))
            tensors["rng.data"] = self.gen.get_state()
            for rank, state in enumerate(distributed.gather(torch.get_rng_state(), self.world, self.device)):
                tensors[f"rng.torch.{rank}"] = state
            path = self.run_dir / f"ckpt-{self.step:08d}.safetensors"
            if self.rank:
                return path
            meta = {"step": self.step, "seconds": self.seconds, "name": self.name, "seed": self.seed,
                    "world": self.world, "family": self.family, **self.checkpoint_json(),
                    "recipe": asdict(self.recipe), "data": self.clips.describe(),
                    "param_groups": {tag: opt.state_dict()["param_groups"]
                                     for tag, opt in self.state_optimizers().items()}}
            checkpoints.write(self.run_dir, self.step, tensors, meta, keep)
            self.write_samples()
            return path

    latest = staticmethod(checkpoints.latest)

    def resume(self, path: str | os.PathLike) -> None:
        """Restore weights, optimiser states, step and RNG states from a checkpoint, so that
        training takes exactly the steps an uninterrupted run would have taken. A checkpoint
        written by a different number of processes resumes too, with freshly seeded global
        RNG streams (the update is then no longer bit-identical).

        Raises:
            ConfigError: the checkpoint is of another family or model.
        """
        path = Path(path)
        meta, tensors = checkpoints.read(path)
        family = meta.get("family")
        if family != self.family:
            raise ConfigError(f"{path}: checkpoint is {family}; this run trains {self.family}")
        self.check_resumable(meta, path)
        for tag, module in self.state_modules().items():
            module.load_state_dict({k[len(tag) + 1:]: v for k, v in tensors.items() if k.startswith(tag + ".")})
        groups = meta["param_groups"]
        for tag, opt in self.state_optimizers().items():
            checkpoints.load_optimizer(tag, opt, tensors, groups[tag])
        self.gen.set_state(tensors["rng.data"])
        self.step, self.seconds = int(meta["step"]), float(meta["seconds"])
        mine = f"rng.torch.{self.rank}"
        with self._own_rng():
            if meta.get("world") == self.world and mine in tensors:
                torch.set_rng_state(tensors[mine])
            else:
                self._seed(self.seed + RANK_SEED_STRIDE * self.rank + self.step)

    # --- outputs ---------------------------------------------------------------------

    def write_samples(self, n: int = 8) -> None:
        """``samples/sample<i>.wav`` for :meth:`samples`, and ``samples/samples.png`` (a
        spectrogram grid) when matplotlib is installed."""
        with self._own_rng():
            clips, panels = self.samples(n)
            folder = self.run_dir / "samples"
            folder.mkdir(exist_ok=True)
            for i, clip in enumerate(clips):
                write_audio(folder / f"sample{i}.wav", clip, SAMPLE_RATE)
            if can_plot():
                from ..plots import spectrogram_grid

                spectrogram_grid(panels, SAMPLE_RATE, folder / "samples.png", title=f"{self.name}, step {self.step}")

    def prior(self) -> nn.Module:
        """The model as it stands, as a prior (a copy, in eval mode)."""
        with self._own_rng():  # the copy's discarded initial weights draw from the trainer's stream
            return self.build_prior().eval()

    def export(self, out: str | os.PathLike, command: str = "") -> Path:
        """Save :meth:`prior` as a prior file that ``load_prior`` and ``separate`` use,
        with the training facts (recipe, steps, seed, ``command``) and the data's description."""
        return save_prior(
            self.prior(), out,
            training={"family": self.family, "recipe": asdict(self.recipe), "steps": self.step,
                      "seconds": round(self.seconds, 1), "seed": self.seed, "bf16": self.bf16, "command": command,
                      **self.training_record()},
            data=self.clips.describe(),
        )

    def training_record(self) -> dict[str, Any]:
        """More facts for the export's ``training`` record (a fine-tuned prior's ``init``)."""
        return {}
