"""Data: synthetic mixtures from priors (datasets, folders and mixture sets come later)."""

from .synthetic import builtin_example, prior_mixtures

__all__ = ["builtin_example", "prior_mixtures"]
