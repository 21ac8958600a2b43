"""Reference points of the benchmark: the oracle mask above, the mixture itself below."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from .base import Baseline, check_input, masked_estimates, mixture_stft


class OracleIRM(Baseline):
    """Ideal ratio mask from the true sources: ``M_k = |S_k| / sum_j |S_j|`` on the
    mixture's STFT, inverted with the mixture's phase (magnitude ratios, as every masking
    baseline here). The upper reference for anything that masks the mixture.

    ``separate(mixture [T], k, sources [K, T]) -> [K, T]``; estimate k is source k.
    """

    name: ClassVar[str] = "oracle-irm"
    uses: ClassVar[frozenset[str]] = frozenset({"sources"})

    def separate(self, mixture: Tensor, k: int, sources: Tensor | None = None) -> Tensor:
        mix = check_input(mixture, k, sources, need_sources=True)
        assert sources is not None
        return masked_estimates(mix, mixture_stft(sources.detach().cpu().double()).abs())


class MixtureBaseline(Baseline):
    """Every estimate is ``mixture / K``: what a method that does nothing scores. The
    lower reference; estimate order is irrelevant (all are equal)."""

    name: ClassVar[str] = "mixture"

    def separate(self, mixture: Tensor, k: int, sources: Tensor | None = None) -> Tensor:
        mix = check_input(mixture, k)
        return (mix / k).float().expand(k, -1).clone()


__all__ = ["MixtureBaseline", "OracleIRM"]
