"""Spectral front end shared by the losses, the masks and the plots.

The separation losses (docs/method.md §3) all read one STFT: a periodic Hann window of 256,
FFT 256, hop 128, no centring and no padding, so a 16384-sample clip gives 129 bins x
127 frames. Every spectrogram in priorsep is laid out ``[..., bins, frames]`` (torch's
layout): the losses' STFT here, the invertible one, the masks, the baselines and the
figures.

The mixture-consistent output uses a second, invertible STFT (centred, so that
``istft(stft(x)) == x`` to float precision): soft masks computed from the generated
sources' magnitudes are applied to the mixture's STFT and inverted with its phase.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .constants import LOSS_STFT

N_FFT, HOP = LOSS_STFT

_windows: dict[tuple[int, torch.device, torch.dtype], Tensor] = {}


def hann(n: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Periodic Hann window of length ``n`` (cached per device and dtype)."""
    key = (n, torch.device(device or "cpu"), dtype)
    if key not in _windows:
        _windows[key] = torch.hann_window(n, periodic=True, device=key[1], dtype=dtype)
    return _windows[key]


def _torch_stft(x: Tensor, n_fft: int, hop: int, center: bool) -> Tensor:
    """``[..., T]`` -> complex ``[..., bins, frames]`` with a periodic Hann window."""
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]), n_fft=n_fft, hop_length=hop, window=hann(n_fft, x.device, x.dtype),
        center=center, return_complex=True,
    )
    return spec.reshape(*x.shape[:-1], *spec.shape[-2:])


def stft(x: Tensor, n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """The losses' STFT: periodic Hann, no centring, no padding (docs/method.md §3).

    Args:
        x: waveforms ``[..., T]``.
    Returns:
        complex spectrogram ``[..., n_fft // 2 + 1, frames]`` with
        ``frames = 1 + (T - n_fft) // hop`` (127 for T = 16384).
    """
    return _torch_stft(x, n_fft, hop, center=False)


def log_power(spec: Tensor) -> Tensor:
    """S = log(1 + |X|^2), the log-power image every loss but L_fc compares."""
    return torch.log1p(spec.real.square() + spec.imag.square())


def pool(img: Tensor) -> Tensor:
    """P: 2x2 average pooling, stride 2, "same" padding (129 x 127 -> 65 x 64 -> 33 x 32).

    As in TensorFlow's ``avg_pool(padding="SAME")``, a window that hangs over the
    bottom or right edge averages only the cells it covers. The pooling is the same
    along both axes, so it does not depend on which one is time.

    Args:
        img: ``[..., bins, frames]``.
    Returns:
        ``[..., ceil(bins / 2), ceil(frames / 2)]``.
    """
    lead = img.shape[:-2]
    flat = img.reshape(-1, 1, img.shape[-2], img.shape[-1])
    out = F.avg_pool2d(flat, kernel_size=2, stride=2, ceil_mode=True)
    return out.reshape(*lead, out.shape[-2], out.shape[-1])


def pyramid(img: Tensor, levels: int = 3) -> list[Tensor]:
    """``[img, P img, P^2 img, ...]``, ``levels`` images in all (each ``[..., bins, frames]``)."""
    out = [img]
    for _ in range(levels - 1):
        out.append(pool(out[-1]))
    return out


# --- invertible STFT for masking ---------------------------------------------------


def analysis(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """Centred STFT for masking and resynthesis.

    Args:
        x: ``[..., T]``.
    Returns:
        complex ``[..., n_fft // 2 + 1, frames]`` with ``frames = 1 + T // hop``.
    """
    return _torch_stft(x, n_fft, hop, center=True)


def synthesis(spec: Tensor, n_fft: int, hop: int, length: int) -> Tensor:
    """Inverse of ``analysis``: ``[..., bins, frames]`` -> ``[..., length]``."""
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    window = hann(n_fft, spec.device, spec.real.dtype)
    x = torch.istft(flat, n_fft=n_fft, hop_length=hop, window=window, center=True, length=length)
    return x.reshape(*lead, length)


def griffin_lim(magnitude: Tensor, n_fft: int, hop: int, length: int, iterations: int = 32) -> Tensor:
    """A waveform whose :func:`analysis` magnitude approaches ``magnitude``: Griffin & Lim
    (IEEE TASSP 1984) from a zero-phase start, ``iterations`` rounds (deterministic).

    Args:
        magnitude: ``[..., n_fft // 2 + 1, frames]``, non-negative.
    Returns:
        ``[..., length]``.
    """
    phase = torch.ones_like(magnitude, dtype=torch.complex64)
    for _ in range(iterations):
        spec = analysis(synthesis(magnitude * phase, n_fft, hop, length), n_fft, hop)
        phase = spec / (spec.abs() + 1e-8)
    return synthesis(magnitude * phase, n_fft, hop, length)


def ratio_masks(magnitudes: Tensor, eps: float = 1e-8) -> Tensor:
    """Soft masks that sum to one over sources: ``M_k = |Y_k| / sum_j |Y_j|``.

    Magnitude ratios separated better than power ratios in our measurements
    (docs/method.md §6). Where every source is silent the mask is ``1 / K``.

    Args:
        magnitudes: ``[B, K, bins, frames]`` non-negative.
    Returns:
        ``[B, K, bins, frames]``.
    """
    k = magnitudes.shape[1]
    total = magnitudes.sum(dim=1, keepdim=True)
    return (magnitudes + eps / k) / (total + eps)


def mask_mixture(mixture: Tensor, sources: Tensor, n_fft: int = 1024, hop: int = 256) -> Tensor:
    """Mixture-consistent estimates from (generated) source guesses.

    Soft masks from the sources' STFT magnitudes are applied to the mixture's STFT and
    inverted with the mixture's phase, so the K estimates sum to the mixture.

    Args:
        mixture: ``[B, T]``.
        sources: ``[B, K, T]`` (any scale; only their relative magnitudes matter).
    Returns:
        estimates ``[B, K, T]`` with ``estimates.sum(1) == mixture`` (to float precision).
    """
    if mixture.dim() != 2 or sources.dim() != 3 or sources.shape[0] != mixture.shape[0] \
            or sources.shape[-1] != mixture.shape[-1]:
        raise ValueError(
            f"mask_mixture expects mixture [B, T] and sources [B, K, T]; got "
            f"{tuple(mixture.shape)} and {tuple(sources.shape)}"
        )
    mix_spec = analysis(mixture, n_fft, hop)
    masks = ratio_masks(analysis(sources, n_fft, hop).abs())
    return synthesis(masks * mix_spec.unsqueeze(1), n_fft, hop, mixture.shape[-1])
