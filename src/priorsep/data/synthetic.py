"""Seeded mixtures whose sources are drawn from priors (METHOD.md §3's mixing model).

Each source is G_k(z_k) for z_k ~ U(-1, 1)^D_k, peak-normalised; the mixture is their
unit-weight sum. Used by the tests and the demo, where the truth must be known exactly.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..priors.base import Prior


def prior_mixtures(priors: Sequence[Prior], n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` mixtures of sources drawn from ``priors``.

    Returns:
        mixtures ``[n, T]`` and their sources ``[n, K, T]`` (peak-normalised).
    """
    from ..separate import peak_normalise

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sources = torch.stack(
            [p.generate(torch.rand(n, p.latent_dim, generator=gen) * 2 - 1) for p in priors], dim=1
        )
    sources = peak_normalise(sources.float())
    return sources.sum(dim=1), sources
