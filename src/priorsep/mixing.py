"""The mixing model of the method: each source divided by its own peak, then summed.

A mixture of K sources ``[B, K, T]`` is ``peak_normalise(sources).sum(dim=1)`` ``[B, T]``
(METHOD.md §3): unit weights after peak normalisation, so no source is louder than
another by construction. The data layer (seeded mixtures drawn from priors) and the
search share this one definition.

>>> import torch
>>> sources = torch.tensor([[[0.0, 4.0, -2.0], [1.0, -0.5, 0.5]]])  # [B=1, K=2, T=3]
>>> peak_normalise(sources)
tensor([[[ 0.0000,  1.0000, -0.5000],
         [ 1.0000, -0.5000,  0.5000]]])
>>> peak_normalise(sources).sum(dim=1)  # the mixture [B, T]
tensor([[1.0000, 0.5000, 0.0000]])
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["peak_normalise"]


def peak_normalise(x: Tensor, eps: float = 1e-8) -> Tensor:
    """``x / max|x|`` along the last axis: ``[..., T]`` -> ``[..., T]``.

    ``eps`` keeps a silent signal at zero instead of NaN.
    """
    return x / (x.abs().amax(dim=-1, keepdim=True) + eps)
