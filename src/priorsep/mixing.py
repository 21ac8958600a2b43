"""The mixing model of the method: each source divided by its own peak, then summed
(METHOD.md §3).

>>> import torch
>>> peak_normalise(torch.tensor([[0.5, -2.0, 1.0]]))
tensor([[ 0.2500, -1.0000,  0.5000]])
"""

from __future__ import annotations

from torch import Tensor


def peak_normalise(x: Tensor, eps: float = 1e-8) -> Tensor:
    """``x / max|x|`` along the last axis (METHOD.md §3's mixing model).

    Shape:
        ``x``: ``[..., T]`` -> ``[..., T]``.
    """
    return x / (x.abs().amax(dim=-1, keepdim=True) + eps)
