"""Training-time augmentation of clip batches: random EQ and random reverberation.

Both act on a batch ``[B, T]`` in one FFT each, drawn from a :class:`torch.Generator`, so
a training run stays reproducible. They make a prior's encoder meet recordings unlike its
clean, dry training clips, so that it is robust to unseen recordings. They are
deliberately *not* the transforms of the shifted-domain validation set
(``benchmarks/make_shifted_set.py`` uses simulated shoebox rooms and biquad EQs): a gain
on that set then says the augmentation generalises, not that it copies the set.

- :func:`random_eq`: a smooth random gain curve over log frequency (a tilt plus a few
  Gaussian bumps of at most ``max_db``), applied as a zero-phase filter;
- :func:`random_reverb`: a synthetic impulse response (a direct path, then Gaussian noise
  under an exponential decay with RT60 in ``rt60`` seconds, at a direct-to-reverberant
  ratio in ``drr_db``), convolved and cut to the clip's length.

>>> g = torch.Generator().manual_seed(0)
>>> x = torch.zeros(2, 4096); x[:, 100] = 1.0
>>> y = random_reverb(x, g, p=1.0)
>>> y.shape, bool(y[:, 200:].abs().sum() > 0)  # a tail after the impulse
(torch.Size([2, 4096]), True)
>>> bool(random_eq(x, g, p=0.0).equal(x))  # p = 0: unchanged
True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..constants import SAMPLE_RATE

__all__ = ["random_eq", "random_reverb", "shifted"]


def shifted(x: Tensor, shifts: list[int]) -> Tensor:
    """Each row of ``x [B, ..., N]`` moved by ``shifts[b]`` steps along its last axis (later
    for positive shifts), zero-filled.

    >>> shifted(torch.tensor([[1., 2., 3.], [1., 2., 3.]]), [1, -1]).tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 0.0]]
    """
    out = torch.zeros_like(x)
    n = x.shape[-1]
    for i, s in enumerate(shifts):
        if s >= 0:
            out[i, ..., s:] = x[i, ..., :n - s]
        else:
            out[i, ..., :s] = x[i, ..., -s:]
    return out


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _chosen(n: int, p: float, gen: torch.Generator) -> Tensor:
    return torch.rand(n, generator=gen) < p


def random_eq(x: Tensor, gen: torch.Generator, *, p: float = 0.5, max_db: float = 8.0, bumps: int = 3,
              tilt_db: float = 6.0, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """``x [B, T]`` with, for each row with probability ``p``, a random smooth EQ.

    The gain curve in dB over ``u = log2(f / 1 kHz)`` is ``tilt * u / 3`` (``tilt`` in
    ``±tilt_db``) plus ``bumps`` Gaussians of height in ``±max_db``, centre in 60 Hz-7 kHz
    and width 0.3-1.5 octaves; it is applied by multiplication in a zero-padded FFT.

    Args:
        x: clips ``[B, T]``.
        gen: the generator every draw comes from.
        p: the probability that a row is filtered.
        max_db, bumps, tilt_db: the gain curve's range, as above.
        sample_rate: the clips' rate.
    Returns:
        ``[B, T]``: the filtered rows, the others as they were (``x`` itself when none is).
    """
    n, length = x.shape
    chosen = _chosen(n, p, gen)
    tilt = _uniform(n, -tilt_db, tilt_db, gen)
    height = _uniform(n * bumps, -max_db, max_db, gen).view(n, bumps)
    centre = _uniform(n * bumps, math.log2(60 / 1000), math.log2(7000 / 1000), gen).view(n, bumps)
    width = _uniform(n * bumps, 0.3, 1.5, gen).view(n, bumps)
    if not chosen.any():
        return x
    size = 2 * length
    freqs = torch.fft.rfftfreq(size, 1 / sample_rate).clamp_min(20.0)
    u = torch.log2(freqs / 1000)[None, :]  # [1, F]
    db = tilt[:, None] * u / 3 + (height[:, :, None] * torch.exp(
        -0.5 * ((u[:, None, :] - centre[:, :, None]) / width[:, :, None]) ** 2)).sum(dim=1)
    gain = torch.where(chosen[:, None], 10 ** (db / 20), torch.ones_like(db))
    return torch.fft.irfft(torch.fft.rfft(x, n=size) * gain, n=size)[:, :length]


def random_reverb(x: Tensor, gen: torch.Generator, *, p: float = 0.5, rt60: tuple[float, float] = (0.1, 0.7),
                  drr_db: tuple[float, float] = (-3.0, 12.0), sample_rate: int = SAMPLE_RATE) -> Tensor:
    """``x [B, T]`` with, for each row with probability ``p``, a synthetic room.

    The impulse response (length ``T``) is 1 at time 0, then from 2.5 ms on Gaussian noise
    times ``exp(-6.91 t / rt60)``, scaled so that the direct path's energy over the tail's
    is ``drr_db``; the convolution is cut to ``T`` samples.

    Args:
        x: clips ``[B, T]``.
        gen: the generator every draw comes from.
        p: the probability that a row is reverberated.
        rt60: the range of the reverberation time, in seconds (drawn uniformly).
        drr_db: the range of the direct-to-reverberant ratio, in dB (drawn uniformly).
        sample_rate: the clips' rate.
    Returns:
        ``[B, T]``: the reverberated rows, the others as they were (``x`` itself when none is).
    """
    n, length = x.shape
    chosen = _chosen(n, p, gen)
    decay = _uniform(n, *rt60, gen)
    drr = _uniform(n, *drr_db, gen)
    noise = torch.randn(n, length, generator=gen)
    if not chosen.any():
        return x
    t = torch.arange(length) / sample_rate
    tail = noise * torch.exp(-6.91 * t[None, :] / decay[:, None]) * (t[None, :] >= 0.0025)
    tail = tail / tail.square().sum(dim=1, keepdim=True).sqrt() * 10 ** (-drr[:, None] / 20)
    rir = tail
    rir[:, 0] = 1.0
    size = 2 * length
    wet = torch.fft.irfft(torch.fft.rfft(x, n=size) * torch.fft.rfft(rir, n=size), n=size)[:, :length]
    return torch.where(chosen[:, None], wet, x)
