"""The weights of the paper's total loss (docs/method.md §3), as plain data.

Kept apart from :mod:`priorsep.losses` so that a search configuration
(:class:`priorsep.separate.SearchConfig`) can be built, validated and printed without
importing torch (the command line's start-up stays fast).

>>> as_weights({"sd": 0.0})
LossWeights(mc=0.1, ms=0.3, fc=0.8, sd=0.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["LossWeights", "as_weights"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the total loss; the defaults are the paper's (docs/method.md §3)."""

    mc: float = 0.1
    ms: float = 0.3
    fc: float = 0.8
    sd: float = 0.4

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def as_weights(weights: LossWeights | dict | None) -> LossWeights:
    """Accept ``None`` (paper weights), a dict of overrides, or :class:`LossWeights`."""
    if weights is None:
        return LossWeights()
    if isinstance(weights, LossWeights):
        return weights
    unknown = set(weights) - set(LossWeights().as_dict())
    if unknown:
        raise ValueError(f"unknown loss weights {sorted(unknown)}; expected mc, ms, fc, sd")
    return LossWeights(**{k: float(v) for k, v in weights.items()})
