"""Data: synthetic mixtures from priors (datasets, folders and mixture sets come later)."""

from .synthetic import prior_mixtures

__all__ = ["prior_mixtures"]
