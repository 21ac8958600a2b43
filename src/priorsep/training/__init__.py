"""Training priors: one loop (:mod:`.loop`), the WaveGAN (:mod:`.gan`) and spectrogram-VAE
(:mod:`.vae`) trainers, checkpoints (:mod:`.checkpoints`) and data-parallel helpers
(:mod:`.distributed`), and :func:`train_prior`, the one call behind ``priorsep train``
(:mod:`.run`). Nothing here imports matplotlib."""

from . import checkpoints, distributed
from .checkpoints import latest, load_optimizer, optimizer_tensors
from .distributed import init_processes, teardown
from .gan import LOSSES, RECIPES, GANRecipe, WaveGANTrainer
from .loop import TrainingLoop, can_plot
from .run import FAMILY_TRAINERS, train_prior
from .vae import VAE_RECIPES, VAERecipe, VAETrainer

__all__ = ["LOSSES", "RECIPES", "VAE_RECIPES", "GANRecipe", "TrainingLoop",
           "VAERecipe", "VAETrainer", "WaveGANTrainer", "can_plot", "checkpoints", "distributed",
           "init_processes", "latest", "load_optimizer", "optimizer_tensors", "teardown", "FAMILY_TRAINERS",
           "train_prior"]
