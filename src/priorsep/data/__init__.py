"""Data: the dataset builders (``build``), user folders (``folder``), seeded mixture sets
(``mixtures``) and synthetic mixtures drawn from priors (``synthetic``)."""

from .folder import ClipSet, load_folder
from .mixtures import MixtureSet, load_mixture_set, make_mixture_set
from .synthetic import builtin_example, prior_mixtures

__all__ = ["ClipSet", "MixtureSet", "builtin_example", "load_folder", "load_mixture_set", "make_mixture_set",
           "prior_mixtures"]
