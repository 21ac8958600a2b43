"""Seeded mixtures whose sources are drawn from priors (docs/method.md §3's mixing model,
:mod:`priorsep.mixing`).

Each source is G_k(z_k) for z_k ~ U(-1, 1)^D_k, peak-normalised; the mixture is their
unit-weight sum. Used by the tests and the demo, where the truth must be known exactly.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..mixing import peak_normalise
from ..priors.base import Prior


def prior_mixtures(priors: Sequence[Prior], n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` mixtures of sources drawn from ``priors``.

    Returns:
        mixtures ``[n, T]`` and their sources ``[n, K, T]`` (peak-normalised).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sources = torch.stack(
            [p.generate(torch.rand(n, p.latent_dim, generator=gen) * 2 - 1) for p in priors], dim=1
        )
    sources = peak_normalise(sources.float())
    return sources.sum(dim=1), sources


def builtin_example(seed: int = 0) -> tuple[list, Tensor, Tensor]:
    """The built-in two-source example: a ``tone`` and a ``burst`` drawn from the
    built-in priors and mixed as in the paper.

    Returns:
        the two priors, the mixture ``[T]`` and its true sources ``[2, T]``.
    """
    from ..priors.load import load_prior

    priors = [load_prior("tone"), load_prior("burst")]
    mixtures, sources = prior_mixtures(priors, 1, seed)
    return priors, mixtures[0], sources[0]
