"""One call that trains a prior on a folder of clips and saves it: what ``priorsep train`` runs.

:func:`train_prior` checks the settings, loads the clips (:func:`priorsep.data.folder.load_folder`),
joins the process group when launched by ``torchrun`` (families that train data-parallel),
builds the family's trainer, resumes from the run folder's last checkpoint when asked,
trains for the step or minute budget and exports the prior (rank 0).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from ..errors import ConfigError
from ..launch import under_torchrun
from ..runtime import resolve_device
from . import distributed
from .checkpoints import latest as latest_checkpoint
from .encoder import MIXTURE_RECIPES, MixtureEncoderTrainer
from .gan import RECIPES, WaveGANTrainer
from .loop import TrainingLoop
from .recon import RECON_RECIPES, WaveGANReconTrainer
from .score import SCORE_RECIPES, ScoreTrainer
from .vae import VAE_RECIPES, VAETrainer

__all__ = ["FAMILY_TRAINERS", "train_prior"]

#: prior family -> (trainer class, its recipes, the default recipe)
FAMILY_TRAINERS: dict[str, tuple[type[TrainingLoop], tuple[str, ...], str]] = {
    "specvae": (VAETrainer, (*VAE_RECIPES, *MIXTURE_RECIPES), "vae"),
    "wavegan": (WaveGANTrainer, (*RECIPES, *RECON_RECIPES), "fast"),
    "score": (ScoreTrainer, tuple(SCORE_RECIPES), "dsm"),
}
#: recipes trained by another class than their family's trainer: (family, recipe) -> class
RECIPE_TRAINERS: dict[tuple[str, str], type[TrainingLoop]] = {
    **{("specvae", r): MixtureEncoderTrainer for r in MIXTURE_RECIPES},
    **{("wavegan", r): WaveGANReconTrainer for r in RECON_RECIPES},
}


def train_prior(data: str | os.PathLike, out: str | os.PathLike, *, name: str, family: str = "specvae",
                recipe: str | None = None, steps: int | None = None, minutes: float | None = None,
                run_dir: str | os.PathLike | None = None, resume: bool = False, checkpoint_minutes: float = 10.0,
                keep: int = 3, device: str = "cpu", bf16: bool = False, seed: int = 0, batch: int | None = None,
                model: dict | None = None, command: str = "", progress: bool = False,
                init: str | None = None, interference: list[str] | None = None,
                say: Callable[[str], None] = lambda text: None) -> TrainingLoop:
    """Train a prior of ``family`` on the clips under ``data`` and save it to ``out``.

    Args:
        data: a folder of clips or recordings of one class (any layout, format, rate).
        out: the saved prior to write (``.safetensors``); its folder must exist.
        name: the source class (the prior's name).
        family: a key of :data:`FAMILY_TRAINERS`.
        recipe: one of the family's recipes (default: the family's default).
        steps, minutes: the budget (at least one of them).
        run_dir: checkpoints, samples and ``log.csv`` (default ``<out>.run``).
        resume: continue from the run folder's last checkpoint (required when it has one).
        model: the family's size options (``{"d": 16, "upsample": "nearest"}`` for
            WaveGAN, ``{"channels": 160, "latent_dim": 64}`` for specvae).
        command: the command line, recorded in the prior's metadata.
        init, interference: recipe ``mixture`` (specvae): the prior whose encoder is trained
            (name or file; its decoder is kept) and folders of other classes' clips mixed
            in (:mod:`priorsep.training.encoder`). Family ``score``: ``init`` is a score
            prior to go on training (fine-tuning from its weights).
        say: where progress messages go (rank 0 only).
    Returns:
        the trainer, after training and export.
    Raises:
        ConfigError: an unknown family or recipe, no budget, a missing folder, a run folder
            that already holds checkpoints without ``resume`` (or none with it), a GPU
            asked for where there is none.
    """
    if family not in FAMILY_TRAINERS:
        raise ConfigError(f"unknown family {family!r}; choose from {', '.join(sorted(FAMILY_TRAINERS))}")
    trainer_class, recipes, default = FAMILY_TRAINERS[family]
    recipe = recipe or default
    if recipe not in recipes:
        raise ConfigError(f"--recipe {recipe}: the {family} family trains with {' or '.join(recipes)}")
    trainer_class = RECIPE_TRAINERS.get((family, recipe), trainer_class)
    extra: dict = {}
    if trainer_class is MixtureEncoderTrainer:
        if not init or not interference:
            raise ConfigError(f"--recipe {recipe} needs --init PRIOR (the prior whose encoder is trained) and "
                              "--interference FOLDER (other classes' clips; repeatable)")
    elif trainer_class is ScoreTrainer:
        if interference:
            raise ConfigError("--interference belongs to --recipe mixture (specvae)")
    elif init or interference:
        raise ConfigError("--init and --interference belong to --recipe mixture (specvae) and --init to the "
                          "score family")
    if steps is None and minutes is None:
        raise ConfigError("give a budget: steps or minutes")
    resolve_device(device)  # one line where the machine has no such device
    out = Path(out)
    if not out.resolve().parent.is_dir():
        raise ConfigError(f"{out}: its folder {out.resolve().parent} does not exist")
    run_dir = Path(run_dir or f"{out}.run")
    last = latest_checkpoint(run_dir) if run_dir.is_dir() else None
    if resume and last is None:
        raise ConfigError(f"--resume: no checkpoint in {run_dir}")
    if last is not None and not resume:
        raise ConfigError(f"{run_dir} already holds checkpoints; pass --resume to continue, "
                          "or choose another --run-dir")
    parallel = under_torchrun()
    if parallel and not trainer_class.data_parallel:
        raise ConfigError(f"--family {family} trains in one process; run it without torchrun")

    from ..data.folder import load_folder

    clips = load_folder(data)
    if trainer_class is MixtureEncoderTrainer:
        from ..priors import load_prior

        extra = {"init": load_prior(init), "interference": _joined([load_folder(f) for f in interference])}
    elif init:  # a score prior to go on training
        from ..priors import load_prior

        extra = {"init": load_prior(init)}
    rank, device = distributed.init_processes(device) if parallel else (0, device)
    tell = say if rank == 0 else (lambda text: None)
    tell(f"{clips.clips.shape[0]} clips from {clips.files} files in {data} "
         f"({clips.skipped_silent} near-silent clips and {clips.skipped_unreadable} unreadable files skipped)")
    try:
        trainer = trainer_class(clips, run_dir, recipe=recipe, batch=batch, seed=seed, device=device, bf16=bf16,
                                name=name, **(model or {}), **extra)
        if getattr(trainer, "world", 1) > 1:
            tell(f"{trainer.world} processes, {trainer.local} clips each per batch of {trainer.recipe.batch}")
        if last is not None:
            trainer.resume(last)
            tell(f"resumed from {last} at step {trainer.step}")
        trainer.train(steps=steps, minutes=minutes, checkpoint_minutes=checkpoint_minutes, keep=keep,
                      progress=progress and rank == 0)
        if rank == 0:
            trainer.export(out, command=command)
        distributed.teardown()  # no process leaves the group while rank 0 still writes
    finally:
        distributed.teardown(barrier=False)  # after an error: leave without waiting
    return trainer


def _joined(sets: list) -> object:
    """Several :class:`~priorsep.data.folder.ClipSet` as one (the interference of a run)."""
    import hashlib

    from ..data.folder import ClipSet

    return ClipSet(torch.cat([s.clips for s in sets]), " + ".join(s.folder for s in sets), sum(s.files for s in sets),
                   sum(s.skipped_unreadable for s in sets), sum(s.skipped_silent for s in sets),
                   hashlib.sha256("".join(s.content_hash for s in sets).encode()).hexdigest())
