"""The separation objective of Narayanaswamy et al. (Interspeech 2020, arXiv 2005.13769).

Exactly docs/method.md §3. Every loss returns one value per mixture, ``[B]``; reduce outside.
Everything that the authors' public code computed over the whole batch (the exclusion
loss's alpha, its sum over the batch) is computed per mixture here, so a mixture's loss
never depends on which other mixtures share its batch (docs/method.md §3, departure 1).

Spectrograms are ``[B, bins, frames]`` (see :mod:`priorsep.spectral`): the last axis is
time, the one before it frequency.
"""

from __future__ import annotations

from itertools import combinations

import torch
from torch import Tensor

from . import spectral
from .loss_weights import LossWeights, as_weights  # noqa: F401  (re-exported: priorsep.losses.LossWeights)

LEVELS = 3  # n = 0, 1, 2: the image and two 2x2 poolings
_TINY = 1e-12


def _edge_term(grad_a: Tensor, grad_b: Tensor) -> Tensor:
    """Psi = (mean tanh^2(gA / 2) * tanh^2(alpha gB / 2))^(1/4), alpha per mixture."""
    alpha = 2.0 * grad_a.abs().mean(dim=(-2, -1)) / (grad_b.abs().mean(dim=(-2, -1)) + _TINY)
    alpha = alpha[..., None, None]
    prod = torch.tanh(grad_a / 2).square() * torch.tanh(alpha * grad_b / 2).square()
    # The fourth root has an infinite slope at 0; the floor only matters for images
    # with no edges at all, where it keeps the gradient finite.
    return prod.mean(dim=(-2, -1)).clamp_min(1e-20).pow(0.25)


def _exclusion_pyramids(pyr_a: list[Tensor], pyr_b: list[Tensor]) -> Tensor:
    """E from the two images' pyramids (each level ``[..., bins, frames]``) -> ``[...]``."""
    total = 0.0
    for pa, pb in zip(pyr_a, pyr_b):
        for dim in (-1, -2):  # time (along frames), then frequency (along bins)
            total = total + _edge_term(torch.diff(pa, dim=dim), torch.diff(pb, dim=dim))
    return total / (2 * len(pyr_a))


def exclusion(a: Tensor, b: Tensor) -> Tensor:
    """E(A, B), the gradient exclusion loss (Zhang, Ng, Chen, CVPR 2018, arXiv 1806.05376).

    For each of three levels (A, B pooled by P between levels) and each direction
    (time, frequency): first differences, alpha = 2 mean|grad A| / mean|grad B| per
    mixture, Psi as in :func:`_edge_term`; then
    E = ((1/3) sum_n Psi_time + (1/3) sum_n Psi_freq) / 2.

    Args:
        a, b: images ``[..., bins, frames]``; alpha is computed per image pair. The
            loss treats both axes alike, so a transposed pair gives the same value.
    Returns:
        ``[...]`` (``[B]`` for ``[B, bins, frames]`` images).
    """
    return _exclusion_pyramids(spectral.pyramid(a, LEVELS), spectral.pyramid(b, LEVELS))


def frequency_consistency(mag_mix: Tensor, mag_hat: Tensor, eps: float = 1e-6) -> Tensor:
    """L_fc = sum_t (sum_f log(1 + M) + eps) / (sum_f log(1 + M_hat) + eps).

    On linear magnitudes ``[B, bins, frames]``: the inner sums run over frequency (bins),
    one ratio per frame, summed over frames. The public code adds eps once per bin;
    per frame, as here, the difference is negligible (docs/method.md §3). One-sided: bounded
    only because the generated sources are peak-normalised.

    Returns:
        ``[B]``.
    """
    num = torch.log1p(mag_mix).sum(dim=-2) + eps  # [B, frames]
    den = torch.log1p(mag_hat).sum(dim=-2) + eps
    return (num / den).sum(dim=-1)


class MixtureFeatures:
    """The mixture's spectral features, computed once per search.

    Args:
        mixture: ``[B, T]``.

    Attributes:
        log_power: S(m) ``[B, bins, frames]``.
        magnitude: |X(m)| ``[B, bins, frames]``.
    """

    def __init__(self, mixture: Tensor):
        spec = spectral.stft(mixture)
        self.log_power = spectral.log_power(spec)
        self.magnitude = spec.abs()


