"""What a latent search returns: :class:`SeparationResult`, and :func:`by_name`, estimates
named by their sources.

Below both :mod:`.separator` (the search, which returns a :class:`SeparationResult`) and
:mod:`.posterior` (posterior sampling, whose result names its estimates the same way);
it imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from ..errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["SeparationResult", "by_name"]


@dataclass
class SeparationResult:
    """What :meth:`~priorsep.separate.separator.Separator.separate` returns.

    Attributes:
        generated: the generated sources ``[B, K, T]``.
        masked: mixture-consistent estimates ``[B, K, T]`` (they sum to the mixture).
        history: per-term loss at every step, ``{term: [steps, B]}`` (the kept
            restart's; for inputs longer than one window, the mean over windows).
        losses: per-term loss at the final latents, ``{term: [B]}`` (like ``history``,
            for the mixture at the search's level, ``SearchConfig.level``).
        latents: the final latents, one ``[B, W, D_k]`` tensor per prior (W windows).
        restart_losses: final total loss of every restart, ``[B, W, R]``; the kept one
            is the smallest.
        seconds: wall time of the search.
        settings: the separator's settings (:meth:`~priorsep.separate.separator.Separator.settings`).

    For a ``[T]`` input the leading ``B`` is dropped.
    """

    generated: Tensor
    masked: Tensor
    history: dict[str, Tensor]
    losses: dict[str, Tensor]
    latents: list[Tensor]
    restart_losses: Tensor
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    @property
    def windows(self) -> int:
        """Windows per mixture, ``W``."""
        return int(self.latents[0].shape[-2])

    def as_dict(self, form: str = "masked") -> dict[str, Tensor]:
        """The estimates by source name: ``{name: [B, T]}`` (``[T]`` for a ``[T]`` input).

        ``form`` is ``"masked"`` (the mixture-consistent estimates, the default) or
        ``"generated"``. Names come from the priors in order; a name used twice gets its
        position appended (``tone_0``, ``tone_1``).
        """
        if form not in ("masked", "generated"):
            raise ConfigError(f"form must be 'masked' or 'generated'; got {form!r}")
        return by_name(getattr(self, form), self.settings.get("priors"))


def by_name(estimates: Tensor, names: Sequence[str] | None) -> dict[str, Tensor]:
    """``{name: [B, T]}`` of estimates ``[B, K, T]`` (or ``[K, T]``); a name used twice gets
    its position appended (every use), missing names are ``source_k``.

    >>> import torch
    >>> sorted(by_name(torch.zeros(3, 4), ["tone", "tone", "burst"]))
    ['burst', 'tone_0', 'tone_1']
    """
    names = list(names or [f"source_{k}" for k in range(estimates.shape[-2])])
    keys = [name if names.count(name) == 1 else f"{name}_{k}" for k, name in enumerate(names)]
    return {key: estimates[..., k, :] for k, key in enumerate(keys)}
