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

__all__ = ["frame_windows", "overlap_add", "OverlapAdd"]


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


class OverlapAdd:
    """:func:`overlap_add` fed a few windows at a time, so that the per-window estimates of
    a long input never have to be held at once (memory: the ``[B, K, T]`` result only).

    Args:
        batch, n_win, k, win: ``B`` mixtures of ``W`` windows, ``K`` sources, window length.
        length: samples of the result, ``T``.

    :meth:`add` takes rows in :func:`frame_windows`' order (mixture-major) from ``start``;
    :meth:`result` returns ``[B, K, T]``.

    >>> import torch
    >>> frames = torch.rand(1, 3, 2, 8)
    >>> acc = OverlapAdd(1, 3, 2, 8, 14, overlap=0.5)
    >>> acc.add(0, frames[0, :2]); acc.add(2, frames[0, 2:])
    >>> torch.equal(acc.result(), overlap_add(frames, 14, overlap=0.5))
    True
    """

    def __init__(self, batch: int, n_win: int, k: int, win: int, length: int, overlap: float = 0.5,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        self.n_win, self.win, self.length = n_win, win, length
        self.hop = _hop(win, overlap)
        total = (n_win - 1) * self.hop + win
        self.out = torch.zeros(batch, k, total, dtype=dtype, device=device)
        if n_win > 1:
            self.weight = torch.hann_window(win, periodic=True, dtype=dtype, device=device).clamp_min(1e-3)
            self.norm = torch.zeros(total, dtype=dtype, device=device)
            for i in range(n_win):
                self.norm[i * self.hop : i * self.hop + win] += self.weight

    def add(self, start: int, frames: Tensor) -> None:
        """Add ``frames [N, K, L]``, the rows ``start`` to ``start + N`` (row ``r`` is window
        ``r % W`` of mixture ``r // W``)."""
        for j, frame in enumerate(frames):
            b, i = divmod(start + j, self.n_win)
            if self.n_win == 1:
                self.out[b] = frame
            else:
                self.out[b, :, i * self.hop : i * self.hop + self.win] += frame * self.weight

    def result(self) -> Tensor:
        """``[B, K, T]``: the weighted average of the windows added (exactly the one
        window's estimates when there is one). Call it once: it normalises in place."""
        if self.n_win == 1:
            return self.out[..., :self.length]
        return self.out.div_(self.norm)[..., :self.length]  # in place: the result of a long input is large


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
    acc = OverlapAdd(b, n_win, k, win, length, overlap, dtype=windows.dtype, device=windows.device)
    acc.add(0, windows.reshape(b * n_win, k, win))
    return acc.result()
