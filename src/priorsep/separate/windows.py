"""Windows for inputs longer than one prior's clip, and their overlap-add.

An input of any length is cut into overlapping windows of the priors' length; each window
is separated on its own and the estimates are overlap-added with weights that sum to one
at every sample, so estimates that sum to each window's mixture sum to the whole mixture.

>>> import torch
>>> x = torch.arange(10.0)[None]
>>> windows, n = frame_windows(x, 4, overlap=0.5)
>>> n, tuple(windows.shape)
(4, (4, 4))
>>> torch.allclose(overlap_add(windows.reshape(1, n, 1, 4), 10, overlap=0.5)[0, 0], x[0])
True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["frame_windows", "overlap_add"]


def _hop(length: int, overlap: float) -> int:
    return max(1, int(round(length * (1 - overlap))))


def frame_windows(x: Tensor, length: int, overlap: float = 0.5) -> tuple[Tensor, int]:
    """Cut ``[B, T]`` into ``W`` windows of ``length`` (zero-padded at the end).

    Returns:
        windows ``[B * W, length]`` (mixture-major) and ``W``.
    """
    b, t = x.shape
    hop = _hop(length, overlap)
    n_win = 1 if t <= length else -(-(t - length) // hop) + 1
    total = (n_win - 1) * hop + length
    padded = torch.nn.functional.pad(x, (0, total - t))
    windows = padded.unfold(-1, length, hop)  # [B, W, L]
    return windows.reshape(b * n_win, length), n_win


def overlap_add(windows: Tensor, length: int, overlap: float = 0.5) -> Tensor:
    """Inverse of :func:`frame_windows` for per-window estimates.

    A normalised weighted average of the overlapping windows (Hann weights, floored so
    that the outer edges, covered by one window, keep theirs). Because the weights at
    each sample sum to one, estimates that sum to each window's mixture still sum to the
    whole mixture.

    Shape:
        ``windows``: ``[B, W, K, L]`` -> ``[B, K, length]``.
    """
    b, n_win, k, win = windows.shape
    if n_win == 1:
        return windows[:, 0, :, :length]
    hop = _hop(win, overlap)
    total = (n_win - 1) * hop + win
    weight = torch.hann_window(win, periodic=True, dtype=windows.dtype, device=windows.device).clamp_min(1e-3)
    out = windows.new_zeros(b, k, total)
    norm = windows.new_zeros(total)
    for i in range(n_win):
        out[..., i * hop : i * hop + win] += windows[:, i] * weight
        norm[i * hop : i * hop + win] += weight
    return (out / norm)[..., :length]