def losses_from_spectra(
    mix: MixtureFeatures, source_specs: Tensor, weights: LossWeights = LossWeights()
) -> dict[str, Tensor]:
    """All four terms and the total, from the sources' STFTs.

    - L_ms = sum_{n=0,1,2} sum_{t,f} |P^n S(m) - P^n S(m_hat)| (an L1 sum, not a mean);
    - L_sd = E(S(s_i), S(s_j)), averaged over all pairs i < j (0 for one source);
    - L_mc = -E(S(m), S(m_hat)): rewards edges shared by the mixture and its fit;
    - L_fc: :func:`frequency_consistency` on linear magnitudes.

    The STFT is linear, so the fitted mixture's STFT is the sum of the sources' STFTs:
    one batched STFT of the K sources serves every term. The exclusion terms of L_mc and
    of every pair in L_sd are computed together, as one stack of image pairs, and L_ms
    reuses their pooling pyramid, so a search step runs few (small, overhead-bound)
    tensor operations.

    Args:
        mix: the mixture's features.
        source_specs: complex STFTs of the peak-normalised sources ``[B, K, bins, frames]``
            (:func:`priorsep.spectral.stft`).
    Returns:
        dict of ``[B]`` tensors: ``ms``, ``sd``, ``mc``, ``fc``, ``total``.
    """
    hat_spec = source_specs.sum(dim=1)
    s_hat = spectral.log_power(hat_spec)
    s_src = spectral.log_power(source_specs)
    pairs = list(combinations(range(source_specs.shape[1]), 2))  # none for K = 1 (a projection)
    first, second = [i for i, _ in pairs], [j for _, j in pairs]
    # image pairs [B, 1 + P, bins, frames]: (S(m), S(m_hat)), then (S(s_i), S(s_j)) for i < j
    pyr_a = spectral.pyramid(torch.cat([mix.log_power[:, None], s_src[:, list(first)]], dim=1), LEVELS)
    pyr_b = spectral.pyramid(torch.cat([s_hat[:, None], s_src[:, list(second)]], dim=1), LEVELS)
    excl = _exclusion_pyramids(pyr_a, pyr_b)  # [B, 1 + P]
    out = {
        "ms": sum((a[:, 0] - b[:, 0]).abs().sum(dim=(-2, -1)) for a, b in zip(pyr_a, pyr_b)),
        "sd": excl[:, 1:].mean(dim=1) if pairs else torch.zeros_like(excl[:, 0]),
        "mc": -excl[:, 0],
        "fc": frequency_consistency(mix.magnitude, hat_spec.abs()),
    }
    out["total"] = (
        weights.mc * out["mc"] + weights.ms * out["ms"] + weights.fc * out["fc"] + weights.sd * out["sd"]
    )
    return out


def separation_losses(
    mixture: Tensor, sources: Tensor, weights: LossWeights | dict | None = None
) -> dict[str, Tensor]:
    """The paper's separation objective (docs/method.md §3), one value per mixture.

    total = 0.1 L_mc + 0.3 L_ms + 0.8 L_fc + 0.4 L_sd (weights configurable).

    Args:
        mixture: ``[B, T]``.
        sources: peak-normalised generated sources ``[B, K, T]``, K >= 2; the fitted
            mixture m_hat is their sum.
        weights: :class:`LossWeights` or a dict with any of ``mc, ms, fc, sd``.
    Returns:
        dict of ``[B]`` tensors with keys ``ms``, ``sd``, ``mc``, ``fc``, ``total``.
    """
    if mixture.dim() != 2 or sources.dim() != 3 or sources.shape[0] != mixture.shape[0] \
            or sources.shape[-1] != mixture.shape[-1] or sources.shape[1] < 2:
        raise ValueError(
            "separation_losses expects mixture [B, T] and sources [B, K, T] with K >= 2; "
            f"got {tuple(mixture.shape)} and {tuple(sources.shape)}"
        )
    if mixture.shape[-1] < spectral.N_FFT:
        raise ValueError(f"clips must be at least {spectral.N_FFT} samples; got {mixture.shape[-1]}")
    return losses_from_spectra(MixtureFeatures(mixture), spectral.stft(sources), as_weights(weights))
